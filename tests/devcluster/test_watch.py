"""Watches: initial ADDED events, resume from a resourceVersion, 410 Expired, bookmarks, selectors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from dchelpers import CM, Raw, configmap

from coalmine.devcluster import DevCluster


@asynccontextmanager
async def watch(raw: Raw, query: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Stream watch events into a queue until the block ends."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    response = await raw.session.get(f"{raw.url}{CM}?watch=true&{query}")
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


async def test_watch_without_version_sends_existing_objects_then_changes(raw: Raw) -> None:
    await raw.post(CM, configmap("before"))
    async with watch(raw, "") as events:
        first = await next_event(events)
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "before")
        await raw.patch(f"{CM}/before", {"data": {"b": "2"}})
        await raw.delete(f"{CM}/before")
        modified = await next_event(events)
        deleted = await next_event(events)
    assert modified["type"] == "MODIFIED"
    assert modified["object"]["data"] == {"a": "1", "b": "2"}
    assert deleted["type"] == "DELETED"
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(
        modified["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_from_a_resource_version_replays_later_events(raw: Raw) -> None:
    created = (await raw.post(CM, configmap("r"))).body
    version = created["metadata"]["resourceVersion"]
    await raw.patch(f"{CM}/r", {"data": {"a": "2"}})
    await raw.patch(f"{CM}/r", {"data": {"a": "3"}})
    async with watch(raw, f"resourceVersion={version}") as events:
        first, second = await next_event(events), await next_event(events)
    assert [first["type"], second["type"]] == ["MODIFIED", "MODIFIED"]
    assert [first["object"]["data"]["a"], second["object"]["data"]["a"]] == ["2", "3"]


async def test_watch_from_an_expired_version_gets_410_error_event(devcluster: DevCluster, raw: Raw) -> None:
    created = (await raw.post(CM, configmap("old"))).body
    await raw.patch(f"{CM}/old", {"data": {"a": "2"}})
    devcluster.faults.expire_history()
    version = created["metadata"]["resourceVersion"]
    async with watch(raw, f"resourceVersion={version}") as events:
        error = await next_event(events)
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
    assert error["object"]["reason"] == "Expired"
    assert error["object"]["message"].startswith(f"too old resource version: {version}")


async def test_list_resource_version_resumes_a_watch_without_gaps(raw: Raw) -> None:
    listed = await raw.get(CM)
    version = listed.body["metadata"]["resourceVersion"]
    await raw.post(CM, configmap("after-list"))
    async with watch(raw, f"resourceVersion={version}") as events:
        added = await next_event(events)
    assert added["type"] == "ADDED"
    assert added["object"]["metadata"]["name"] == "after-list"


async def test_watch_ends_after_timeout_seconds(raw: Raw) -> None:
    async with watch(raw, "timeoutSeconds=1&resourceVersion=1") as events:
        closed = await next_event(events)
    assert closed == {"type": "CLOSED"}


async def test_bookmarks_carry_the_current_resource_version(raw: Raw) -> None:
    await raw.post(CM, configmap("bm"))
    async with watch(raw, "allowWatchBookmarks=true&resourceVersion=1") as events:
        while (event := await next_event(events))["type"] != "BOOKMARK":
            pass
    assert event["object"]["kind"] == "ConfigMap"
    assert int(event["object"]["metadata"]["resourceVersion"]) >= 1


async def test_send_initial_events_ends_with_an_annotated_bookmark(raw: Raw) -> None:
    await raw.post(CM, configmap("init"))
    query = "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
    async with watch(raw, query) as events:
        added = await next_event(events)
        bookmark = await next_event(events)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_label_selector_turns_matching_changes_into_added_and_deleted(raw: Raw) -> None:
    created = (await raw.post(CM, configmap("sel", labels={"tier": "web"}))).body
    version = created["metadata"]["resourceVersion"]
    async with watch(raw, f"labelSelector=tier%3Dweb&resourceVersion={version}") as events:
        await raw.patch(f"{CM}/sel", {"metadata": {"labels": {"tier": "db"}}})
        gone = await next_event(events)
        await raw.patch(f"{CM}/sel", {"metadata": {"labels": {"tier": "web"}}})
        back = await next_event(events)
        await raw.post(CM, configmap("other", labels={"tier": "db"}))
        await raw.delete(f"{CM}/sel")
        deleted = await next_event(events)
    assert [gone["type"], back["type"], deleted["type"]] == ["DELETED", "ADDED", "DELETED"]
    assert {e["object"]["metadata"]["name"] for e in (gone, back, deleted)} == {"sel"}


async def test_field_selector_on_name_watches_one_object(raw: Raw) -> None:
    async with watch(raw, "fieldSelector=metadata.name%3Done&resourceVersion=1") as events:
        await raw.post(CM, configmap("two"))
        await raw.post(CM, configmap("one"))
        added = await next_event(events)
    assert added["object"]["metadata"]["name"] == "one"


async def test_dropping_watches_ends_open_streams(devcluster: DevCluster, raw: Raw) -> None:
    async with watch(raw, "resourceVersion=1") as events:
        await raw.post(CM, configmap("x"))
        await next_event(events)
        reply = await raw.post("/devcluster/faults/drop-watches", {})
        assert reply.body["dropped"] >= 1
        assert await next_event(events) == {"type": "CLOSED"}


async def test_hundred_watchers_each_receive_every_event(raw: Raw) -> None:
    async with aiohttp.ClientSession() as session:
        responses = [
            await session.get(f"{raw.url}{CM}?watch=1&resourceVersion=1") for _ in range(100)
        ]
        for index in range(3):
            await raw.post(CM, configmap(f"fan-{index}"))

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


async def test_legacy_watch_path_streams_events(raw: Raw) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{raw.url}/api/v1/watch/namespaces/default/configmaps?resourceVersion=1")
        await raw.post(CM, configmap("legacy"))
        line = await asyncio.wait_for(response.content.readline(), 5)
        response.close()
    assert json.loads(line)["object"]["metadata"]["name"] == "legacy"
