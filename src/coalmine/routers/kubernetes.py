"""The `kubernetes` routers: the apex/primary/canary Services of workload targets, and the no-op
mesh router of `provider: kubernetes` (Blue/Green without traffic shifting).

* `KubernetesServiceRouter` (Flagger's KubernetesDefaultRouter) applies the builders of
  `routers.kubernetes_services`: `<apex>-canary` and `<apex>-primary` in `initialize`, `<apex>` in
  `reconcile`, every one written only when it differs;
* `NoopServiceRouter` serves Service targets, whose apex is the user's own Service;
* `KubernetesMeshRouter` has no routing object: the scheduler runs Blue/Green and the switch is the
  promotion itself.
"""

from __future__ import annotations

import json
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.api import Conflict, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import SERVICE
from coalmine.kube.writes import ensure
from coalmine.routers.base import Routes, ServiceRouter, SessionAffinityCookies
from coalmine.routers.kubernetes_services import (
    Role,
    desired_service,
    merge_for_update,
    service_name,
)
from coalmine.targets.base import TargetMetadata
from coalmine.targets.cluster_io import fresh, informer_for, read
from coalmine.targets.workload import WorkloadMetadata

WRITE_ATTEMPTS = 3


def _workload_metadata(metadata: TargetMetadata) -> WorkloadMetadata:
    return WorkloadMetadata(metadata.label, metadata.label_value, dict(metadata.ports))


def has_canary_controller(obj: Object) -> bool:
    """Whether some Canary controls `obj` (then it is garbage-collected, never handed back)."""
    return any(
        ref.get("controller") and ref.get("kind") == naming.CANARY_KIND
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def last_applied_selector(obj: Object) -> dict[str, str] | None:
    """The selector in kubectl's last-applied copy of `obj`, when there is a readable one."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(naming.KUBECTL_LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        stored: Any = json.loads(text)
    except ValueError:
        return None
    selector = (stored.get("spec") or {}).get("selector") if isinstance(stored, dict) else None
    return dict(selector) if isinstance(selector, dict) else None


class KubernetesServiceRouter:
    """The three ClusterIP Services of a Deployment/DaemonSet canary."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx

    async def _reconcile(self, canary: Canary, role: Role, metadata: TargetMetadata) -> Object:
        informer = await informer_for(self.ctx, SERVICE)
        desired = desired_service(canary, role, _workload_metadata(metadata))
        return await ensure(
            self.ctx.api,
            informer,
            desired,
            lambda wanted, actual: merge_for_update(wanted, actual, canary),
        )

    async def initialize(self, canary: Canary, metadata: TargetMetadata) -> None:
        await self._reconcile(canary, "canary", metadata)
        await self._reconcile(canary, "primary", metadata)

    async def reconcile(self, canary: Canary, metadata: TargetMetadata) -> None:
        await self._reconcile(canary, "apex", metadata)

    async def finalize(self, canary: Canary, metadata: TargetMetadata) -> None:
        """Point a pre-existing apex Service back at the target's own pods.

        Services a Canary controls are left to garbage collection. Otherwise the selector comes
        from kubectl's last-applied copy when there is one, else it is `<label>: <value>` with the
        canary's ports (Flagger's order).
        """
        name = service_name(canary, "apex")
        apex = await read(self.ctx, SERVICE, name, canary.namespace)
        for attempt in range(WRITE_ATTEMPTS):
            if apex is None or has_canary_controller(apex):
                return
            selector = last_applied_selector(apex)
            wanted: Object | None = None
            if selector is not None:
                spec = dict(apex.get("spec") or {})
                if spec.get("selector") != selector:
                    wanted = {k: v for k, v in apex.items() if k != "status"}
                    wanted["spec"] = {**spec, "selector": selector}
            else:
                desired = desired_service(canary, "apex", _workload_metadata(metadata))
                desired["spec"]["selector"] = {metadata.label: metadata.label_value}
                wanted = merge_for_update(desired, apex, canary)
            if wanted is None:
                return
            try:
                written = await self.ctx.api.replace(SERVICE, wanted)
            except Conflict:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                apex = await fresh(self.ctx, SERVICE, name, canary.namespace)
                continue
            await self.ctx.caches.informer(SERVICE).observe(written)
            return


class NoopServiceRouter:
    """Service targets: the apex is the user's Service, which coalmine never changes."""

    async def initialize(self, canary: Canary, metadata: TargetMetadata) -> None:
        return None

    async def reconcile(self, canary: Canary, metadata: TargetMetadata) -> None:
        return None

    async def finalize(self, canary: Canary, metadata: TargetMetadata) -> None:
        return None


class KubernetesMeshRouter:
    """`provider: kubernetes`: no routing object; the scheduler forces Blue/Green.

    Routes are reported as the Services make them: all traffic on the primary until the first
    iteration of a run, then, the canary having been "switched to" for the analysis, all on the
    canary (Flagger's KubernetesNoopRouter semantics as the scheduler expects them).
    """

    supports_mirroring = False

    async def reconcile(self, canary: Canary) -> None:
        return None

    async def set_routes(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool,
        *,
        baseline_weight: int = 0,
    ) -> SessionAffinityCookies | None:
        return None

    async def get_routes(self, canary: Canary) -> Routes:
        iterations = (canary.status.iterations or 0) if canary.status else 0
        return Routes(0, 100, False) if iterations > 0 else Routes(100, 0, False)

    async def finalize(self, canary: Canary) -> None:
        return None


def service_router_for(canary: Canary, ctx: ClusterContext) -> ServiceRouter:
    """The service router of the canary's target kind (no-op for Service targets)."""
    if canary.spec.target_ref.kind == "Service":
        return NoopServiceRouter()
    return KubernetesServiceRouter(ctx)
