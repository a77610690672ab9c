"""Every target kind in one table: what the runtime watches, `coalmine status` reads, the routers
are told, and which `TargetController` releases it. Pure data (no Kubernetes client here):
adding a kind is one entry below plus its modules (`targets/<kind>.py` builders and the
`targets/<kind>_controller.py` controller named by `controller`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coalmine.api.models import KNATIVE_API_VERSION

#: A key of TARGET_KINDS (`spec.targetRef.kind`), as the routers' compatibility() receives it.
TargetKind = str


@dataclass(frozen=True)
class TargetKindInfo:
    """One target kind: how to address it on the API server, and its controller class as
    `module:Class` (imported by `targets.kinds_registry` on first use, so this table stays pure)."""

    kind: str
    api_version: str
    plural: str
    controller: str
    #: What a revision is (`targets.hashing`): the pod template (`workload`) or the Service spec.
    revision: Literal["workload", "service"] = "workload"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


TARGET_KINDS: dict[str, TargetKindInfo] = {
    info.kind: info
    for info in (
        TargetKindInfo(
            "Deployment",
            "apps/v1",
            "deployments",
            "coalmine.targets.deployment_controller:DeploymentController",
        ),
        TargetKindInfo(
            "DaemonSet",
            "apps/v1",
            "daemonsets",
            "coalmine.targets.daemonset_controller:DaemonSetController",
        ),
        TargetKindInfo(
            "Service",
            "v1",
            "services",
            "coalmine.targets.service_controller:ServiceTargetController",
            revision="service",
        ),
    )
}


def target_kind(api_version: str | None, kind: str | None) -> TargetKindInfo | None:
    """The row of a `spec.targetRef` (raw strings, as `coalmine status` reads them), None for a
    kind coalmine does not release (a Knative Service among them)."""
    if (api_version or "").startswith(KNATIVE_API_VERSION.split("/")[0]):
        return None
    return TARGET_KINDS.get(kind or "")
