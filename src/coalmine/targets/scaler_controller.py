"""`ScalerReconciler`s for `spec.autoscalerRef`: the primary HPA (`autoscaling/v2`) or KEDA
ScaledObject, and pausing the target's ScaledObject while the target is parked.

The builders are in `targets.autoscalers`; here they are applied, writing only on difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api.models import Canary
from coalmine.kube.api import Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import HPA, SCALED_OBJECT, Kind
from coalmine.kube.writes import ensure
from coalmine.targets.autoscalers import (
    desired_primary_hpa,
    desired_primary_scaled_object,
    is_scaled_object_paused,
    pause_scaled_object_patch,
    primary_scaler_update,
    resume_scaled_object_patch,
    scaler_not_found,
)
from coalmine.targets.cluster_io import (
    informer_for,
    patch_if_needed,
    read,
)


class _PrimaryScaler:
    kind: Kind

    def desired(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def __init__(self, ctx: ClusterContext, *, sync_timeout: float | None = None) -> None:
        self.ctx = ctx
        self.sync_timeout = sync_timeout

    async def target_scaler(self, canary: Canary) -> Object:
        ref = canary.spec.autoscaler_ref
        if ref is None:
            raise scaler_not_found(canary)
        await informer_for(self.ctx, self.kind, self.sync_timeout)
        obj = await read(self.ctx, self.kind, ref.name, canary.namespace)
        if obj is None:
            error = scaler_not_found(canary)
            error.retriable = True
            raise error
        return obj

    async def reconcile_primary_scaler(self, canary: Canary, *, init: bool) -> None:
        """`init=True`: create if missing; `init=False`: also bring it in line with the target's."""
        desired = self.desired(canary, await self.target_scaler(canary))
        informer = await informer_for(self.ctx, self.kind, self.sync_timeout)
        await ensure(self.ctx.api, informer, desired, None if init else primary_scaler_update)


class HpaScaler(_PrimaryScaler):
    """`<name>-primary` HPA; pausing is not needed (an HPA leaves a zero-replica Deployment be)."""

    kind = HPA

    def desired(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]:
        return desired_primary_hpa(canary, target)

    async def pause_target_scaler(self, canary: Canary) -> None:
        return None

    async def resume_target_scaler(self, canary: Canary) -> None:
        return None


class KedaScaler(_PrimaryScaler):
    """`<name>-primary` ScaledObject; the target's is held at 0 by KEDA's paused-replicas."""

    kind = SCALED_OBJECT

    def desired(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]:
        return desired_primary_scaled_object(canary, target)

    async def pause_target_scaler(self, canary: Canary) -> None:
        target = await self.target_scaler(canary)
        if not is_scaled_object_paused(target):
            await patch_if_needed(self.ctx, self.kind, target, pause_scaled_object_patch())

    async def resume_target_scaler(self, canary: Canary) -> None:
        await patch_if_needed(
            self.ctx, self.kind, await self.target_scaler(canary), resume_scaled_object_patch()
        )
