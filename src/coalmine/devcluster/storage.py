"""Objects, the store-wide resourceVersion, watch fan-out and the bounded event history.

Why it is shaped like this: reads must be cheap with 10,000 objects and 100 watchers. Stored
objects are plain dicts that are never mutated after they are stored (every write stores a new
dict), so a read can hand out the cached JSON bytes of the entry instead of copying. A write
serializes the object once per API version it is read in, and a watch event is one pre-built byte
string put on every interested watcher's queue.

Differences from a real API server (etcd-backed):
- one integer resourceVersion for the whole store, incremented by one per write (real servers also
  use etcd's global revision, but with gaps);
- the history that watches can resume from is a bounded in-memory deque (`history_size` events);
  older resourceVersions get `410 Expired` like a compacted etcd;
- lists always read the latest state (`resourceVersion`/`resourceVersionMatch` on lists are
  ignored), and `continue` tokens page through the current state, not a snapshot.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from coalmine.devcluster.conversions import hpa_v2_to_v1
from coalmine.devcluster.resources import ResourceType

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


EVENT_FIELDS = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)


def core_event_to_events_v1(obj: Obj) -> Obj:
    out = dict(obj.items())
    for core, new in EVENT_FIELDS:
        if core in out:
            out[new] = out.pop(core)
    for empty in ("reportingController", "reportingInstance", "deprecatedCount", "note", "type"):
        if not out.get(empty):
            out.pop(empty, None)  # omitempty in events.k8s.io/v1
    out["apiVersion"] = "events.k8s.io/v1"
    return out


def events_v1_to_core_event(obj: Obj) -> Obj:
    out = dict(obj.items())
    for core, new in EVENT_FIELDS:
        if new in out:
            out[core] = out.pop(new)
    out["apiVersion"] = "v1"
    return out


def view(resource: ResourceType, obj: Obj) -> Obj:
    """The object as served by `resource` (its apiVersion; the events.k8s.io field names)."""
    if obj.get("apiVersion") == resource.api_version:
        return obj
    if resource.storage == "events" and resource.group == "events.k8s.io":
        return core_event_to_events_v1(obj)
    if resource.storage == "events":
        return events_v1_to_core_event(obj)
    if resource.group == "autoscaling" and resource.version == "v1":
        return hpa_v2_to_v1(obj)
    out = dict(obj)
    out["apiVersion"] = resource.api_version
    return out


class Entry:
    """One stored object and its JSON, serialized at most once per API version."""

    __slots__ = ("_bytes", "obj", "rv")

    def __init__(self, obj: Obj, rv: int) -> None:
        self.obj = obj
        self.rv = rv
        self._bytes: dict[str, bytes] = {}

    def json(self, resource: ResourceType) -> bytes:
        data = self._bytes.get(resource.api_version)
        if data is None:
            data = dumps(view(resource, self.obj))
            self._bytes[resource.api_version] = data
        return data

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass
class Change:
    """One committed write, as watchers and listeners see it."""

    rv: int
    storage: str
    type: str  # ADDED, MODIFIED, DELETED
    entry: Entry
    old: Obj | None
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def line(self, event_type: str, resource: ResourceType) -> bytes:
        key = (event_type, resource.api_version)
        data = self._lines.get(key)
        if data is None:
            data = (
                b'{"type":"'
                + event_type.encode()
                + b'","object":'
                + self.entry.json(resource)
                + b"}\n"
            )
            self._lines[key] = data
        return data


@dataclass(eq=False)
class Watcher:
    """A watch connection's filter and where its lines go.

    With a `sink`, lines are written synchronously from the committing write (no task switch
    per watcher and event, which is what makes 100 watchers cheap); without one they are queued.
    `queue` also carries None when the watch must end.
    """

    resource: ResourceType
    namespace: str | None
    matches: Callable[[Obj], bool] | None
    sink: Callable[[bytes], None] | None = None
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def send(self, line: bytes) -> None:
        if self.sink is not None:
            self.sink(line)
        else:
            self.queue.put_nowait(line)

    def offer(self, change: Change) -> None:
        entry = change.entry
        if self.namespace is not None and entry.namespace != self.namespace:
            return
        if self.matches is None:
            self.send(change.line(change.type, self.resource))
            return
        if change.type == "DELETED":
            if self.matches(view(self.resource, entry.obj)):
                self.send(change.line("DELETED", self.resource))
            return
        now = self.matches(view(self.resource, entry.obj))
        before = change.old is not None and self.matches(view(self.resource, change.old))
        if now and before:
            self.send(change.line("MODIFIED", self.resource))
        elif now:
            self.send(change.line("ADDED", self.resource))
        elif before:
            self.send(change.line("DELETED", self.resource))

    def close(self) -> None:
        self.queue.put_nowait(None)


Listener = Callable[[Change], None]


class Storage:
    """Dicts of entries per storage key, the resourceVersion counter, watchers and history."""

    def __init__(self, history_size: int = 10_000) -> None:
        self.objects: dict[str, dict[Key, Entry]] = {}
        self.rv = 1
        self.history: deque[Change] = deque(maxlen=history_size)
        self.history_floor = 1  # a watch may resume from any resourceVersion >= this
        self.watchers: dict[str, set[Watcher]] = {}
        self.listeners: list[Listener] = []
        self.by_uid: dict[str, tuple[str, Key]] = {}
        self.dependents: dict[str, set[tuple[str, Key]]] = {}

    def table(self, storage: str) -> dict[Key, Entry]:
        table = self.objects.get(storage)
        if table is None:
            table = self.objects[storage] = {}
        return table

    def get(self, storage: str, key: Key) -> Entry | None:
        table = self.objects.get(storage)
        return None if table is None else table.get(key)

    def entries(self, storage: str, namespace: str | None = None) -> Iterator[Entry]:
        table = self.objects.get(storage, {})
        if namespace is None:
            yield from table.values()
        else:
            for (ns, _), entry in table.items():
                if ns == namespace:
                    yield entry

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def commit(self, storage: str, event_type: str, obj: Obj, old: Obj | None) -> Entry:
        """Store (or remove, for DELETED) `obj`, whose metadata.resourceVersion is already set."""
        meta = obj["metadata"]
        rv = int(meta["resourceVersion"])
        key = (meta.get("namespace", ""), meta["name"])
        entry = Entry(obj, rv)
        table = self.table(storage)
        uid = meta.get("uid", "")
        if old is not None:
            self._unindex_owners(storage, key, old)
        if event_type == "DELETED":
            table.pop(key, None)
            self.by_uid.pop(uid, None)
        else:
            table[key] = entry
            self.by_uid[uid] = (storage, key)
            for ref in meta.get("ownerReferences") or ():
                self.dependents.setdefault(ref.get("uid", ""), set()).add((storage, key))
        change = Change(rv, storage, event_type, entry, old)
        if len(self.history) == self.history.maxlen:
            self.history_floor = self.history[0].rv
        self.history.append(change)
        for watcher in self.watchers.get(storage, ()):
            watcher.offer(change)
        for listener in list(self.listeners):
            listener(change)
        return entry

    def _unindex_owners(self, storage: str, key: Key, old: Obj) -> None:
        for ref in old["metadata"].get("ownerReferences") or ():
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard((storage, key))
                if not deps:
                    del self.dependents[ref.get("uid", "")]

    def changes_since(self, rv: int) -> list[Change] | None:
        """History after `rv`, or None when part of it is gone (the watch must get 410)."""
        if rv < self.history_floor:
            return None
        out: list[Change] = []
        for change in reversed(self.history):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out

    def expire_history(self) -> None:
        self.history.clear()
        self.history_floor = self.rv

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.setdefault(watcher.resource.storage_key, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        watchers = self.watchers.get(watcher.resource.storage_key)
        if watchers is not None:
            watchers.discard(watcher)

    def close_watchers(self) -> int:
        count = 0
        for watchers in self.watchers.values():
            for watcher in list(watchers):
                watcher.close()
                count += 1
            watchers.clear()
        return count
