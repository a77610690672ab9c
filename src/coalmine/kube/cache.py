"""Watch caches: steady-state reads come from here, never from a GET per cycle.

An `Informer` lists a kind once, then watches from the list's resourceVersion. A dropped
connection resumes from the last seen resourceVersion; a `410 Gone` (history expired) relists
and reports the difference as events, so subscribers never miss a deletion. Errors back off
exponentially. Writers call `observe()` with the object a write returned, so the next read in
the same cycle already sees it, without waiting for the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from coalmine.kube.api import Gone, KubeApi, Object
from coalmine.kube.kinds import Kind

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped kinds."""

Listener = Callable[[str, Object], Awaitable[None] | None]
"""Called with ("ADDED" | "MODIFIED" | "DELETED", object) after the cache changed."""

INITIAL_BACKOFF_SECONDS = 0.2
SYNC_WAIT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0


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


class Informer:
    """A list+watch cache of one kind (optionally one namespace)."""

    def __init__(self, api: KubeApi, kind: Kind, namespace: str | None = None) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self._objects: dict[Key, Object] = {}
        self._listeners: list[Listener] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relists = 0

    # --- reads ------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> Object | None:
        """The cached object; callers must not mutate it (copy before building on it)."""
        return self._objects.get((namespace or "", name))

    def list(self, namespace: str | None = None) -> list[Object]:
        if namespace is None:
            return list(self._objects.values())
        return [obj for (ns, _), obj in self._objects.items() if ns == namespace]

    def __iter__(self) -> Iterator[Object]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def _notify(self, event_type: str, obj: Object) -> None:
        for listener in self._listeners:
            try:
                result = listener(event_type, obj)
                if result is not None:
                    await result
            except Exception:
                log.exception("listener of %s failed on %s", self.kind, event_type)

    # --- writes seen by this process --------------------------------------------------------

    async def observe(self, obj: Object) -> None:
        """Record an object a write returned, unless the watch already brought a newer one."""
        key = object_key(obj)
        current = self._objects.get(key)
        if current is not None and resource_version(current) >= resource_version(obj):
            return
        self._objects[key] = obj
        await self._notify("MODIFIED" if current is not None else "ADDED", obj)

    async def forget(self, name: str, namespace: str | None = None) -> None:
        """Record a delete this process made."""
        obj = self._objects.pop((namespace or "", name), None)
        if obj is not None:
            await self._notify("DELETED", obj)

    # --- the loop ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.kind}")
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
                async for event_type, obj in self.api.watch(self.kind, self.namespace, version):
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    await self._apply(event_type, obj)
                    backoff = INITIAL_BACKOFF_SECONDS
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("watch of %s expired at %s, relisting", self.kind, version)
                version = None
            except Exception as error:
                log.warning("watch of %s failed (%s), retrying in %.1fs", self.kind, error, backoff)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _relist(self) -> str:
        result = await self.api.list(self.kind, self.namespace)
        self.relists += 1
        fresh = {object_key(obj): obj for obj in result.items}
        stale = [obj for key, obj in self._objects.items() if key not in fresh]
        previous = self._objects
        self._objects = fresh
        for obj in stale:
            await self._notify("DELETED", obj)
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                await self._notify("ADDED", obj)
            elif resource_version(old) != resource_version(obj):
                await self._notify("MODIFIED", obj)
        self._synced.set()
        return result.resource_version

    async def _apply(self, event_type: str, obj: Object) -> None:
        if event_type == "BOOKMARK":
            return
        key = object_key(obj)
        if event_type == "DELETED":
            if self._objects.pop(key, None) is not None:
                await self._notify("DELETED", obj)
            return
        current = self._objects.get(key)
        if current is not None and resource_version(current) >= resource_version(obj):
            return
        self._objects[key] = obj
        await self._notify("MODIFIED" if current is not None else "ADDED", obj)


class Caches:
    """The informers of one controller, by kind, started and synced together."""

    def __init__(self, api: KubeApi, namespace: str | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self._informers: dict[Kind, Informer] = {}

    def informer(self, kind: Kind) -> Informer:
        informer = self._informers.get(kind)
        if informer is None:
            informer = Informer(self.api, kind, self.namespace)
            self._informers[kind] = informer
        return informer

    def __getitem__(self, kind: Kind) -> Informer:
        return self.informer(kind)

    async def start(self, *kinds: Kind) -> None:
        """Start the informers of `kinds` and wait until each has listed once."""
        informers = [self.informer(kind) for kind in kinds]
        for informer in informers:
            informer.start()
        await asyncio.gather(*(informer.wait_synced() for informer in informers))

    async def synced(self, kind: Kind, within: float | None = SYNC_WAIT_SECONDS) -> Informer:
        """The informer of `kind`, started on first use and listed at least once.

        Kinds a canary may or may not need (ScaledObjects, a router's CRD) are watched only once
        some canary needs them, so a cluster without KEDA or Istio costs nothing. A kind the
        server does not serve raises `KindUnavailable` after `within` seconds instead of waiting
        for ever; the informer keeps retrying, so a CRD installed later is picked up.
        """
        informer = self.informer(kind)
        if informer.synced:
            return informer
        informer.start()
        try:
            async with asyncio.timeout(within):
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
