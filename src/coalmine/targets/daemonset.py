"""DaemonSet targets: the `<target>-primary` DaemonSet, promotion, node-selector parking and
readiness. A DaemonSet has no replicas: it is "scaled to zero" by a node selector no node has."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.configs import TrackedConfigs
from coalmine.targets.errors import TargetError
from coalmine.targets.readiness import (
    Readiness,
    canary_prefix,
    daemonset_readiness,
    parse_time,
    primary_prefix,
)
from coalmine.targets.workload import (
    WorkloadMetadata,
    copy_spec_fields,
    primary_object_metadata,
    primary_pod_template,
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


def _without_parking(template: dict[str, Any]) -> dict[str, Any]:
    pod_spec = template.get("spec") or {}
    selector = pod_spec.get("nodeSelector")
    if isinstance(selector, dict) and naming.SCALE_TO_ZERO_NODE_SELECTOR in selector:
        selector = {k: v for k, v in selector.items() if k != naming.SCALE_TO_ZERO_NODE_SELECTOR}
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
    spec: dict[str, Any] = {}
    copy_spec_fields(target.get("spec") or {}, spec, COPIED_SPEC_FIELDS)
    spec["selector"] = {"matchLabels": {meta.label: meta.primary_label_value}}
    spec["template"] = _without_parking(primary_pod_template(target, meta, tracked, template_id))
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": primary_object_metadata(
            canary, target, meta, include_label_prefixes, creating=True
        ),
        "spec": spec,
    }


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
    result = copy.deepcopy(dict(primary))
    spec = result.setdefault("spec", {})
    copy_spec_fields(target.get("spec") or {}, spec, COPIED_SPEC_FIELDS)
    spec["template"] = _without_parking(primary_pod_template(target, meta, tracked, template_id))
    wanted = primary_object_metadata(canary, target, meta, include_label_prefixes, creating=False)
    metadata = result.setdefault("metadata", {})
    metadata["labels"] = wanted["labels"]
    if wanted.get("annotations"):
        metadata["annotations"] = wanted["annotations"]
    else:
        metadata.pop("annotations", None)
    return result


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
    analysis = canary.spec.analysis
    threshold = analysis.effective_primary_ready_threshold if analysis else 100
    verdict = daemonset_readiness(
        primary,
        canary.spec.effective_progress_deadline_seconds,
        threshold,
        _last_transition(canary),
        now,
    )
    return verdict.wrapped(
        primary_prefix("DaemonSet", canary.spec.target_ref.name, canary.namespace)
    )


def canary_readiness(canary: Canary, target: Mapping[str, Any], now: datetime) -> Readiness:
    analysis = canary.spec.analysis
    threshold = analysis.effective_canary_ready_threshold if analysis else 100
    verdict = daemonset_readiness(
        target,
        canary.spec.effective_progress_deadline_seconds,
        threshold,
        _last_transition(canary),
        now,
    )
    return verdict.wrapped(
        canary_prefix("DaemonSet", canary.spec.target_ref.name, canary.namespace)
    )
