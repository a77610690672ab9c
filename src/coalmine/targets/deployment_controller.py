"""`TargetController` for Deployment targets: the pure builders of `targets.deployment`, applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api.models import Canary
from coalmine.kube.kinds import DEPLOYMENT
from coalmine.targets import deployment
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.readiness import Readiness
from coalmine.targets.workload import WorkloadMetadata
from coalmine.targets.workload_controller import WorkloadController


class DeploymentController(WorkloadController):
    """`<target>-primary` Deployment; the target parks at `replicas: 0` between releases."""

    kind = DEPLOYMENT
    label = "deployment"

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
