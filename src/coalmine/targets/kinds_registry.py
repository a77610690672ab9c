"""Which `TargetController` and `ScalerReconciler` serve a Canary. Target kinds come from the
table in `coalmine.targets.kinds` (one entry per kind); scalers from SCALERS below."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from coalmine.api.models import Canary
from coalmine.kube.context import ClusterContext
from coalmine.targets.base import ScalerReconciler, TargetController
from coalmine.targets.errors import TargetError
from coalmine.targets.kinds import TARGET_KINDS, TargetKindInfo, target_key
from coalmine.targets.scaler_controller import HpaScaler, KedaScaler

_CONTROLLERS: dict[str, Callable[[ClusterContext], TargetController]] = {}

SCALERS: dict[str, Callable[[ClusterContext], ScalerReconciler]] = {
    "HorizontalPodAutoscaler": HpaScaler,
    "ScaledObject": KedaScaler,
}


def target_controller_for(canary: Canary, ctx: ClusterContext) -> TargetController:
    """The controller of `spec.targetRef.kind`; a clear, non-retriable error when unsupported."""
    ref = canary.spec.target_ref
    info = TARGET_KINDS.get(target_key(ref.api_version, ref.kind))
    if info is None:
        supported = ", ".join(sorted({row.kind for row in TARGET_KINDS.values()}))
        raise TargetError(
            f"canary {canary.key} spec.targetRef.kind: {ref.kind} is not supported "
            f"(supported: {supported})"
        )
    return _controller_class(info)(ctx)


def _controller_class(info: TargetKindInfo) -> Callable[[ClusterContext], TargetController]:
    """The `module:Class` of the table row, imported once."""
    found = _CONTROLLERS.get(info.key)
    if found is None:
        module, _, name = info.controller.partition(":")
        found = getattr(importlib.import_module(module), name)
        _CONTROLLERS[info.key] = found
    return found


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
