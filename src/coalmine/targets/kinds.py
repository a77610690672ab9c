"""Every target kind in one table: what the runtime watches, `coalmine status` reads, the routers
are told, and which `TargetController` releases it. Pure data (no Kubernetes client here):
adding a kind is one entry below plus its modules (`targets/<kind>.py` builders and the
`targets/<kind>_controller.py` controller named by `controller`).

Rows are keyed by `TargetKindInfo.key`: the kind for the core and `apps` groups, `<kind>.<group>`
otherwise, because `kind: Service` names a core Service or, with `apiVersion:
serving.knative.dev/v1`, a Knative Service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coalmine.api.models import KNATIVE_API_VERSION

#: A key of TARGET_KINDS (`TargetKindInfo.key`), as the routers' compatibility() receives it.
TargetKind = str

_BUILTIN_GROUPS = ("", "apps")


@dataclass(frozen=True)
class TargetKindInfo:
    """One target kind: how to address it on the API server, and its controller class as
    `module:Class` (imported by `targets.kinds_registry` on first use, so this table stays pure)."""

    kind: str
    api_version: str
    plural: str
    controller: str
    #: What a revision is (`targets.hashing`): the pod template (`workload`), the Service spec,
    #: or the revision Knative created last (`knative`).
    revision: Literal["workload", "service", "knative"] = "workload"
    #: Watched from the start (False: only once a canary needs it, since the CRD that serves
    #: it may not be installed and the runtime's start waits for every watched kind).
    always_watched: bool = True

    @property
    def key(self) -> TargetKind:
        """`Deployment`, `DaemonSet`, `Service`; `Service.serving.knative.dev` for Knative."""
        return self.kind if self.group in _BUILTIN_GROUPS else f"{self.kind}.{self.group}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


TARGET_KINDS: dict[TargetKind, TargetKindInfo] = {
    info.key: info
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
        TargetKindInfo(
            "Service",
            KNATIVE_API_VERSION,
            "services",
            "coalmine.targets.knative_controller:KnativeTargetController",
            revision="knative",
            always_watched=False,
        ),
    )
}
KNATIVE_SERVICE_KEY: TargetKind = f"Service.{KNATIVE_API_VERSION.split('/')[0]}"


def target_key(api_version: str | None, kind: str | None) -> TargetKind:
    """The TARGET_KINDS key of a `targetRef` or an object: `serving.knative.dev/v1` Service is a
    Knative Service (as `TargetRef.is_knative`), every other `kind: Service` a core one."""
    if kind == "Service" and api_version == KNATIVE_API_VERSION:
        return KNATIVE_SERVICE_KEY
    return kind or ""


def target_kind(api_version: str | None, kind: str | None) -> TargetKindInfo | None:
    """The row of a `spec.targetRef` (raw strings, as `coalmine status` reads them), None for a
    kind coalmine does not release."""
    return TARGET_KINDS.get(target_key(api_version, kind))
