"""A fresh baseline (`spec.analysis.baseline`, docs/analysis.md): pure builders.

For a Deployment target the baseline is `<target>-baseline`, a copy of the primary (the current
version) that is its own app: the selector label `<value>-primary` becomes `<value>-baseline`
everywhere (metadata, selector, pod template), so neither the primary's Service nor the canary's
selects its pods. It runs the canary's replicas. Its Service `<apex>-baseline` is the
`<apex>-primary` Service with that selector. For a Service target the baseline is the Service
`<apex>-baseline`, a copy of `<apex>-primary` (same selector: the old version's pods).

Both exist only while a run analyses (`BASELINE_PHASES`); they are owned by the Canary, so its
deletion collects them too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from coalmine.api import naming
from coalmine.api.models import ANALYSING_PHASES, STARTED_PHASES, Canary, Phase
from coalmine.targets.labels import owner_reference
from coalmine.targets.service import desired_service_copy

#: The phases in which a wanted baseline is created and kept at the canary's size (analysis and
#: its waits) ...
BASELINE_PHASES: frozenset[Phase] = ANALYSING_PHASES
#: ... and those in which it may still exist: during promotion its share goes back to the
#: primary first, then `scale_to_zero` removes it. In any other phase it is removed on sight.
KEPT_PHASES: frozenset[Phase] = STARTED_PHASES

_DROPPED_ANNOTATIONS = (
    naming.PROMOTED_REVISION_ANNOTATION,
    naming.KUBECTL_LAST_APPLIED_ANNOTATION,
    "deployment.kubernetes.io/revision",
)


def _phase(canary: Canary) -> Phase:
    return (canary.status.phase if canary.status else None) or ""


def baseline_wanted(canary: Canary) -> bool:
    """Whether the baseline should be running now: asked for, and a run is analysing."""
    return canary.spec.wants_baseline and _phase(canary) in BASELINE_PHASES


def baseline_kept(canary: Canary) -> bool:
    """Whether an existing baseline may stay: asked for, and a run has not ended."""
    return canary.spec.wants_baseline and _phase(canary) in KEPT_PHASES


def _relabel(labels: Mapping[str, Any] | None, label: str, value: str) -> dict[str, Any]:
    result = dict(labels or {})
    if label in result:
        result[label] = value
    return result


def desired_baseline_deployment(
    canary: Canary, primary: Mapping[str, Any], label: str, label_value: str, replicas: int
) -> dict[str, Any]:
    """`<target>-baseline` from the primary's spec, relabelled as its own app, `replicas` pods."""
    value = naming.baseline_label_value(label_value)
    source_meta = primary.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (source_meta.get("annotations") or {}).items()
        if k not in _DROPPED_ANNOTATIONS and not naming.is_toolkit_key(k)
    }
    metadata: dict[str, Any] = {
        "name": naming.baseline_name(canary.spec.target_ref.name),
        "namespace": canary.namespace,
        "labels": _relabel(source_meta.get("labels"), label, value),
        "ownerReferences": [owner_reference(canary)],
    }
    if annotations:
        metadata["annotations"] = annotations
    spec = copy.deepcopy(dict(primary.get("spec") or {}))
    spec["replicas"] = max(replicas, 1)
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = {
        **_relabel(selector.get("matchLabels"), label, value),
        label: value,
    }
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**_relabel(template_meta.get("labels"), label, value), label: value}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def baseline_deployment_update(
    desired: Mapping[str, Any], actual: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`actual` with the desired spec when replicas or the pod template differ, else None.

    The selector is immutable and built the same every time, so it is not compared.
    """
    want, have = desired.get("spec") or {}, actual.get("spec") or {}
    if want.get("replicas") == have.get("replicas") and want.get("template") == have.get(
        "template"
    ):
        return None
    result = copy.deepcopy(dict(actual))
    result.pop("status", None)
    result["spec"] = {**copy.deepcopy(dict(have)), **copy.deepcopy(dict(want))}
    result["spec"]["selector"] = copy.deepcopy(have.get("selector"))
    return result


def desired_baseline_service(
    canary: Canary,
    primary_service: Mapping[str, Any],
    include_label_prefixes: Sequence[str],
    selector: Mapping[str, str] | None,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`<apex>-baseline`: the `<apex>-primary` Service copied (with its own allocations when
    `existing`), with `selector` for a Deployment target's baseline pods, or the primary's own
    for a Service target."""
    name = naming.baseline_name(canary.spec.apex_name)
    service = desired_service_copy(canary, primary_service, name, existing, include_label_prefixes)
    if selector is not None:
        service["spec"]["selector"] = dict(selector)
    annotations = (service["metadata"].get("annotations") or {}).copy()
    annotations.pop(naming.PROMOTED_REVISION_ANNOTATION, None)
    if annotations:
        service["metadata"]["annotations"] = annotations
    else:
        service["metadata"].pop("annotations", None)
    return service
