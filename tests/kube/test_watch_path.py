"""Watches through the hot path (aiohttp, msgspec per line), on both tiers: events arrive as
plain dicts, long lines whole, refusals as the client's error classes, and watches never take
the places of the writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import yaml

from coalmine.kube.api import Gone, KubeApi, KubeApiError, Object, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, CONFIG_MAP
from tiered import ApiServer

from .test_hot_writes import canary
from .test_informer import configmap

HANG_GUARD = 30.0
"""Seconds after which a watch that should have delivered is a failure, not a slow machine."""


async def _take(events: AsyncGenerator[tuple[str, Object], None], count: int) -> list[Any]:
    taken: list[tuple[str, Object]] = []
    async with contextlib.aclosing(events), asyncio.timeout(HANG_GUARD):
        async for event in events:
            taken.append(event)
            if len(taken) == count:
                break
    return taken


async def test_watch_events_arrive_as_plain_dicts_in_order(ns: str, api: KubeApi) -> None:
    await api.create(CONFIG_MAP, configmap(ns, "first", v="1"))
    since = (await api.list(CONFIG_MAP, ns)).resource_version
    await api.create(CONFIG_MAP, configmap(ns, "second", v="1"))
    await api.patch(CONFIG_MAP, "second", {"data": {"v": "2"}}, ns)
    await api.delete(CONFIG_MAP, "first", ns)
    events = await _take(api.watch(CONFIG_MAP, ns, since), 3)
    assert [(kind, obj["metadata"]["name"], obj["data"]["v"]) for kind, obj in events] == [
        ("ADDED", "second", "1"),
        ("MODIFIED", "second", "2"),
        ("DELETED", "first", "1"),
    ]
    assert all(type(obj) is dict and obj["kind"] == "ConfigMap" for _, obj in events)
    assert api.requests["watch configmaps"] == 1


async def test_a_status_write_comes_back_as_a_watch_event_of_the_canary(
    ns: str, api: KubeApi
) -> None:
    await api.create(CANARY, canary(ns))
    since = (await api.list(CANARY, ns)).resource_version
    written = await api.patch(CANARY, "podinfo", {"status": {"iterations": 4}}, ns, status=True)
    [(kind, obj)] = await _take(api.watch(CANARY, ns, since), 1)
    assert kind == "MODIFIED"
    assert obj["status"]["iterations"] == 4
    assert obj["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


async def test_an_object_line_far_over_64_kib_arrives_whole_in_the_informer(
    ns: str, api: KubeApi
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    informer.start()
    try:
        await informer.wait_synced()
        big = "".join(f"{index:07d}," for index in range(40_000))  # 320,000 characters
        await api.create(CONFIG_MAP, configmap(ns, "big", v="1", big=big))
        async with asyncio.timeout(HANG_GUARD):
            while informer.get("big", ns) is None:
                await asyncio.sleep(0.05)
        assert informer.get("big", ns)["data"]["big"] == big  # type: ignore[index]
        assert informer.relists == 1
    finally:
        await informer.stop()


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_a_watch_from_an_expired_version_is_gone(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    since = (await api.list(CONFIG_MAP, ns)).resource_version
    await api.create(CONFIG_MAP, configmap(ns, "later", v="1"))
    apiserver.hooks.faults.expire_history()
    with pytest.raises(Gone, match="too old resource version"):
        await _take(api.watch(CONFIG_MAP, ns, since), 1)


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_a_refusal_before_the_stream_carries_the_servers_code_and_message(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    since = (await api.list(CONFIG_MAP, ns)).resource_version
    apiserver.hooks.faults.inject_error(
        code=503, reason="ServiceUnavailable", message="try later", verb="watch"
    )
    with pytest.raises(KubeApiError) as refused:
        await _take(api.watch(CONFIG_MAP, ns, since), 1)
    assert (refused.value.code, refused.value.reason, str(refused.value)) == (
        503,
        "ServiceUnavailable",
        "try later",
    )


async def test_open_watches_leave_the_writes_their_connections(
    ns: str, apiserver: ApiServer
) -> None:
    """The writes' pool has `max_in_flight` connections; watches hold theirs for minutes."""
    api = KubeApi(load_config(str(apiserver.kubeconfig_path)), max_in_flight=1)
    seen: list[list[str]] = [[], [], []]

    async def follow(index: int, since: str) -> None:
        async with contextlib.aclosing(api.watch(CONFIG_MAP, ns, since)) as events:
            async for _, obj in events:
                seen[index].append(obj["metadata"]["name"])
                if len(seen[index]) == 2:
                    return

    watches: list[asyncio.Task[None]] = []
    try:
        await api.create(CANARY, canary(ns))
        since = (await api.list(CONFIG_MAP, ns)).resource_version
        watches = [asyncio.create_task(follow(index, since)) for index in range(3)]
        await api.create(CONFIG_MAP, configmap(ns, "seen", v="1"))
        async with asyncio.timeout(HANG_GUARD):
            while not all(seen):  # every watch is connected: it brought the first event
                await asyncio.sleep(0.05)
            for iterations in (1, 2):
                patch = {"status": {"iterations": iterations}}
                await api.patch(CANARY, "podinfo", patch, ns, status=True)
            assert not any(watch.done() for watch in watches)
            await api.create(CONFIG_MAP, configmap(ns, "ends-them", v="1"))
            await asyncio.gather(*watches)
        assert seen == [["seen", "ends-them"]] * 3
    finally:
        for watch in watches:
            watch.cancel()
        await api.close()


@pytest.mark.realcluster_only("devcluster serves plain HTTP without authentication")
async def test_a_watch_with_a_rejected_token_is_a_401_refusal(
    ns: str, apiserver: ApiServer
) -> None:
    config = yaml.safe_load(apiserver.controller_kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "not-a-token"
    path = apiserver.kubeconfig_path.with_name(f"kubeconfig-{ns}-watch-bad-token.yaml")
    path.write_text(yaml.safe_dump(config))
    api = KubeApi(load_config(str(path)))
    try:
        with pytest.raises(KubeApiError) as refused:
            await _take(api.watch(CANARY, ns, "0"), 1)
    finally:
        await api.close()
    assert refused.value.code == 401


@pytest.mark.realcluster_only("devcluster serves plain HTTP without authentication")
async def test_a_watch_signed_from_a_token_file_streams(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    """The in-cluster form of credentials (a projected token file) on the real server's TLS."""
    config = yaml.safe_load(apiserver.controller_kubeconfig.read_text())
    user = config["users"][0]["user"]
    token_file = apiserver.kubeconfig_path.with_name(f"token-{ns}")
    token_file.write_text(user.pop("token"))
    user["tokenFile"] = str(token_file)
    path = apiserver.kubeconfig_path.with_name(f"kubeconfig-{ns}-token-file.yaml")
    path.write_text(yaml.safe_dump(config))
    controller = KubeApi(load_config(str(path)))
    try:
        since = (await controller.list(CANARY, ns)).resource_version
        await api.create(CANARY, canary(ns))
        [(kind, obj)] = await _take(controller.watch(CANARY, ns, since), 1)
    finally:
        await controller.close()
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "podinfo")
