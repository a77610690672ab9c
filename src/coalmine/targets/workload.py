"""What Deployments and DaemonSets share: the primary's metadata and pod template, building and
promoting the primary object, and the selector-label discovery that names everything."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.configs import TrackedConfigs, rename_config_refs
from coalmine.targets.labels import (
    include_by_prefix,
    make_primary_labels,
    owner_reference,
    selector_label,
    without_toolkit_keys,
)
from coalmine.targets.ports import discover_ports


@dataclass(frozen=True)
class WorkloadMetadata:
    """Flagger's GetMetadata: the selector label, its value, and the discovered ports."""

    label: str
    label_value: str
    ports: dict[str, int]

    @property
    def primary_label_value(self) -> str:
        return naming.primary_label_value(self.label_value)


def workload_metadata(
    canary: Canary,
    target: Mapping[str, Any],
    selector_labels: Sequence[str] = naming.DEFAULT_SELECTOR_LABELS,
) -> WorkloadMetadata:
    """Selector label and ports of a Deployment/DaemonSet target; TargetError when unusable."""
    label, value = selector_label(canary.spec.target_ref.kind, target, selector_labels)
    ports: dict[str, int] = {}
    if canary.spec.required_service.port_discovery:
        ports = discover_ports(canary.spec.required_service, pod_spec_of(target))
    return WorkloadMetadata(label, value, ports)


def pod_spec_of(workload: Mapping[str, Any]) -> dict[str, Any]:
    return dict(((workload.get("spec") or {}).get("template") or {}).get("spec") or {})


def primary_object_metadata(
    canary: Canary,
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    include_label_prefixes: Sequence[str],
    *,
    creating: bool,
) -> dict[str, Any]:
    """`<target>-primary` metadata.

    Labels follow `--include-label-prefix` plus the selector label. Annotations on creation are all
    of the target's except Flux's keys and kubectl's last-applied copy of the target; on promotion
    they follow `--include-label-prefix` (Flagger's behaviour, kept for compatibility).
    """
    target_meta = target.get("metadata") or {}
    labels = make_primary_labels(
        include_by_prefix(target_meta.get("labels"), include_label_prefixes),
        meta.label,
        meta.primary_label_value,
    )
    if creating:
        annotations = without_toolkit_keys(target_meta.get("annotations"))
        annotations.pop(naming.KUBECTL_LAST_APPLIED_ANNOTATION, None)
    else:
        annotations = include_by_prefix(target_meta.get("annotations"), include_label_prefixes)
    result: dict[str, Any] = {
        "name": naming.primary_name(canary.spec.target_ref.name),
        "namespace": canary.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(canary)],
    }
    if annotations:
        result["annotations"] = annotations
    return result


def primary_pod_template(
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    tracked: TrackedConfigs | None,
    template_id: str,
) -> dict[str, Any]:
    """The primary's pod template: selector label moved to `<value>-primary`, Flux keys dropped,
    a fresh `flagger-id` (forces a primary rollout), tracked configs renamed to their copies."""
    template = (target.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    labels = make_primary_labels(
        without_toolkit_keys(template_meta.get("labels")), meta.label, meta.primary_label_value
    )
    annotations = without_toolkit_keys(template_meta.get("annotations"))
    annotations[naming.POD_TEMPLATE_ID_ANNOTATION] = template_id
    pod_spec = copy.deepcopy(dict(template.get("spec") or {}))
    if tracked:
        pod_spec = rename_config_refs(pod_spec, tracked.configmaps, tracked.secrets)
    new_meta = copy.deepcopy(dict(template_meta))
    new_meta["labels"] = labels
    new_meta["annotations"] = annotations
    return {"metadata": new_meta, "spec": pod_spec}


def copy_spec_fields(
    source: Mapping[str, Any], destination: dict[str, Any], fields: Sequence[str]
) -> None:
    """Copy `fields` of `source` to `destination`; a field absent in the source is removed."""
    for key in fields:
        if key in source and source[key] is not None:
            destination[key] = copy.deepcopy(source[key])
        else:
            destination.pop(key, None)


def desired_primary_workload(
    canary: Canary,
    target: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    kind: str,
    copied_fields: Sequence[str],
    template: dict[str, Any],
    include_label_prefixes: Sequence[str],
    spec_extras: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new `<target>-primary` of `kind`: the `copied_fields` of the target's spec, then
    `spec_extras` (a Deployment's replicas), the primary selector and the primary pod template."""
    spec: dict[str, Any] = {}
    copy_spec_fields(target.get("spec") or {}, spec, copied_fields)
    spec.update(spec_extras or {})
    spec["selector"] = {"matchLabels": {meta.label: meta.primary_label_value}}
    spec["template"] = template
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": primary_object_metadata(
            canary, target, meta, include_label_prefixes, creating=True
        ),
        "spec": spec,
    }


def promoted_primary_workload(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    meta: WorkloadMetadata,
    *,
    copied_fields: Sequence[str],
    template: dict[str, Any],
    include_label_prefixes: Sequence[str],
) -> dict[str, Any]:
    """`primary` with the target's release copied onto it (the `copied_fields`, the pod
    template, labels and annotations), ready for an Update. The immutable selector stays."""
    result = copy.deepcopy(dict(primary))
    spec = result.setdefault("spec", {})
    copy_spec_fields(target.get("spec") or {}, spec, copied_fields)
    spec["template"] = template
    wanted = primary_object_metadata(canary, target, meta, include_label_prefixes, creating=False)
    metadata = result.setdefault("metadata", {})
    metadata["labels"] = wanted["labels"]
    if wanted.get("annotations"):
        metadata["annotations"] = wanted["annotations"]
    else:
        metadata.pop("annotations", None)
    return result
