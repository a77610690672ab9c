"""`TargetController` for Deployment targets: the pure builders of `targets.deployment`, applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import DEPLOYMENT
from coalmine.targets import deployment
from coalmine.targets.baseline_controller import BaselineController
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.readiness import Readiness
from coalmine.targets.workload import WorkloadMetadata
from coalmine.targets.workload_controller import WorkloadController, raise_unless_ready


class DeploymentController(WorkloadController):
    """`<target>-primary` Deployment; the target parks at `replicas: 0` between releases."""

    kind = DEPLOYMENT
    label = "deployment"

    def __init__(self, ctx: ClusterContext) -> None:
        super().__init__(ctx)
        self.baseline = BaselineController(ctx)

    # --- a fresh baseline (targets.baseline_controller) around the workload life cycle ---------

    async def initialize(self, canary: Canary) -> None:
        await super().initialize(canary)
        await self.baseline.remove_unwanted(canary)

    async def is_canary_ready(self, canary: Canary) -> None:
        """The canary, then (when a run analyses with one) the baseline, ready."""
        target = await self.target(canary)
        raise_unless_ready(self.canary_readiness(canary, target))
        if canary.spec.wants_baseline:
            meta = self.metadata_of(canary, target)
            selector = {meta.label: naming.baseline_label_value(meta.label_value)}
            await self.baseline.ensure_service(canary, selector)
            await self.baseline.ensure_deployment(canary, target, meta.label, meta.label_value)

    async def scale_to_zero(self, canary: Canary) -> None:
        await super().scale_to_zero(canary)
        await self.baseline.remove(canary)

    async def finalize(self, canary: Canary) -> None:
        await super().finalize(canary)
        await self.baseline.remove(canary)

    def desired_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        meta: WorkloadMetadata,
        tracked: TrackedConfigs | None,
        template_id: str,
    ) -> dict[str, Any]:
        return deployment.desired_primary_deployment(
            canary,
            target,
            meta,
            include_label_prefixes=self.ctx.include_label_prefixes,
            tracked=tracked,
            template_id=template_id,
            selector_labels=self.ctx.selector_labels,
        )

    def promoted_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        primary: Mapping[str, Any],
        meta: WorkloadMetadata,
        tracked: TrackedConfigs | None,
        template_id: str,
    ) -> dict[str, Any]:
        return deployment.promoted_primary_deployment(
            canary,
            target,
            primary,
            meta,
            include_label_prefixes=self.ctx.include_label_prefixes,
            tracked=tracked,
            template_id=template_id,
            selector_labels=self.ctx.selector_labels,
        )

    def primary_readiness(self, canary: Canary, primary: Mapping[str, Any]) -> Readiness:
        return deployment.primary_readiness(canary, primary, self.ctx.now())

    def canary_readiness(self, canary: Canary, target: Mapping[str, Any]) -> Readiness:
        return deployment.canary_readiness(canary, target, self.ctx.now())

    def scale_to_zero_patch(self, canary: Canary) -> dict[str, Any]:
        return deployment.scale_to_zero_patch()

    async def scale_from_zero_patch(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> dict[str, Any]:
        return deployment.scale_from_zero_patch(
            canary, target, await self.primary(canary), await self.autoscaler(canary)
        )

    async def finalize_patch(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]:
        return deployment.finalize_patch(
            canary, target, await self.primary(canary), await self.autoscaler(canary)
        )
