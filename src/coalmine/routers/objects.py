"""The objects pure routers build and compare: names and metadata of what a router writes, and
how a built object is compared with and merged onto the live one (plain dicts as the API server
stores them; nothing here talks to Kubernetes)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets import labels

Obj = dict[str, Any]


class RouterError(Exception):
    """A routing object is missing, malformed or not ready; the message names object and reason."""


# --- names and metadata -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceNames:
    apex: str
    primary: str
    canary: str
    #: `<apex>-baseline`: routed only while a fresh baseline has a share (three-way routers).
    baseline: str = ""


def service_names(canary: Canary) -> ServiceNames:
    apex = canary.spec.apex_name
    return ServiceNames(
        apex, naming.primary_name(apex), naming.canary_name(apex), naming.baseline_name(apex)
    )


def primary_side(canary: Canary) -> set[str]:
    """The Services a user's route may send to for the primary side of an edge router's copy:
    the apex (a Deployment target's) or `<apex>-primary` (a Service target's)."""
    names = service_names(canary)
    return {names.apex, names.primary}


def owner_reference(canary: Canary) -> Obj:
    """The Canary as controller owner (targets.labels builds it), refusing a Canary without a
    uid: the API server would reject the reference, and the object would never be collected."""
    if not canary.metadata.uid:
        raise RouterError(f"Canary {canary.key} has no metadata.uid; cannot own routing objects")
    return labels.owner_reference(canary)


def with_toolkit_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """Flagger's router-side filterMetadata: Flux must not fight the operator over this object."""
    result = dict(annotations or {})
    result.update(naming.TOOLKIT_DISABLE_ANNOTATIONS)
    return result


def copied_annotations(
    annotations: Mapping[str, str] | None, *, drop: Callable[[str], bool] = lambda key: False
) -> dict[str, str]:
    """The annotations a router's copy of the user's object starts from: the user's without
    kubectl's last-applied configuration (and without the keys `drop` names, the router's own),
    plus the toolkit ones."""
    kept = {
        key: value
        for key, value in (annotations or {}).items()
        if key != naming.KUBECTL_LAST_APPLIED_ANNOTATION and not drop(key)
    }
    return with_toolkit_annotations(kept)


def apex_labels(canary: Canary) -> dict[str, str]:
    apex = canary.spec.required_service.apex
    return dict(apex.labels or {}) if apex else {}


def apex_annotations(canary: Canary) -> dict[str, str]:
    apex = canary.spec.required_service.apex
    return with_toolkit_annotations(apex.annotations if apex else None)


def new_object(
    canary: Canary,
    api_version: str,
    kind: str,
    name: str,
    spec: Obj,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owned: bool = True,
) -> Obj:
    metadata: Obj = {"name": name, "namespace": canary.namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owned:
        metadata["ownerReferences"] = [owner_reference(canary)]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def find(existing: Sequence[Obj], kind: str, name: str) -> Obj | None:
    for obj in existing:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    return None


def require(existing: Sequence[Obj], kind: str, name: str, namespace: str) -> Obj:
    obj = find(existing, kind, name)
    if obj is None:
        raise RouterError(f"{kind} {name}.{namespace} get query error: not found")
    return obj


def is_external_name(service: Obj | None) -> bool:
    return bool(service and (service.get("spec") or {}).get("type") == "ExternalName")


# --- comparison and merging ---------------------------------------------------------------------


def contained_in(wanted: Any, actual: Any) -> bool:
    """True when `actual` already says everything `wanted` says.

    Extra keys in `actual` are allowed (fields the API server defaulted, e.g. a Gateway API
    backendRef's `group`); lists must have the same length and match element by element.
    """
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return False
        return all(contained_in(value, actual.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(wanted) != len(actual):
            return False
        return all(contained_in(w, a) for w, a in zip(wanted, actual, strict=True))
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if isinstance(wanted, int | float) and isinstance(actual, int | float):
        return float(wanted) == float(actual)
    return bool(wanted == actual)


def merge_onto(existing: Obj | None, built: Obj) -> Obj:
    """The object to write: `built`'s spec and metadata, keeping the live object's identity and
    any labels/annotations someone else put there (foreign keys survive our writes)."""
    if existing is None:
        return copy.deepcopy(built)
    result = copy.deepcopy(existing)
    result.pop("status", None)
    result["apiVersion"] = built["apiVersion"]
    result["kind"] = built["kind"]
    metadata = result.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        merged = dict(metadata.get(key) or {})
        merged.update(built["metadata"].get(key) or {})
        if merged:
            metadata[key] = merged
    if "spec" in built:
        result["spec"] = copy.deepcopy(built["spec"])
    return result


def needs_write(existing: Obj | None, built: Obj, *, compare: Sequence[str] = ("spec",)) -> bool:
    if existing is None:
        return True
    for key in compare:
        if not contained_in(built.get(key), existing.get(key)):
            return True
    live_meta = existing.get("metadata", {})
    for key in ("labels", "annotations"):
        if not contained_in(built["metadata"].get(key) or {}, live_meta.get(key) or {}):
            return True
    return False


def drop_none(value: Any) -> Any:
    """Remove None values and empty containers the builders produce for optional fields."""
    if isinstance(value, dict):
        cleaned = {k: drop_none(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {} and v != []}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


# --- field helpers ------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """A pydantic sub-model as it appears on the wire (camelCase, unset fields absent)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [wire(v) for v in value]
    dump = getattr(value, "to_wire", None)
    if dump is not None:
        return dump()
    return value
