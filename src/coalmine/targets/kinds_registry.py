"""Which `TargetController` and `ScalerReconciler` serve a Canary: one registry line per kind."""

from __future__ import annotations

from collections.abc import Callable

from coalmine.api.models import Canary
from coalmine.kube.context import ClusterContext
from coalmine.targets.base import ScalerReconciler, TargetController
from coalmine.targets.daemonset_controller import DaemonSetController
from coalmine.targets.deployment_controller import DeploymentController
from coalmine.targets.errors import TargetError
from coalmine.targets.scaler_controller import HpaScaler, KedaScaler
from coalmine.targets.service_controller import ServiceTargetController

TARGET_CONTROLLERS: dict[str, Callable[[ClusterContext], TargetController]] = {
    "Deployment": DeploymentController,
    "DaemonSet": DaemonSetController,
    "Service": ServiceTargetController,
}

SCALERS: dict[str, Callable[[ClusterContext], ScalerReconciler]] = {
    "HorizontalPodAutoscaler": HpaScaler,
    "ScaledObject": KedaScaler,
}


def target_controller_for(canary: Canary, ctx: ClusterContext) -> TargetController:
    """The controller of `spec.targetRef.kind`; a clear, non-retriable error when unsupported."""
    ref = canary.spec.target_ref
    if ref.is_knative:
        raise TargetError(
            f"canary {canary.key} spec.targetRef: Knative Services ({ref.api_version}) "
            "are not supported yet"
        )
    factory = TARGET_CONTROLLERS.get(ref.kind)
    if factory is None:
        supported = ", ".join(sorted(TARGET_CONTROLLERS))
        raise TargetError(
            f"canary {canary.key} spec.targetRef.kind: {ref.kind} is not supported "
            f"(supported: {supported})"
        )
    return factory(ctx)


def scaler_for(canary: Canary, ctx: ClusterContext) -> ScalerReconciler | None:
    """The reconciler of `spec.autoscalerRef`, None without one."""
    ref = canary.spec.autoscaler_ref
    if ref is None:
        return None
    factory = SCALERS.get(ref.kind)
    if factory is None:
        supported = ", ".join(sorted(SCALERS))
        raise TargetError(
            f"canary {canary.key} spec.autoscalerRef.kind: {ref.kind} is not supported "
            f"(supported: {supported})"
        )
    return factory(ctx)
