"""DaemonSet targets: the `<target>-primary` DaemonSet, promotion, node-selector parking and
readiness. A DaemonSet has no replicas: it is "scaled to zero" by a node selector no node has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.errors import TargetError
from coalmine.targets.readiness import (
    Readiness,
    daemonset_readiness,
    judge_readiness,
    parse_time,
)
from coalmine.targets.workload import (
    WorkloadMetadata,
    desired_primary_workload,
    primary_pod_template,
    promoted_primary_workload,
)

COPIED_SPEC_FIELDS = ("minReadySeconds", "revisionHistoryLimit", "updateStrategy")


def check_update_strategy(target: Mapping[str, Any]) -> None:
    """Only RollingUpdate DaemonSets can be released progressively (OnDelete never rolls)."""
    strategy = ((target.get("spec") or {}).get("updateStrategy") or {}).get("type") or ""
    if strategy not in ("", "RollingUpdate"):
        metadata = target.get("metadata") or {}
        raise TargetError(
            f"daemonset {metadata.get('name', '')}.{metadata.get('namespace', '')} "
            f"must have RollingUpdate strategy but have {strategy}"
        )


def without_parking(template: dict[str, Any]) -> dict[str, Any]:
    """`template` (changed in place) without the scale-to-zero node selector; a node selector left
    empty is removed, since nil and `{}` select the same nodes."""
    pod_spec = template.get("spec")
    if isinstance(pod_spec, dict) and "nodeSelector" in pod_spec:
        selector = {
            key: value
            for key, value in (pod_spec.get("nodeSelector") or {}).items()
            if key != naming.SCALE_TO_ZERO_NODE_SELECTOR
        }
        if selector:
            pod_spec["nodeSelector"] = selector
        else:
            del pod_spec["nodeSelector"]
    return template


def desired_primary_daemonset(
    canary: Canary,
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    include_label_prefixes: Sequence[str],
    tracked: TrackedConfigs | None,
    template_id: str,
) -> dict[str, Any]:
    """The `<target>-primary` DaemonSet to create; never parked, whatever the target's state."""
    check_update_strategy(target)
    return desired_primary_workload(
        canary,
        target,
        meta,
        kind="DaemonSet",
        copied_fields=COPIED_SPEC_FIELDS,
        template=without_parking(primary_pod_template(target, meta, tracked, template_id)),
        include_label_prefixes=include_label_prefixes,
    )


def promoted_primary_daemonset(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    include_label_prefixes: Sequence[str],
    tracked: TrackedConfigs | None,
    template_id: str,
) -> dict[str, Any]:
    """`primary` with the target's release copied onto it; the parking node selector removed."""
    check_update_strategy(target)
    return promoted_primary_workload(
        canary,
        target,
        primary,
        meta,
        copied_fields=COPIED_SPEC_FIELDS,
        template=without_parking(primary_pod_template(target, meta, tracked, template_id)),
        include_label_prefixes=include_label_prefixes,
    )


def scale_to_zero_patch() -> dict[str, Any]:
    """Merge patch parking the target: a node selector that no node matches."""
    return {
        "spec": {
            "template": {"spec": {"nodeSelector": {naming.SCALE_TO_ZERO_NODE_SELECTOR: "true"}}}
        }
    }


def scale_from_zero_patch() -> dict[str, Any]:
    """Merge patch removing the parking node selector (null deletes the key)."""
    return {
        "spec": {"template": {"spec": {"nodeSelector": {naming.SCALE_TO_ZERO_NODE_SELECTOR: None}}}}
    }


def is_parked(target: Mapping[str, Any]) -> bool:
    """True when the target carries the scale-to-zero node selector."""
    pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    return naming.SCALE_TO_ZERO_NODE_SELECTOR in (pod_spec.get("nodeSelector") or {})


def finalize_patch() -> dict[str, Any]:
    """On Canary deletion the target is unparked."""
    return scale_from_zero_patch()


def _last_transition(canary: Canary) -> datetime | None:
    return parse_time(canary.status.last_transition_time if canary.status else None)


def primary_readiness(canary: Canary, primary: Mapping[str, Any], now: datetime) -> Readiness:
    return judge_readiness(
        canary,
        "DaemonSet",
        primary=True,
        judge=lambda deadline, threshold: daemonset_readiness(
            primary, deadline, threshold, _last_transition(canary), now
        ),
    )


def canary_readiness(canary: Canary, target: Mapping[str, Any], now: datetime) -> Readiness:
    return judge_readiness(
        canary,
        "DaemonSet",
        primary=False,
        judge=lambda deadline, threshold: daemonset_readiness(
            target, deadline, threshold, _last_transition(canary), now
        ),
    )
