"""Reads and writes shared by the target, scaler and Kubernetes-router implementations.

Reads come from the watch cache; a cache miss falls back to one GET (an object created a moment
ago by someone else may not have arrived through the watch yet), so "missing" is only reported
when the API server agrees. Writes happen only when they change something.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from coalmine.kube.api import Conflict, NotFound, Object
from coalmine.kube.cache import Informer
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import Kind
from coalmine.targets.base import TargetNotReady
from coalmine.targets.errors import TargetError


async def informer_for(
    ctx: ClusterContext, kind: Kind, sync_timeout: float | None = None
) -> Informer:
    """The started, listed informer of `kind`; `KindUnavailable` when it cannot list within
    `sync_timeout` (default: the caches' `sync_wait`)."""
    return await ctx.caches.synced(kind, sync_timeout)


def not_found(label: str, name: str, namespace: str) -> TargetError:
    """Flagger's wording for a missing object; retriable, since the user may still create it."""
    return TargetError(f"{label} {name}.{namespace} get query error: not found", retriable=True)


async def read(ctx: ClusterContext, kind: Kind, name: str, namespace: str) -> Object | None:
    """The object from the cache, else from one GET (recorded in the cache); None when missing."""
    informer = await informer_for(ctx, kind)
    cached = informer.get(name, namespace)
    if cached is not None:
        return cached
    fetched = await ctx.api.get_or_none(kind, name, namespace)
    if fetched is not None:
        await informer.observe(fetched)
    return fetched


async def require(ctx: ClusterContext, kind: Kind, name: str, namespace: str, label: str) -> Object:
    """`read`, raising Flagger's `<label> <name>.<ns> get query error: not found` when missing."""
    obj = await read(ctx, kind, name, namespace)
    if obj is None:
        raise not_found(label, name, namespace)
    return obj


async def fresh(ctx: ClusterContext, kind: Kind, name: str, namespace: str) -> Object | None:
    """The object as the server has it now (after a lost write race), recorded in the cache."""
    obj = await ctx.api.get_or_none(kind, name, namespace)
    if obj is not None:
        await ctx.caches.informer(kind).observe(obj)
    return obj


def patch_changes(obj: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether applying the RFC 7386 merge `patch` to `obj` would change it (an absent map
    and an empty one are the same, as the API server omits empty maps)."""
    for key, value in patch.items():
        if value is None:
            if key in obj:
                return True
        elif isinstance(value, Mapping):
            # A missing map counts as empty: removing a key from it changes nothing.
            current = obj.get(key) or {}
            if not isinstance(current, Mapping):
                return True
            if patch_changes(current, value):
                return True
        elif obj.get(key) != value:
            return True
    return False


async def patch_if_needed(
    ctx: ClusterContext, kind: Kind, obj: Object, patch: Mapping[str, Any]
) -> Object:
    """Merge-patch `obj` unless the patch would change nothing (no request then)."""
    if not patch_changes(obj, patch):
        return obj
    metadata = obj.get("metadata") or {}
    patched = await ctx.api.patch(kind, metadata["name"], dict(patch), metadata.get("namespace"))
    await ctx.caches.informer(kind).observe(patched)
    return patched


async def recreate(ctx: ClusterContext, kind: Kind, desired: Object) -> Object:
    """Delete the existing object and create `desired` in its place (immutable fields changed).

    If the old object is still being deleted (finalizers), the create is refused; that is a
    retriable wait, the next cycle tries again.
    """
    metadata = desired["metadata"]
    name, namespace = metadata["name"], metadata.get("namespace")
    informer = ctx.caches.informer(kind)
    with contextlib.suppress(NotFound):
        await ctx.api.delete(kind, name, namespace)
    await informer.forget(name, namespace)
    try:
        created = await ctx.api.create(kind, desired)
    except Conflict:
        raise TargetNotReady(
            f"{kind.kind.lower()} {name}.{namespace} is being recreated: "
            "waiting for the old object to be deleted",
            retriable=True,
        ) from None
    await informer.observe(created)
    return created


def revision_of(obj: Mapping[str, Any] | None, annotation: str) -> str | None:
    """The value of `annotation` on `obj` (None when the object or the annotation is absent)."""
    if obj is None:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(annotation)
    return None if value is None else str(value)


def with_annotation(obj: Object, key: str, value: str) -> Object:
    """`obj` (modified in place and returned) carrying annotation `key: value`."""
    metadata = obj.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    annotations[key] = value
    metadata["annotations"] = annotations
    return obj
