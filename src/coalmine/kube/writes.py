"""Writes only on difference: desired objects from pure builders meet actual ones from the cache.

A builder says what an object should be; `ensure` creates it when missing, asks the builder's
`update` function for the object to write when it exists (None = already as desired, no request),
and retries once on a lost race with a fresh read. `merge_patch_between` turns a wanted change
into the smallest RFC 7386 patch, for callers that patch instead of replacing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coalmine.kube.api import Conflict, KubeApi, Object
from coalmine.kube.cache import Informer

UpdateFn = Callable[[Object, Object], Object | None]
"""(desired, actual) -> the object to PUT, or None when actual is already as desired."""


async def ensure(
    api: KubeApi,
    informer: Informer,
    desired: Object,
    update: UpdateFn | None,
) -> Object:
    """Create `desired` if missing; else write `update(desired, actual)` unless it is None.

    With `update=None` an existing object is left as it is (create-only objects).
    """
    metadata = desired["metadata"]
    name, namespace = metadata["name"], metadata.get("namespace")
    actual = informer.get(name, namespace)
    if actual is None and not informer.complete:
        # A cache read on demand: a miss tells nothing, ask the server (one GET, not a failed create).
        actual = await api.get_or_none(informer.kind, name, namespace)
        if actual is not None:
            await informer.observe(actual)
    for attempt in range(2):
        if actual is None:
            try:
                created = await api.create(informer.kind, desired)
            except Conflict:
                if attempt:
                    raise
                actual = await api.get(informer.kind, name, namespace)
                continue
            await informer.observe(created)
            return created
        if update is None:
            return actual
        wanted = update(desired, actual)
        if wanted is None:
            return actual
        try:
            written = await api.replace(informer.kind, wanted)
        except Conflict:
            if attempt:
                raise
            actual = await api.get_or_none(informer.kind, name, namespace)
            continue
        await informer.observe(written)
        return written
    raise AssertionError("unreachable")


def merge_patch_between(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 patch that turns `actual` into `desired` (keys missing in desired are removed)."""
    patch: dict[str, Any] = {}
    for key in actual.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        old = actual.get(key, _MISSING)
        if old == value:
            continue
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = merge_patch_between(old, value)
        else:
            patch[key] = value
    return patch


def contains(actual: Any, desired: Any) -> bool:
    """True when every field of `desired` is in `actual` with the same value (lists compared whole)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and contains(actual[key], value) for key, value in desired.items()
        )
    return bool(actual == desired)


_MISSING = object()


def version(obj: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(uid, resourceVersion): which stored state of an object this is; None without both (a
    missing object, or a built one that was never stored)."""
    if obj is None:
        return None
    metadata = obj.get("metadata") or {}
    uid, stored = metadata.get("uid"), metadata.get("resourceVersion")
    return (str(uid), str(stored)) if uid and stored else None


class InShape:
    """The objects last found (or written) in their desired shape, with the inputs of that shape.

    A builder and its comparison run every cycle for every canary; at rest nothing they read has
    changed since the last cycle. When an object's inputs (the stored versions of what its desired
    shape is built from, and of the object itself) are those it was last in shape for, the build
    and the comparison are skipped: the answer would be "no write". A changed input of any kind
    misses, so the memory can only skip work, never a write.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._inputs: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._limit = limit

    def holds(self, key: tuple[str, ...], inputs: tuple[Any, ...]) -> bool:
        return None not in inputs and self._inputs.get(key) == inputs

    def remember(self, key: tuple[str, ...], inputs: tuple[Any, ...]) -> None:
        if None in inputs:
            return
        if len(self._inputs) >= self._limit:
            self._inputs.clear()  # deleted objects' entries; one cycle of every canary refills it
        self._inputs[key] = inputs
