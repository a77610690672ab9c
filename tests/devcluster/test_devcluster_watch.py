"""Watches: initial ADDED events, resume from a resourceVersion, 410 Expired, bookmarks, selectors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from coalmine.devcluster import DevCluster

from .dchelpers import CM, Raw, configmap


@asynccontextmanager
async def watch(devcluster_http: Raw, query: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Stream watch events into a queue until the block ends."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    response = await devcluster_http.session.get(f"{devcluster_http.url}{CM}?watch=true&{query}")
    assert response.status == 200

    async def pump() -> None:
        async for line in response.content:
            if line.strip():
                await events.put(json.loads(line))
        await events.put({"type": "CLOSED"})

    task = asyncio.create_task(pump())
    try:
        yield events
    finally:
        task.cancel()
        response.close()


async def next_event(events: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(events.get(), 5)


async def test_watch_without_version_sends_existing_objects_then_changes(
    devcluster_http: Raw,
) -> None:
    await devcluster_http.post(CM, configmap("before"))
    async with watch(devcluster_http, "") as events:
        first = await next_event(events)
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "before")
        await devcluster_http.patch(f"{CM}/before", {"data": {"b": "2"}})
        await devcluster_http.delete(f"{CM}/before")
        modified = await next_event(events)
        deleted = await next_event(events)
    assert modified["type"] == "MODIFIED"
    assert modified["object"]["data"] == {"a": "1", "b": "2"}
    assert deleted["type"] == "DELETED"
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(
        modified["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_from_a_resource_version_replays_later_events(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(CM, configmap("r"))).body
    version = created["metadata"]["resourceVersion"]
    await devcluster_http.patch(f"{CM}/r", {"data": {"a": "2"}})
    await devcluster_http.patch(f"{CM}/r", {"data": {"a": "3"}})
    async with watch(devcluster_http, f"resourceVersion={version}") as events:
        first, second = await next_event(events), await next_event(events)
    assert [first["type"], second["type"]] == ["MODIFIED", "MODIFIED"]
    assert [first["object"]["data"]["a"], second["object"]["data"]["a"]] == ["2", "3"]


async def test_watch_from_an_expired_version_gets_410_error_event(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    created = (await devcluster_http.post(CM, configmap("old"))).body
    await devcluster_http.patch(f"{CM}/old", {"data": {"a": "2"}})
    devcluster.faults.expire_history()
    version = created["metadata"]["resourceVersion"]
    async with watch(devcluster_http, f"resourceVersion={version}") as events:
        error = await next_event(events)
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
    assert error["object"]["reason"] == "Expired"
    assert error["object"]["message"].startswith(f"too old resource version: {version}")


async def test_list_resource_version_resumes_a_watch_without_gaps(devcluster_http: Raw) -> None:
    listed = await devcluster_http.get(CM)
    version = listed.body["metadata"]["resourceVersion"]
    await devcluster_http.post(CM, configmap("after-list"))
    async with watch(devcluster_http, f"resourceVersion={version}") as events:
        added = await next_event(events)
    assert added["type"] == "ADDED"
    assert added["object"]["metadata"]["name"] == "after-list"


async def test_watch_ends_after_timeout_seconds(devcluster_http: Raw) -> None:
    async with watch(devcluster_http, "timeoutSeconds=1&resourceVersion=1") as events:
        closed = await next_event(events)
    assert closed == {"type": "CLOSED"}


async def test_bookmarks_carry_the_current_resource_version(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("bm"))
    async with watch(devcluster_http, "allowWatchBookmarks=true&resourceVersion=1") as events:
        while (event := await next_event(events))["type"] != "BOOKMARK":
            pass
    assert event["object"]["kind"] == "ConfigMap"
    assert int(event["object"]["metadata"]["resourceVersion"]) >= 1


async def test_send_initial_events_ends_with_an_annotated_bookmark(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("init"))
    query = "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
    async with watch(devcluster_http, query) as events:
        added = await next_event(events)
        bookmark = await next_event(events)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_label_selector_turns_matching_changes_into_added_and_deleted(
    devcluster_http: Raw,
) -> None:
    created = (await devcluster_http.post(CM, configmap("sel", labels={"tier": "web"}))).body
    version = created["metadata"]["resourceVersion"]
    async with watch(
        devcluster_http, f"labelSelector=tier%3Dweb&resourceVersion={version}"
    ) as events:
        await devcluster_http.patch(f"{CM}/sel", {"metadata": {"labels": {"tier": "db"}}})
        gone = await next_event(events)
        await devcluster_http.patch(f"{CM}/sel", {"metadata": {"labels": {"tier": "web"}}})
        back = await next_event(events)
        await devcluster_http.post(CM, configmap("other", labels={"tier": "db"}))
        await devcluster_http.delete(f"{CM}/sel")
        deleted = await next_event(events)
    assert [gone["type"], back["type"], deleted["type"]] == ["DELETED", "ADDED", "DELETED"]
    assert {e["object"]["metadata"]["name"] for e in (gone, back, deleted)} == {"sel"}


async def test_field_selector_on_name_watches_one_object(devcluster_http: Raw) -> None:
    async with watch(
        devcluster_http, "fieldSelector=metadata.name%3Done&resourceVersion=1"
    ) as events:
        await devcluster_http.post(CM, configmap("two"))
        await devcluster_http.post(CM, configmap("one"))
        added = await next_event(events)
    assert added["object"]["metadata"]["name"] == "one"


async def test_dropping_watches_ends_open_streams(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    async with watch(devcluster_http, "resourceVersion=1") as events:
        await devcluster_http.post(CM, configmap("x"))
        await next_event(events)
        reply = await devcluster_http.post("/devcluster/faults/drop-watches", {})
        assert reply.body["dropped"] >= 1
        assert await next_event(events) == {"type": "CLOSED"}


async def test_hundred_watchers_each_receive_every_event(devcluster_http: Raw) -> None:
    async with aiohttp.ClientSession() as session:
        responses = [
            await session.get(f"{devcluster_http.url}{CM}?watch=1&resourceVersion=1")
            for _ in range(100)
        ]
        for index in range(3):
            await devcluster_http.post(CM, configmap(f"fan-{index}"))

        async def read_three(response: aiohttp.ClientResponse) -> list[str]:
            names = []
            while len(names) < 3:
                line = await response.content.readline()
                names.append(json.loads(line)["object"]["metadata"]["name"])
            return names

        results = await asyncio.wait_for(asyncio.gather(*(read_three(r) for r in responses)), 20)
        for response in responses:
            response.close()
    assert all(names == ["fan-0", "fan-1", "fan-2"] for names in results)


async def test_legacy_watch_path_streams_events(devcluster_http: Raw) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(
            f"{devcluster_http.url}/api/v1/watch/namespaces/default/configmaps?resourceVersion=1"
        )
        await devcluster_http.post(CM, configmap("legacy"))
        line = await asyncio.wait_for(response.content.readline(), 5)
        response.close()
    assert json.loads(line)["object"]["metadata"]["name"] == "legacy"


async def test_watch_of_a_disconnected_client_is_released(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    response = await devcluster_http.session.get(
        f"{devcluster_http.url}{CM}?watch=1&resourceVersion=1"
    )
    watchers = devcluster.store.storage.watchers
    assert len(watchers["configmaps"]) == 1
    response.close()
    for _ in range(250):
        if not watchers["configmaps"]:
            break
        await asyncio.sleep(0.02)
    assert not watchers["configmaps"]


async def test_bounded_history_expires_old_resource_versions() -> None:
    async with (
        DevCluster(simulator=False, history_size=3) as cluster,
        aiohttp.ClientSession() as session,
    ):
        store = cluster.store
        first = store.create(configmap("h0"), namespace="default")
        for index in range(1, 6):
            store.create(configmap(f"h{index}"), namespace="default")
        version = first["metadata"]["resourceVersion"]
        async with session.get(f"{cluster.url}{CM}?watch=1&resourceVersion={version}") as old:
            event = json.loads(await old.content.readline())
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
        recent = store.get("configmaps", "h4", namespace="default")["metadata"]["resourceVersion"]
        async with session.get(f"{cluster.url}{CM}?watch=1&resourceVersion={recent}") as fresh:
            event = json.loads(await fresh.content.readline())
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "h5")
