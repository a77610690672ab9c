"""Watch caches: steady-state reads come from here, never from a GET per cycle.

An `Informer` lists a kind once, then watches from the list's resourceVersion. A watch that ends
with an API error (a 500) resumes from the last seen resourceVersion; one that loses the
connection re-lists, because the server may have restarted, and a server restored from a backup
(etcd restore, a fresh devcluster) has resourceVersions we are ahead of: resuming there would wait
for ever. A `410 Gone`, "too large resource version", or an event older than what we hold also
re-lists. A re-list reports the difference as events (an object re-created with a new uid is
MODIFIED), so subscribers never miss a deletion. Errors back off exponentially with jitter, capped
at a few seconds so a recovered server is seen at once, and the backoff resets on every
successful list or event. Writers call `observe()` with the object a write returned, so the next
read in the same cycle already sees it, without waiting for the watch.

Kinds in `Caches(on_demand=...)` (Secrets and ConfigMaps) are never listed or watched: see
`OnDemandCache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from coalmine.kube import reads
from coalmine.kube.api import Gone, KubeApi, KubeApiError, NotFound, Object
from coalmine.kube.failures import RepeatLimiter
from coalmine.kube.kinds import Kind

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped kinds."""

Listener = Callable[[str, Object], Awaitable[None] | None]
"""Called with ("ADDED" | "MODIFIED" | "DELETED", object) after the cache changed."""

INITIAL_BACKOFF_SECONDS = 0.2
SYNC_WAIT_SECONDS = 5.0
"""Default of `Caches(sync_wait=...)`: how long a read waits for a kind's first list (a missing CRD
never lists)."""
MAX_BACKOFF_SECONDS = 4.0
"""Retries of a failing list or watch, at most this far apart (before jitter): a server that comes
back is seen within seconds, and during an outage each informer asks every few seconds only."""
ON_DEMAND_TTL_SECONDS = 5.0


class _StateReset(RuntimeError):
    """The server's resourceVersions are behind ours: it lost state; re-list."""


class KindUnavailable(RuntimeError):
    """The API server does not serve a kind (e.g. KEDA's CRD is not installed); waiting may help."""

    retriable = True


def object_key(obj: Object) -> Key:
    metadata = obj.get("metadata", {})
    return metadata.get("namespace") or "", metadata.get("name") or ""


def resource_version(obj: Object) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def uid_of(obj: Object | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _newer(current: Object | None, obj: Object) -> bool:
    """Whether `obj` replaces `current`: a later resourceVersion, or another object (new uid)."""
    if current is None:
        return True
    if uid_of(current) and uid_of(obj) and uid_of(current) != uid_of(obj):
        return True
    return resource_version(obj) > resource_version(current)


def _too_large(error: KubeApiError) -> bool:
    """kube-apiserver's answer to a resume from a resourceVersion it has not reached."""
    return "too large resource version" in str(error).lower()


class Informer:
    """A list+watch cache of one kind (optionally one namespace)."""

    def __init__(self, api: KubeApi, kind: Kind, namespace: str | None = None) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self._objects: dict[Key, Object] = {}
        self._listeners: list[Listener] = []
        self._synced = asyncio.Event()
        self._current = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = RepeatLimiter(log)
        self._highest = 0
        self.relists = 0
        self.resets = 0

    # --- reads ------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> Object | None:
        """The cached object; callers must not mutate it (copy before building on it)."""
        key = (namespace or "", name)
        found = self._objects.get(key)
        trace = reads.current()
        if trace is not None:
            trace.read(self, key, found)
        return found

    def peek(self, key: Key) -> Object | None:
        """The object under `key`, unseen by a cycle's trace (`kube.reads`)."""
        return self._objects.get(key)

    def list(self, namespace: str | None = None) -> list[Object]:
        reads.spoil()  # a set of objects: a trace keeps single objects only
        if namespace is None:
            return list(self._objects.values())
        return [obj for (ns, _), obj in self._objects.items() if ns == namespace]

    def __iter__(self) -> Iterator[Object]:
        reads.spoil()
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def resource_version(self) -> int:
        """The highest resourceVersion seen: of a list, an event, or a bookmark."""
        return self._highest

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    complete = True
    """A miss means the object does not exist (listed and watched), unlike an `OnDemandCache`."""

    @property
    def current(self) -> bool:
        """False from a lost connection until the re-list: the cache may describe a server that
        no longer exists (restarted with other state), so writes derived from it must wait."""
        return self._current.is_set()

    async def wait_current(self, within: float) -> bool:
        if not self._current.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_wait if within is None else within):
                    await self._current.wait()
        return self._current.is_set()

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def _notify(self, event_type: str, obj: Object) -> None:
        for listener in self._listeners:
            try:
                result = listener(event_type, obj)
                if result is not None:
                    await result
            except Exception as error:
                self._failures.failed(f"listener of {self.kind} failed on {event_type}", error)

    # --- writes seen by this process --------------------------------------------------------

    async def observe(self, obj: Object) -> None:
        """Record an object a write returned, unless the watch already brought a newer one."""
        key = object_key(obj)
        current = self._objects.get(key)
        if not _newer(current, obj):
            return
        self._objects[key] = lean(obj)
        await self._notify("MODIFIED" if current is not None else "ADDED", obj)

    async def forget(self, name: str, namespace: str | None = None) -> None:
        """Record a delete this process made."""
        obj = self._objects.pop((namespace or "", name), None)
        if obj is not None:
            await self._notify("DELETED", obj)

    # --- the loop ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            # In a context of its own: an informer started by a cycle is not part of that cycle.
            self._task = asyncio.create_task(
                self.run(), name=f"informer {self.kind}", context=contextvars.Context()
            )
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        backoff = INITIAL_BACKOFF_SECONDS
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._relist()
                    backoff = INITIAL_BACKOFF_SECONDS
                # closed at once when the loop leaves it (a reset, a cancel): frees its connection
                async with contextlib.aclosing(
                    self.api.watch(self.kind, self.namespace, version)
                ) as events:
                    async for event_type, obj in events:
                        version = self._check_version(obj) or version
                        await self._apply(event_type, obj)
                        backoff = INITIAL_BACKOFF_SECONDS
                        self._recovered()
            except asyncio.CancelledError:
                raise
            except (Gone, _StateReset) as error:
                log.info("watch of %s from %s must re-list (%s)", self.kind, version, error)
                version = None
            except Exception as error:
                if isinstance(error, KubeApiError | NotFound):
                    # The server answered: it is there; resume unless it never had our version.
                    if isinstance(error, KubeApiError) and _too_large(error):
                        version = None
                else:
                    # A lost connection: the server may come back with other state.
                    self._current.clear()
                    version = None
                self._failures.failed(f"watch of {self.kind} failed, retrying", error)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _check_version(self, obj: Object) -> str | None:
        """The event's resourceVersion; `_StateReset` when it is older than one already seen (a
        watch's events only go forward: the server went back in time, e.g. restored state)."""
        text = obj.get("metadata", {}).get("resourceVersion")
        seen = resource_version(obj)
        if seen and seen < self._highest:
            raise _StateReset(f"event at resourceVersion {seen} after {self._highest}")
        self._highest = max(self._highest, seen)
        return str(text) if text else None

    def _recovered(self) -> None:
        if self._failures.failing:
            self._failures.clear(f"watch of {self.kind}")

    async def _relist(self) -> str:
        result = await self.api.list(self.kind, self.namespace)
        self.relists += 1
        try:
            listed = int(result.resource_version or 0)
        except ValueError:
            listed = 0
        if listed and listed < self._highest:
            self.resets += 1
            log.warning(
                "API server state of %s went back in time (resourceVersion %d after %d): "
                "re-listed, cached objects replaced",
                self.kind,
                listed,
                self._highest,
            )
        self._highest = listed
        fresh = {object_key(obj): lean(obj) for obj in result.items}
        stale = [obj for key, obj in self._objects.items() if key not in fresh]
        previous = self._objects
        self._objects = fresh
        self._synced.set()
        self._current.set()
        self._recovered()
        for obj in stale:
            await self._notify("DELETED", obj)
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                await self._notify("ADDED", obj)
            elif resource_version(old) != resource_version(obj) or uid_of(old) != uid_of(obj):
                await self._notify("MODIFIED", obj)
        return result.resource_version

    async def _apply(self, event_type: str, obj: Object) -> None:
        if event_type == "BOOKMARK":
            return
        key = object_key(obj)
        if event_type == "DELETED":
            current = self._objects.get(key)
            if current is not None and (not uid_of(obj) or uid_of(obj) == uid_of(current)):
                del self._objects[key]
                await self._notify("DELETED", obj)
            return
        current = self._objects.get(key)
        if not _newer(current, obj):
            return
        self._objects[key] = lean(obj)
        await self._notify("MODIFIED" if current is not None else "ADDED", obj)


def lean(obj: Object) -> Object:
    """The object as cached: without `metadata.managedFields`, which the controller never reads
    and which a real API server adds to every object, often its largest part (controller-runtime's
    caches drop it too). A PUT that omits the field keeps the server's, so nothing is lost."""
    metadata = obj.get("metadata")
    if metadata and "managedFields" in metadata:
        del metadata["managedFields"]
    return obj


class OnDemandCache(Informer):
    """Objects read one at a time when needed and kept `ttl` seconds: never listed or watched.

    For Secrets and ConfigMaps: only the few that tracked configs and provider credentials name
    are ever read, so the controller needs `get` on them, not `list`/`watch` on every Secret of
    the cluster. `get()` answers from memory while the copy is younger than `ttl` (a cycle reads
    a config several times, once per GET then); a miss tells nothing (`complete` is False), so
    readers fall back to a GET (`targets.cluster_io.read`). `last_known()` ignores the age, for
    synchronous readers that refreshed the object at the start of the cycle.
    """

    complete = False

    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        namespace: str | None = None,
        ttl: float = ON_DEMAND_TTL_SECONDS,
    ) -> None:
        super().__init__(api, kind, namespace)
        self.ttl = ttl
        self._read_at: dict[Key, float] = {}
        self._synced.set()
        self._current.set()

    def get(self, name: str, namespace: str | None = None) -> Object | None:
        reads.spoil()  # a copy that expires by age is an input a trace cannot compare
        key = (namespace or "", name)
        read_at = self._read_at.get(key)
        if read_at is None or time.monotonic() - read_at > self.ttl:
            return None
        return self._objects.get(key)

    def last_known(self, name: str, namespace: str | None = None) -> Object | None:
        reads.spoil()
        return self._objects.get((namespace or "", name))

    async def refresh(self, name: str, namespace: str) -> Object | None:
        """The object, from memory while fresh, else from one GET (None when it does not exist)."""
        cached = self.get(name, namespace)
        if cached is not None:
            return cached
        fetched = await self.api.get_or_none(self.kind, name, namespace)
        if fetched is None:
            await self.forget(name, namespace)
        else:
            await self.observe(fetched)
        return fetched

    async def observe(self, obj: Object) -> None:
        key = object_key(obj)
        self._read_at[key] = time.monotonic()
        current = self._objects.get(key)
        self._objects[key] = lean(obj)
        if current is None or resource_version(current) != resource_version(obj):
            await self._notify("MODIFIED" if current is not None else "ADDED", obj)

    async def forget(self, name: str, namespace: str | None = None) -> None:
        self._read_at.pop((namespace or "", name), None)
        await super().forget(name, namespace)

    def start(self) -> asyncio.Task[None]:
        raise RuntimeError(f"{self.kind} is read on demand, never watched")


class Caches:
    """The informers of one controller, by kind, started and synced together."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str | None = None,
        on_demand: frozenset[Kind] = frozenset(),
        sync_wait: float = SYNC_WAIT_SECONDS,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.on_demand = on_demand
        self.sync_wait = sync_wait
        self._informers: dict[Kind, Informer] = {}

    def informer(self, kind: Kind) -> Informer:
        informer = self._informers.get(kind)
        if informer is None:
            if kind in self.on_demand:
                informer = OnDemandCache(self.api, kind, self.namespace)
            else:
                informer = Informer(self.api, kind, self.namespace)
            self._informers[kind] = informer
        return informer

    def on_demand_cache(self, kind: Kind) -> OnDemandCache:
        """The `OnDemandCache` of `kind` (one of `on_demand`); a plain informer is an error."""
        informer = self.informer(kind)
        if not isinstance(informer, OnDemandCache):
            raise TypeError(f"{kind} is listed and watched, not read on demand")
        return informer

    def __getitem__(self, kind: Kind) -> Informer:
        return self.informer(kind)

    async def start(self, *kinds: Kind) -> None:
        """Start the informers of `kinds` and wait until each has listed once."""
        informers = [self.informer(kind) for kind in kinds]
        for informer in informers:
            informer.start()
        await asyncio.gather(*(informer.wait_synced() for informer in informers))

    async def synced(self, kind: Kind, within: float | None = None) -> Informer:
        """The informer of `kind`, started on first use and listed at least once.

        Kinds a canary may or may not need (ScaledObjects, a router's CRD) are watched only once
        some canary needs them, so a cluster without KEDA or Istio costs nothing. A kind the
        server does not serve raises `KindUnavailable` after `within` seconds (default: the
        `sync_wait` given to `Caches`) instead of waiting for ever; the informer keeps retrying, so
        a CRD installed later is picked up.
        """
        informer = self.informer(kind)
        if informer.synced:
            return informer
        informer.start()
        try:
            async with asyncio.timeout(self.sync_wait if within is None else within):
                await informer.wait_synced()
        except TimeoutError:
            raise KindUnavailable(
                f"cannot list {kind.kind} ({kind.api_version}): is its CRD installed?"
            ) from None
        return informer

    async def stop(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))

    def stats(self) -> dict[str, Any]:
        return {str(kind): len(informer) for kind, informer in self._informers.items()}
