"""Watch caches: list then watch, resume after a dropped watch, relist after 410, own writes."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches, Informer, KindUnavailable
from coalmine.kube.kinds import CONFIG_MAP, Kind
from polling import eventually


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def __call__(self, event_type: str, obj: dict[str, Any]) -> None:
        self.events.append((event_type, obj["metadata"]["name"], obj.get("data", {}).get("v", "")))


async def test_the_cache_lists_existing_objects_then_follows_changes(api: KubeApi) -> None:
    await api.create(CONFIG_MAP, configmap("before", v="1"))
    informer = Informer(api, CONFIG_MAP)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    assert informer.get("before", "default") is not None
    await api.create(CONFIG_MAP, configmap("after", v="1"))
    await api.patch(CONFIG_MAP, "after", {"data": {"v": "2"}}, "default")
    await api.delete(CONFIG_MAP, "before", "default")
    await eventually(lambda: ("DELETED", "before", "1") in seen.events)
    await eventually(lambda: ("MODIFIED", "after", "2") in seen.events)
    assert seen.events[0] == ("ADDED", "before", "1")
    assert informer.get("before", "default") is None
    assert informer.get("after", "default")["data"] == {"v": "2"}  # type: ignore[index]
    await informer.stop()


async def test_a_dropped_watch_resumes_without_repeating_or_missing_events(
    api: KubeApi, devcluster: DevCluster
) -> None:
    informer = Informer(api, CONFIG_MAP)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    await api.create(CONFIG_MAP, configmap("a", v="1"))
    await eventually(lambda: ("ADDED", "a", "1") in seen.events)
    devcluster.faults.drop_watches()
    await api.patch(CONFIG_MAP, "a", {"data": {"v": "2"}}, "default")
    await eventually(lambda: ("MODIFIED", "a", "2") in seen.events)
    assert seen.events == [("ADDED", "a", "1"), ("MODIFIED", "a", "2")]
    assert informer.relists == 1
    await informer.stop()


async def test_expired_history_relists_and_reports_deletions_missed_meanwhile(
    api: KubeApi, devcluster: DevCluster
) -> None:
    await api.create(CONFIG_MAP, configmap("doomed", v="1"))
    informer = Informer(api, CONFIG_MAP)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    devcluster.faults.inject_error(code=500, reason="InternalError", message="down", verb="watch")
    devcluster.faults.drop_watches()
    await api.delete(CONFIG_MAP, "doomed", "default")
    devcluster.faults.expire_history()
    await eventually(lambda: ("DELETED", "doomed", "1") in seen.events)
    assert informer.relists >= 2
    assert informer.get("doomed", "default") is None
    await informer.stop()


async def test_observe_makes_an_own_write_visible_before_the_watch_brings_it(api: KubeApi) -> None:
    informer = Informer(api, CONFIG_MAP)
    informer.start()
    await informer.wait_synced()
    created = await api.create(CONFIG_MAP, configmap("mine", v="1"))
    await informer.observe(created)
    assert informer.get("mine", "default") == created
    stale = dict(created, data={"v": "stale"})
    stale["metadata"] = dict(created["metadata"], resourceVersion="1")
    await informer.observe(stale)
    assert informer.get("mine", "default") == created
    await informer.stop()


async def test_a_kind_the_server_does_not_serve_is_unavailable_after_the_injected_sync_wait(
    api: KubeApi,
) -> None:
    widgets = Kind("example.com", "v1", "Widget", "widgets")
    caches = Caches(api, sync_wait=0.2)
    try:
        with pytest.raises(KindUnavailable, match="cannot list Widget"):
            await caches.synced(widgets)
    finally:
        await caches.stop()
