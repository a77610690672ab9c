"""Deployment targets: the `<target>-primary` Deployment, promotion, scaling and readiness."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.readiness import Readiness, deployment_readiness, judge_readiness
from coalmine.targets.workload import (
    WorkloadMetadata,
    desired_primary_workload,
    primary_pod_template,
    promoted_primary_workload,
)

COPIED_SPEC_FIELDS = (
    "progressDeadlineSeconds",
    "minReadySeconds",
    "revisionHistoryLimit",
    "strategy",
)


def _replicas(obj: Mapping[str, Any] | None) -> int | None:
    if obj is None:
        return None
    value = (obj.get("spec") or {}).get("replicas")
    return None if value is None else int(value)


def rewrite_anti_affinity(
    pod_spec: Mapping[str, Any], target_name: str, selector_labels: Sequence[str]
) -> dict[str, Any]:
    """Point pod anti-affinity and topology spread selectors at the primary's pods.

    A selector on a selector-label key whose value is the target's name would otherwise match the
    canary pods instead of the primary's own (`podinfo` → `podinfo-primary`); other values stay.
    """
    spec = copy.deepcopy(dict(pod_spec))
    keys = set(selector_labels)
    primary_value = naming.primary_label_value(target_name)

    def rewrite(selector: dict[str, Any] | None) -> None:
        if not selector:
            return
        for expression in selector.get("matchExpressions") or []:
            if expression.get("key") not in keys:
                continue
            values = expression.get("values") or []
            for index, value in enumerate(values):
                if value == target_name:
                    values[index] = primary_value
                    break
        match_labels = selector.get("matchLabels") or {}
        for key, value in list(match_labels.items()):
            if key in keys and value == target_name:
                match_labels[key] = primary_value

    for constraint in spec.get("topologySpreadConstraints") or []:
        rewrite(constraint.get("labelSelector"))
    anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        rewrite((term.get("podAffinityTerm") or {}).get("labelSelector"))
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        rewrite(term.get("labelSelector"))
    return spec


def _primary_template(
    canary: Canary,
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    tracked: TrackedConfigs | None,
    template_id: str,
    selector_labels: Sequence[str],
) -> dict[str, Any]:
    template = primary_pod_template(target, meta, tracked, template_id)
    template["spec"] = rewrite_anti_affinity(
        template["spec"], canary.spec.target_ref.name, selector_labels
    )
    return template


def desired_primary_deployment(
    canary: Canary,
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    include_label_prefixes: Sequence[str],
    tracked: TrackedConfigs | None,
    template_id: str,
    selector_labels: Sequence[str] = naming.DEFAULT_SELECTOR_LABELS,
) -> dict[str, Any]:
    """The `<target>-primary` Deployment to create (only when it does not exist).

    `template_id` is the pod template's `flagger-id` (a fresh UUID4 from the caller); `tracked` are
    the configs whose `-primary` copies the pods must read (None when tracking is off).
    """
    replicas = _replicas(target)
    return desired_primary_workload(
        canary,
        target,
        meta,
        kind="Deployment",
        copied_fields=COPIED_SPEC_FIELDS,
        template=_primary_template(canary, target, meta, tracked, template_id, selector_labels),
        include_label_prefixes=include_label_prefixes,
        spec_extras={"replicas": replicas if replicas and replicas > 0 else 1},
    )


def promoted_primary_deployment(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    include_label_prefixes: Sequence[str],
    tracked: TrackedConfigs | None,
    template_id: str,
    selector_labels: Sequence[str] = naming.DEFAULT_SELECTOR_LABELS,
) -> dict[str, Any]:
    """`primary` with the target's release copied onto it, ready for an Update.

    Replicas follow the target only without an autoscaler (the primary HPA owns them otherwise),
    and never to zero: a target scaled down by a rollback must not take the primary with it. The
    selector is immutable and left alone.
    """
    result = promoted_primary_workload(
        canary,
        target,
        primary,
        meta,
        copied_fields=COPIED_SPEC_FIELDS,
        template=_primary_template(canary, target, meta, tracked, template_id, selector_labels),
        include_label_prefixes=include_label_prefixes,
    )
    target_replicas = _replicas(target)
    if canary.spec.autoscaler_ref is None and target_replicas is not None and target_replicas > 0:
        result["spec"]["replicas"] = target_replicas
    return result


def scale_to_zero_patch() -> dict[str, Any]:
    """Merge patch that parks the target after promotion or rollback."""
    return {"spec": {"replicas": 0}}


def scale_from_zero_patch(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any] | None,
    autoscaler: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Merge patch that brings the target back for a new revision (Flagger's ScaleFromZero).

    Keeps the target's own replicas when set; else mirrors the primary (no autoscaler) or starts
    at the autoscaler's minimum (`minReplicas` / `minReplicaCount`), at least one.
    """
    replicas = _replicas(target)
    if replicas is not None and replicas > 0:
        return {"spec": {"replicas": replicas}}
    if canary.spec.autoscaler_ref is None:
        primary_replicas = _replicas(primary)
        wanted = primary_replicas if primary_replicas and primary_replicas > 0 else 1
        return {"spec": {"replicas": wanted}}
    scaler_spec = (autoscaler or {}).get("spec") or {}
    key = (
        "minReplicas"
        if canary.spec.autoscaler_ref.kind == "HorizontalPodAutoscaler"
        else "minReplicaCount"
    )
    minimum = scaler_spec.get(key)
    wanted = int(minimum) if minimum is not None and int(minimum) > 1 else 1
    return {"spec": {"replicas": wanted}}


def finalize_patch(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any] | None,
    autoscaler: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Merge patch that hands the target back on Canary deletion (`revertOnDeletion`).

    The target takes the primary's replicas (absent → 1); without a primary it is scaled from zero.
    """
    if primary is None:
        return scale_from_zero_patch(canary, target, primary, autoscaler)
    replicas = _replicas(primary)
    return {"spec": {"replicas": 1 if replicas is None else replicas}}


def primary_readiness(canary: Canary, primary: Mapping[str, Any], now: datetime) -> Readiness:
    """Whether `<target>-primary` finished rolling out, with Flagger's wrapped message."""
    return judge_readiness(
        canary,
        "Deployment",
        primary=True,
        judge=lambda deadline, threshold: deployment_readiness(primary, deadline, threshold, now),
    )


def canary_readiness(canary: Canary, target: Mapping[str, Any], now: datetime) -> Readiness:
    """Whether the target (canary) finished rolling out, with Flagger's wrapped message."""
    return judge_readiness(
        canary,
        "Deployment",
        primary=False,
        judge=lambda deadline, threshold: deployment_readiness(target, deadline, threshold, now),
    )
