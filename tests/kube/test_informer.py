"""Watch caches: list then watch, resume after a dropped watch, relist after 410, own writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches, Informer, KindUnavailable, lean
from coalmine.kube.kinds import CONFIG_MAP, SECRET, Kind
from polling import eventually
from tiered import ApiServer


def configmap(ns: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


# kube-controller-manager publishes this ConfigMap in every namespace (devcluster does not).
ROOT_CA = "kube-root-ca.crt"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def __call__(self, event_type: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == ROOT_CA:
            return
        self.events.append((event_type, obj["metadata"]["name"], obj.get("data", {}).get("v", "")))


async def test_the_cache_lists_existing_objects_then_follows_changes(ns: str, api: KubeApi) -> None:
    await api.create(CONFIG_MAP, configmap(ns, "before", v="1"))
    informer = Informer(api, CONFIG_MAP, ns)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    assert informer.get("before", ns) is not None
    await api.create(CONFIG_MAP, configmap(ns, "after", v="1"))
    await api.patch(CONFIG_MAP, "after", {"data": {"v": "2"}}, ns)
    await api.delete(CONFIG_MAP, "before", ns)
    await eventually(lambda: ("DELETED", "before", "1") in seen.events)
    await eventually(lambda: ("MODIFIED", "after", "2") in seen.events)
    assert seen.events[0] == ("ADDED", "before", "1")
    assert informer.get("before", ns) is None
    assert informer.get("after", ns)["data"] == {"v": "2"}  # type: ignore[index]
    await informer.stop()


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_a_dropped_watch_resumes_without_repeating_or_missing_events(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    await api.create(CONFIG_MAP, configmap(ns, "a", v="1"))
    await eventually(lambda: ("ADDED", "a", "1") in seen.events)
    apiserver.hooks.faults.drop_watches()
    await api.patch(CONFIG_MAP, "a", {"data": {"v": "2"}}, ns)
    await eventually(lambda: ("MODIFIED", "a", "2") in seen.events)
    assert seen.events == [("ADDED", "a", "1"), ("MODIFIED", "a", "2")]
    assert informer.relists == 1
    await informer.stop()


@pytest.mark.devcluster_only("needs devcluster's fault injection and its 1 s bookmarks")
async def test_a_quiet_watch_resumes_from_a_bookmark_after_the_history_moved_on(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    """Without bookmarks a kind nobody writes resumes from its list's resourceVersion, which
    the server has long forgotten when others write a lot (etcd's compaction, a full watch
    cache): a 410 and a re-list of every object of the kind, which stalls the controller's
    cycles when the kind is large (30,000 Services at 10,000 canaries)."""
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    other = await api.create(SECRET, {"metadata": {"name": "elsewhere", "namespace": ns}})
    written = int(other["metadata"]["resourceVersion"])
    await eventually(lambda: informer.resource_version >= written)  # a bookmark brought it
    apiserver.hooks.faults.expire_history()
    apiserver.hooks.faults.drop_watches()  # the server ends the watch; the informer resumes
    await api.create(CONFIG_MAP, configmap(ns, "after", v="1"))
    await eventually(lambda: informer.get("after", ns) is not None)
    assert informer.relists == 1
    await informer.stop()


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_expired_history_relists_and_reports_deletions_missed_meanwhile(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    await api.create(CONFIG_MAP, configmap(ns, "doomed", v="1"))
    informer = Informer(api, CONFIG_MAP, ns)
    seen = Recorder()
    informer.subscribe(seen)
    informer.start()
    await informer.wait_synced()
    apiserver.hooks.faults.inject_error(
        code=500, reason="InternalError", message="down", verb="watch"
    )
    apiserver.hooks.faults.drop_watches()
    await api.delete(CONFIG_MAP, "doomed", ns)
    apiserver.hooks.faults.expire_history()
    await eventually(lambda: ("DELETED", "doomed", "1") in seen.events)
    assert informer.relists >= 2
    assert informer.get("doomed", ns) is None
    await informer.stop()


async def test_observe_makes_an_own_write_visible_before_the_watch_brings_it(
    ns: str, api: KubeApi
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    # As cached (without managedFields): the watch may bring the same version first.
    created = lean(await api.create(CONFIG_MAP, configmap(ns, "mine", v="1")))
    await informer.observe(created)
    assert informer.get("mine", ns) == created
    stale = dict(created, data={"v": "stale"})
    stale["metadata"] = dict(created["metadata"], resourceVersion="1")
    await informer.observe(stale)
    assert informer.get("mine", ns) == created
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


async def test_cached_objects_leave_out_managed_fields_and_a_put_of_one_keeps_the_servers(
    ns: str, api: KubeApi
) -> None:
    await api.create(CONFIG_MAP, configmap(ns, "managed", v="1"))
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    cached = informer.get("managed", ns)
    assert cached is not None
    assert "managedFields" not in cached["metadata"]
    on_server = await api.get(CONFIG_MAP, "managed", ns)
    changed = copy.deepcopy(cached)
    changed["data"] = {"v": "2"}
    written = await api.replace(CONFIG_MAP, changed)
    # kube-apiserver records managers on every write; omitting the field in a PUT keeps them
    assert bool(written["metadata"].get("managedFields")) == bool(
        on_server["metadata"].get("managedFields")
    )
    await informer.observe(written)
    assert "managedFields" not in informer.get("managed", ns)["metadata"]  # type: ignore[index]
    await informer.stop()
