"""Per-canary implementations of the scheduler's seams, resolved each cycle as Flagger does.

Target kinds and the Kubernetes Service router come from `coalmine.targets.kinds_registry` and
`coalmine.routers.kubernetes`; mesh routers are the pure routers of `coalmine.routers.registry`
behind `MeshRouter`, which reads the objects they name from the watch cache and writes what
they return, only when it differs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.api import Conflict, NotFound, Object
from coalmine.kube.cache import object_key
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import kind_for
from coalmine.routers.base import Router, Routes, ServiceRouter, SessionAffinityCookies
from coalmine.routers.common import Delete, PureRouter, RouterError, RouteUpdate, Write
from coalmine.routers.kubernetes import KubernetesMeshRouter, service_router_for
from coalmine.routers.objects import contained_in
from coalmine.routers.registry import router_for
from coalmine.targets.base import ScalerReconciler, TargetController
from coalmine.targets.kinds_registry import scaler_for, target_controller_for

if TYPE_CHECKING:
    from coalmine.scheduler.ports import Seams

log = logging.getLogger(__name__)


WRITE_ATTEMPTS = 3


class MeshRouter:
    """The I/O half of a pure router: cache reads in, writes on difference out.

    A write that loses a race (409: someone else changed the object since the cache saw it, e.g.
    a Gateway controller writing an HTTPRoute's status) is recomputed from the objects read
    again from the API server, so the pure router decides on what is really there.

    Each object is read and written in the cluster `ctx.routing(kind)` names (the mesh cluster
    of `--kubeconfig-service-mesh` for routing CRDs): every pure router inherits the split.
    """

    def __init__(self, ctx: ClusterContext, pure: PureRouter) -> None:
        self.ctx = ctx
        self.pure = pure
        self.supports_mirroring = pure.capabilities.mirroring

    async def _existing(self, canary: Canary, *, fresh: bool = False) -> list[Object]:
        """The routing objects from the cache, or (`fresh`) from the API server. An object of
        another namespace than the watched one (Gloo's `upstreamRef` in `gloo-system` under
        `--namespace`) is read from the API server: the cache never sees it."""
        found: list[Object] = []
        for ref in self.pure.references(canary):
            kind = kind_for(ref.api_version, ref.kind)
            cluster = self.ctx.routing(kind)
            async with cluster.guard(f"reading {ref.kind} {ref.name}.{ref.namespace}"):
                informer = await cluster.caches.synced(kind)
                if informer.namespace and ref.namespace and ref.namespace != informer.namespace:
                    obj = await cluster.api.get_or_none(kind, ref.name, ref.namespace)
                elif fresh:
                    obj = await cluster.api.get_or_none(kind, ref.name, ref.namespace)
                    if obj is not None:
                        await informer.observe(obj)
                    else:
                        await informer.forget(ref.name, ref.namespace)
                else:
                    obj = informer.get(ref.name, ref.namespace)
            if obj is not None:
                found.append(obj)
        return found

    async def _write(self, objects: Sequence[Object], existing: Sequence[Object]) -> None:
        """Create what is new, replace what changed (the pure router already compared)."""
        present = {(o.get("kind"), *object_key(o)): o for o in existing}
        for wanted in objects:
            kind = kind_for(wanted["apiVersion"], wanted["kind"])
            cluster = self.ctx.routing(kind)
            obj = wanted if cluster.owner_references else without_canary_owner(wanted)
            key = (obj.get("kind"), *object_key(obj))
            if obj is not wanted and key in present and contained_in(obj, present[key]):
                continue  # only the owner reference differed, and it must stay out
            namespace, name = object_key(obj)
            async with cluster.guard(f"writing {kind.kind} {name}.{namespace}"):
                informer = await cluster.caches.synced(kind)
                if key in present and obj.get("metadata", {}).get("resourceVersion"):
                    written = await cluster.api.replace(kind, obj)
                else:
                    written = await cluster.api.create(kind, obj)
            await informer.observe(written)

    async def _apply(self, canary: Canary, compute: Callable[[list[Object]], list[Object]]) -> None:
        """Write what `compute` makes of the live objects, recomputing after a lost race."""
        existing = await self._existing(canary)
        for attempt in range(WRITE_ATTEMPTS):
            try:
                await self._write(compute(existing), existing)
                return
            except Conflict:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                existing = await self._existing(canary, fresh=True)

    async def reconcile(self, canary: Canary) -> None:
        await self._apply(canary, lambda existing: self.pure.reconcile(canary, existing))

    async def set_routes(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool,
        *,
        baseline_weight: int = 0,
    ) -> SessionAffinityCookies | None:
        updates: list[RouteUpdate] = []

        def compute(existing: list[Object]) -> list[Object]:
            update = self.pure.set_routes(
                canary,
                existing,
                primary_weight,
                canary_weight,
                mirrored,
                baseline_weight=baseline_weight,
            )
            updates.append(update)
            return update.objects

        await self._apply(canary, compute)
        return updates[-1].cookies

    async def get_routes(self, canary: Canary) -> Routes:
        return self.pure.get_routes(canary, await self._existing(canary))

    async def finalize(self, canary: Canary) -> None:
        def writes(existing: list[Object]) -> list[Object]:
            actions = self.pure.finalize(canary, existing)
            return [action.obj for action in actions if isinstance(action, Write)]

        await self._apply(canary, writes)
        for action in self.pure.finalize(canary, await self._existing(canary)):
            if isinstance(action, Delete):
                ref = action.ref
                kind = kind_for(ref.api_version, ref.kind)
                cluster = self.ctx.routing(kind)
                async with cluster.guard(f"deleting {ref.kind} {ref.name}.{ref.namespace}"):
                    with contextlib.suppress(NotFound):
                        await cluster.api.delete(kind, ref.name, ref.namespace)
                await cluster.caches[kind].forget(ref.name, ref.namespace)


def without_canary_owner(obj: Object) -> Object:
    """`obj` without owner references to a Canary (kept: those to anything else)."""
    metadata = obj.get("metadata") or {}
    refs = metadata.get("ownerReferences")
    if not refs:
        return obj
    kept = [ref for ref in refs if ref.get("kind") != naming.CANARY_KIND]
    copy = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "ownerReferences"}}
    if kept:
        copy["metadata"]["ownerReferences"] = kept
    return copy


class ControllerSeams:
    """The `Seams` the scheduler resolves per canary and cycle."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx

    def target(self, canary: Canary) -> TargetController:
        return target_controller_for(canary, self.ctx)

    def scaler(self, canary: Canary) -> ScalerReconciler | None:
        return scaler_for(canary, self.ctx)

    def service_router(self, canary: Canary) -> ServiceRouter:
        return service_router_for(canary, self.ctx)

    def mesh_router(self, canary: Canary, provider: str) -> Router:
        selection = router_for(
            provider,
            ingress_class=self.ctx.ingress_class or None,
            ingress_annotations_prefix=self.ctx.ingress_annotations_prefix,
            mesh_name=self.ctx.mesh_name,
        )
        if selection.warning:
            log.warning("%s (canary %s)", selection.warning, canary.key)
        if selection.router is None:
            return KubernetesMeshRouter()
        return MeshRouter(self.ctx, selection.router)


__all__ = ["ControllerSeams", "MeshRouter", "RouterError"]

if TYPE_CHECKING:
    _SEAMS: type[Seams] = ControllerSeams
    _ROUTER: type[Router] = MeshRouter
