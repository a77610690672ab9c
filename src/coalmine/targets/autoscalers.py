"""Primary autoscalers: `<autoscaler>-primary` HPA (autoscaling/v2) or KEDA ScaledObject scaling
`<target>-primary`, and the pause/resume patches that keep the target's scaler quiet while it is
parked at zero."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.errors import TargetError
from coalmine.targets.labels import owner_reference, without_toolkit_keys

KEDA_API_VERSION = "keda.sh/v1alpha1"
HPA_API_VERSION = "autoscaling/v2"
# Keys KEDA writes itself or that describe the target's own state: copying them to the primary
# would make KEDA fight the operator or pause the primary's scaling.
KEDA_OWN_LABELS = frozenset({"scaledobject.keda.sh/name"})
KEDA_STATE_ANNOTATIONS = frozenset(
    {naming.KEDA_PAUSED_REPLICAS_ANNOTATION, "autoscaling.keda.sh/paused"}
)
HPA_SPEC_FIELDS = ("minReplicas", "maxReplicas", "metrics", "behavior")
SCALED_OBJECT_SPEC_FIELDS = (
    "pollingInterval",
    "cooldownPeriod",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "triggers",
    "fallback",
    "idleReplicaCount",
)


def _primary_target_ref(
    canary: Canary, ref: Mapping[str, Any], keys: Sequence[str]
) -> dict[str, Any]:
    result = {key: ref[key] for key in keys if ref.get(key) is not None}
    result["name"] = naming.primary_name(canary.spec.target_ref.name)
    return result


def _metadata(
    canary: Canary,
    name: str,
    source: Mapping[str, Any],
    *,
    annotations: bool,
) -> dict[str, Any]:
    source_meta = source.get("metadata") or {}
    metadata: dict[str, Any] = {"name": name, "namespace": canary.namespace}
    labels = {
        k: v
        for k, v in without_toolkit_keys(source_meta.get("labels")).items()
        if k not in KEDA_OWN_LABELS
    }
    if labels:
        metadata["labels"] = labels
    if annotations:
        kept = {
            k: v
            for k, v in without_toolkit_keys(source_meta.get("annotations")).items()
            if k not in KEDA_STATE_ANNOTATIONS and k != naming.KUBECTL_LAST_APPLIED_ANNOTATION
        }
        if kept:
            metadata["annotations"] = kept
    metadata["ownerReferences"] = [owner_reference(canary)]
    return metadata


def _replica_overrides(canary: Canary, spec: dict[str, Any], min_key: str, max_key: str) -> None:
    ref = canary.spec.autoscaler_ref
    overrides = ref.primary_scaler_replicas if ref else None
    if overrides is None:
        return
    if overrides.min_replicas is not None:
        spec[min_key] = overrides.min_replicas
    if overrides.max_replicas is not None:
        spec[max_key] = overrides.max_replicas


def primary_scaler_name(canary: Canary) -> str:
    ref = canary.spec.autoscaler_ref
    return naming.primary_name(ref.name if ref else canary.spec.target_ref.name)


def desired_primary_hpa(canary: Canary, target_hpa: Mapping[str, Any]) -> dict[str, Any]:
    """The primary HPA: the target HPA's bounds, metrics and behaviour, scaling the primary.

    `autoscalerRef.primaryScalerReplicas` overrides the bounds. Labels are the target HPA's minus
    Flux keys; no annotations.
    """
    source_spec = target_hpa.get("spec") or {}
    spec: dict[str, Any] = {
        "scaleTargetRef": _primary_target_ref(
            canary, source_spec.get("scaleTargetRef") or {}, ("apiVersion", "kind")
        )
    }
    for key in HPA_SPEC_FIELDS:
        if source_spec.get(key) is not None:
            spec[key] = copy.deepcopy(source_spec[key])
    _replica_overrides(canary, spec, "minReplicas", "maxReplicas")
    return {
        "apiVersion": HPA_API_VERSION,
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(canary, primary_scaler_name(canary), target_hpa, annotations=False),
        "spec": spec,
    }


_PRIMARY_QUERY_SUFFIXES = ("-canary", "-primary")


def primary_trigger_query(query: str, target_name: str) -> str:
    """`query` with the target's name (alone or as `-canary`) pointing at `<target>-primary`.

    A name already ending in `-primary` is left as it is (never `-primary-primary`). Pod name
    patterns follow (`podinfo-.*` → `podinfo-primary-.*`); a longer word that merely starts with
    the target's name (`podinfo_requests_total`, `podinfo2`) is not touched.
    """
    pattern = re.compile(re.escape(target_name) + r"(-canary|-primary)?(?![A-Za-z0-9_])")
    return pattern.sub(naming.primary_name(target_name), query)


def primary_triggers(
    triggers: Sequence[Mapping[str, Any]], target_name: str, queries: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """The primary's KEDA triggers: with `primaryScalerQueries`, triggers named by a key get that
    query; otherwise every trigger's `metadata.query` is rewritten to the primary."""
    result = []
    for source in triggers:
        trigger = copy.deepcopy(dict(source))
        metadata = trigger.get("metadata")
        if isinstance(metadata, dict):
            if queries is not None:
                name = trigger.get("name")
                if name is not None and name in queries:
                    metadata["query"] = queries[name]
            elif isinstance(metadata.get("query"), str):
                metadata["query"] = primary_trigger_query(metadata["query"], target_name)
        result.append(trigger)
    return result


def desired_primary_scaled_object(canary: Canary, target_so: Mapping[str, Any]) -> dict[str, Any]:
    """The primary ScaledObject: the target's spec scaling the primary, queries rewritten, the HPA
    KEDA creates named `-primary`, labels/annotations copied (so `transfer-hpa-ownership` carries
    over) except Flux keys, KEDA's own label and the target's paused state."""
    source_spec = target_so.get("spec") or {}
    spec: dict[str, Any] = {
        "scaleTargetRef": _primary_target_ref(
            canary,
            source_spec.get("scaleTargetRef") or {},
            ("apiVersion", "kind", "envSourceContainerName"),
        )
    }
    for key in SCALED_OBJECT_SPEC_FIELDS:
        if source_spec.get(key) is not None:
            spec[key] = copy.deepcopy(source_spec[key])
    hpa_config = (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    if hpa_config.get("name"):
        hpa_config["name"] = naming.primary_name(hpa_config["name"])
    ref = canary.spec.autoscaler_ref
    spec["triggers"] = primary_triggers(
        spec.get("triggers") or [],
        canary.spec.target_ref.name,
        ref.primary_scaler_queries if ref else None,
    )
    _replica_overrides(canary, spec, "minReplicaCount", "maxReplicaCount")
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": _metadata(canary, primary_scaler_name(canary), target_so, annotations=True),
        "spec": spec,
    }


def _hpa_comparable(spec: Mapping[str, Any]) -> dict[str, Any]:
    result = {key: spec.get(key) for key in (*HPA_SPEC_FIELDS, "scaleTargetRef")}
    result["minReplicas"] = spec.get("minReplicas") or 1
    return result


def primary_scaler_update(
    desired: Mapping[str, Any], actual: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`actual` updated to `desired` (spec, and labels/annotations kept in sync:
    see docs/decisions.md, 'Primary autoscaler metadata'), or None when nothing differs.

    Metadata is merged, not replaced: keys the target no longer has are left, because keys written
    by others (KEDA, policy engines) look the same and must not be fought over every cycle.
    """
    desired_spec = dict(desired.get("spec") or {})
    actual_spec = dict(actual.get("spec") or {})
    if desired.get("kind") == "HorizontalPodAutoscaler":
        spec_same = _hpa_comparable(desired_spec) == _hpa_comparable(actual_spec)
    else:
        spec_same = desired_spec == actual_spec
    desired_meta = desired.get("metadata") or {}
    actual_meta = actual.get("metadata") or {}
    merged: dict[str, dict[str, str]] = {}
    for key in ("labels", "annotations"):
        merged[key] = {**(actual_meta.get(key) or {}), **(desired_meta.get(key) or {})}
    meta_same = all(merged[key] == (actual_meta.get(key) or {}) for key in merged)
    if spec_same and meta_same:
        return None
    result = copy.deepcopy(dict(actual))
    result.pop("status", None)
    result["spec"] = copy.deepcopy(desired_spec)
    metadata = result.setdefault("metadata", {})
    for key, values in merged.items():
        if values:
            metadata[key] = values
    return result


def pause_scaled_object_patch() -> dict[str, Any]:
    """Merge patch on the target ScaledObject: KEDA holds it at 0 replicas while parked."""
    return {"metadata": {"annotations": {naming.KEDA_PAUSED_REPLICAS_ANNOTATION: "0"}}}


def resume_scaled_object_patch() -> dict[str, Any]:
    """Merge patch removing the pause, before the target is scaled up for a new revision."""
    return {"metadata": {"annotations": {naming.KEDA_PAUSED_REPLICAS_ANNOTATION: None}}}


def is_scaled_object_paused(scaled_object: Mapping[str, Any]) -> bool:
    annotations = (scaled_object.get("metadata") or {}).get("annotations") or {}
    return annotations.get(naming.KEDA_PAUSED_REPLICAS_ANNOTATION) == "0"


def scaler_not_found(canary: Canary) -> TargetError:
    """The error for an `autoscalerRef` naming no object, in Flagger's words."""
    ref = canary.spec.autoscaler_ref
    kind = ref.kind if ref else "HorizontalPodAutoscaler"
    name = ref.name if ref else ""
    label = "Keda ScaledObject" if kind == "ScaledObject" else kind
    return TargetError(f"{label} {name}.{canary.namespace} get query error: not found")
