"""Writes only on difference: create when missing, no request when equal, replace when not."""

from __future__ import annotations

from typing import Any

from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CONFIG_MAP
from coalmine.kube.writes import ensure


def desired(ns: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns},
        "data": {"v": value},
    }


def update_data(want: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any] | None:
    if actual.get("data") == want["data"]:
        return None
    return dict(actual, data=want["data"])


async def test_ensure_creates_then_writes_nothing_until_the_object_must_change(
    ns: str,
    api: KubeApi,
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    created = await ensure(api, informer, desired(ns, "1"), update_data)
    assert created["data"] == {"v": "1"}
    before = api.request_total
    same = await ensure(api, informer, desired(ns, "1"), update_data)
    assert api.request_total == before
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = await ensure(api, informer, desired(ns, "2"), update_data)
    assert changed["data"] == {"v": "2"}
    assert (await api.get(CONFIG_MAP, "settings", ns))["data"] == {"v": "2"}
    await informer.stop()


async def test_ensure_wins_a_race_with_a_stale_cache_by_reading_again(
    ns: str, api: KubeApi
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    await ensure(api, informer, desired(ns, "1"), update_data)
    # Someone else changes the object; our cache may still hold the old resourceVersion.
    await api.patch(CONFIG_MAP, "settings", {"metadata": {"labels": {"x": "y"}}}, ns)
    await informer.observe(await api.get(CONFIG_MAP, "settings", ns))
    cached = informer.get("settings", ns)
    assert cached is not None
    stale = dict(cached, metadata=dict(cached["metadata"], resourceVersion="1"))
    informer._objects[(ns, "settings")] = stale
    written = await ensure(api, informer, desired(ns, "3"), update_data)
    assert written["data"] == {"v": "3"}
    assert written["metadata"]["labels"] == {"x": "y"}
    await informer.stop()


async def test_create_only_objects_are_left_alone_once_they_exist(ns: str, api: KubeApi) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    await informer.wait_synced()
    await ensure(api, informer, desired(ns, "1"), None)
    kept = await ensure(api, informer, desired(ns, "2"), None)
    assert kept["data"] == {"v": "1"}
    await informer.stop()
