"""Watch streaming: one chunked HTTP response per watch, fed by the storage's change log.

A watch starts from a resource version (replaying the retained changes after it, or `410 Expired`
when they are gone) or from the current objects (`resourceVersion` "" or "0", or
`sendInitialEvents`), then switches to writing each change straight to the socket. Bookmarks are
sent while idle when asked for; a client that cannot keep up is dropped, as kube-apiserver drops
slow watchers; Tables and PartialObjectMetadata are streamed per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from coalmine.devcluster.errors import ApiError
from coalmine.devcluster.representation import (
    partial_metadata,
    truthy,
    wants_metadata,
    wants_table,
)
from coalmine.devcluster.resources import ResourceType
from coalmine.devcluster.storage import Watcher, dumps
from coalmine.devcluster.store import Store, make_matcher
from coalmine.devcluster.tables import table

Sink = Callable[[bytes], None]

# A watcher whose unsent bytes exceed this is dropped (its client reconnects and relists).
MAX_WATCH_BUFFER = 64 * 1024 * 1024
# How often an idle watch checks that its client is still connected, in seconds.
DISCONNECT_CHECK = 2.0


class _Expired(Exception):
    """The requested resource version is older than the retained history."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status


@dataclass
class WatchRequest:
    """One watch: what it follows and how the client wants it streamed."""

    request: web.Request
    store: Store
    rt: ResourceType
    namespace: str | None
    name: str
    bookmark_interval: float

    async def serve(self) -> web.StreamResponse:
        query = self.request.query
        watcher = Watcher(self.rt, self.namespace, self._matcher())
        try:
            initial = self._initial(watcher)
        except _Expired as expired:
            return await self._expired(expired.status)
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        storage = self.store.storage
        storage.add_watcher(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(self.request)
            transport = self.request.transport
            if transport is None:
                return response
            sink = self._sink(_chunk_sink(transport, watcher))
            _switch_to_direct_writes(watcher, initial, sink)
            await self._wait_for_end(watcher, deadline)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            storage.remove_watcher(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    @property
    def bookmarks(self) -> bool:
        return truthy(self.request.query.get("allowWatchBookmarks"))

    def _matcher(self) -> Callable[[dict[str, Any]], bool] | None:
        query = self.request.query
        matches = make_matcher(
            query.get("labelSelector", ""), query.get("fieldSelector", ""), self.rt
        )
        if not self.name:
            return matches
        name = self.name
        inner = matches

        def by_name(obj: dict[str, Any]) -> bool:
            return obj.get("metadata", {}).get("name") == name and (inner is None or inner(obj))

        return by_name

    def _initial(self, watcher: Watcher) -> list[bytes]:
        """The events sent before the live ones: the current objects, or the retained changes
        since the requested resource version (offered to the watcher's queue)."""
        query = self.request.query
        send_initial = truthy(query.get("sendInitialEvents"))
        rv = query.get("resourceVersion", "")
        rt = self.rt
        storage = self.store.storage
        initial: list[bytes] = []
        if rv in ("", "0") or send_initial:
            for entry in self.store.entries(rt, self.namespace, watcher.matches):
                initial.append(b'{"type":"ADDED","object":' + entry.json(rt) + b"}\n")
            if send_initial and self.bookmarks:
                initial.append(bookmark(rt, storage.rv, initial_end=True))
            return initial
        try:
            since = int(rv)
        except ValueError as error:
            # kube-apiserver answers a watch (not a list) with an unparsable version this way
            raise ApiError(
                500,
                "",
                f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: parsing "{rv}": '
                "invalid syntax",
            ) from error
        changes = storage.changes_since(since)
        if changes is None:
            raise _Expired(
                ApiError(
                    410,
                    "Expired",
                    f"too old resource version: {since} ({storage.history_floor})",
                ).status()
            )
        for change in changes:
            if change.storage == rt.storage_key:
                watcher.offer(change)
        return initial

    async def _expired(self, status: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(self.request)
        await response.write(b'{"type":"ERROR","object":' + dumps(status) + b"}\n")
        await response.write_eof()
        return response

    def _sink(self, sink: Sink) -> Sink:
        """Each event as the client asked for it: a one-row Table, metadata only, or whole."""
        if wants_table(self.request):
            return _table_sink(sink, self.rt, self.request.query.get("includeObject", "Metadata"))
        if wants_metadata(self.request):
            return _metadata_sink(sink)
        return sink

    async def _wait_for_end(self, watcher: Watcher, deadline: float | None) -> None:
        """Until the watch is closed, times out or its client is gone; bookmarks while idle."""
        interval = self.bookmark_interval
        bookmarks = self.bookmarks
        next_bookmark = time.monotonic() + interval
        while True:
            now = time.monotonic()
            wait = DISCONNECT_CHECK
            if bookmarks:
                wait = min(wait, max(next_bookmark - now, 0.0))
            if deadline is not None:
                if deadline <= now:
                    return
                wait = min(wait, deadline - now)
            try:
                await asyncio.wait_for(watcher.queue.get(), wait)
                return
            except TimeoutError:
                transport = self.request.transport
                if transport is None or transport.is_closing():
                    return
                if bookmarks and watcher.sink is not None and time.monotonic() >= next_bookmark:
                    watcher.sink(bookmark(self.rt, self.store.storage.rv))
                    next_bookmark = time.monotonic() + interval


def _switch_to_direct_writes(watcher: Watcher, initial: list[bytes], sink: Sink) -> None:
    """Send what is queued and attach the sink in one synchronous step, so no event is lost or
    reordered."""
    pending = initial
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        if item is None:
            watcher.close()
            break
        pending.append(item)
    if pending:
        sink(b"".join(pending))
    watcher.sink = sink


def bookmark(rt: ResourceType, rv: int, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"


def _metadata_sink(sink: Sink) -> Sink:
    def to_metadata(data: bytes) -> None:
        out = []
        for line in data.splitlines():
            event = json.loads(line)
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                event["object"] = partial_metadata(event["object"])
            out.append(dumps(event) + b"\n")
        sink(b"".join(out))

    return to_metadata


def _table_sink(sink: Sink, rt: ResourceType, include: str) -> Sink:
    """`kubectl get -w`: each event's object becomes a one-row Table, as real servers send."""

    def to_table(data: bytes) -> None:
        out = []
        for line in data.splitlines():
            event = json.loads(line)
            obj = event["object"]
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                version = obj.get("metadata", {}).get("resourceVersion", "")
                event["object"] = table(rt, [obj], version, include)
            out.append(dumps(event) + b"\n")
        sink(b"".join(out))

    return to_table


def _chunk_sink(transport: asyncio.BaseTransport, watcher: Watcher) -> Sink:
    """Write HTTP chunks straight to the socket; a watcher that cannot keep up is dropped."""
    assert isinstance(transport, asyncio.WriteTransport)
    dropped = False

    def sink(data: bytes) -> None:
        nonlocal dropped
        if dropped:
            return
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_WATCH_BUFFER:
            dropped = True
            watcher.close()
            return
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    return sink
