"""`TargetController` for DaemonSet targets: the pure builders of `targets.daemonset`, applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api.models import Canary
from coalmine.kube.kinds import DAEMON_SET
from coalmine.targets import daemonset
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.readiness import Readiness
from coalmine.targets.workload import WorkloadMetadata
from coalmine.targets.workload_controller import WorkloadController


class DaemonSetController(WorkloadController):
    """`<target>-primary` DaemonSet; the target parks behind a node selector no node has."""

    kind = DAEMON_SET
    label = "daemonset"

    def desired_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        meta: WorkloadMetadata,
        tracked: TrackedConfigs | None,
        template_id: str,
    ) -> dict[str, Any]:
        return daemonset.desired_primary_daemonset(
            canary,
            target,
            meta,
            include_label_prefixes=self.ctx.include_label_prefixes,
            tracked=tracked,
            template_id=template_id,
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
        return daemonset.promoted_primary_daemonset(
            canary,
            target,
            primary,
            meta,
            include_label_prefixes=self.ctx.include_label_prefixes,
            tracked=tracked,
            template_id=template_id,
        )

    def primary_readiness(self, canary: Canary, primary: Mapping[str, Any]) -> Readiness:
        return daemonset.primary_readiness(canary, primary, self.ctx.now())

    def canary_readiness(self, canary: Canary, target: Mapping[str, Any]) -> Readiness:
        return daemonset.canary_readiness(canary, target, self.ctx.now())

    def scale_to_zero_patch(self, canary: Canary) -> dict[str, Any]:
        return daemonset.scale_to_zero_patch()

    async def scale_from_zero_patch(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> dict[str, Any]:
        return daemonset.scale_from_zero_patch()

    async def finalize_patch(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]:
        return daemonset.finalize_patch()
