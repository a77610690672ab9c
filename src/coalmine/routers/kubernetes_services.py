"""The Kubernetes Services of a Deployment/DaemonSet canary: `<apex>`, `<apex>-primary` and
`<apex>-canary` (Flagger's KubernetesDefaultRouter).

Pure: `desired_*` build what should exist, `merge_for_update` says what to write over an existing
Service, or None when nothing must be written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from coalmine.api import naming
from coalmine.api.models import Canary, CustomMetadata
from coalmine.targets.labels import is_owned_by, owner_reference
from coalmine.targets.workload import WorkloadMetadata

Role = Literal["apex", "primary", "canary"]


def service_name(canary: Canary, role: Role) -> str:
    apex = canary.spec.apex_name
    if role == "primary":
        return naming.primary_name(apex)
    if role == "canary":
        return naming.canary_name(apex)
    return apex


def service_ports(canary: Canary, discovered: Mapping[str, int]) -> list[dict[str, Any]]:
    """The main port and, with portDiscovery, one TCP port per discovered container port.

    A discovered port whose name or number the main port already uses, or whose number an earlier
    discovered port uses, is left out: a real API server refuses duplicate names and duplicate
    port numbers in one Service.
    """
    service = canary.spec.required_service
    main: dict[str, Any] = {
        "name": service.effective_port_name,
        "protocol": "TCP",
        "port": service.port,
        "targetPort": service.target_port
        if service.target_port not in (None, 0, "")
        else service.port,
    }
    if service.app_protocol:
        main["appProtocol"] = service.app_protocol
    ports = [main]
    used_names = {main["name"]}
    used_numbers = {service.port}
    for name in sorted(discovered):
        number = discovered[name]
        if name in used_names or number in used_numbers:
            continue
        ports.append({"name": name, "protocol": "TCP", "port": number, "targetPort": number})
        used_names.add(name)
        used_numbers.add(number)
    return ports


def _role_metadata(canary: Canary, role: Role) -> CustomMetadata | None:
    service = canary.spec.required_service
    return {"apex": service.apex, "primary": service.primary, "canary": service.canary}[role]


def desired_labels(canary: Canary, role: Role, label: str) -> dict[str, str]:
    """`spec.service.<role>.labels` plus `<label>: <service name>`."""
    custom = _role_metadata(canary, role)
    labels = dict((custom.labels if custom else None) or {})
    labels[label] = service_name(canary, role)
    return labels


def desired_annotations(canary: Canary, role: Role) -> dict[str, str]:
    """`spec.service.<role>.annotations` plus the annotations that keep Flux from fighting us."""
    custom = _role_metadata(canary, role)
    annotations = dict((custom.annotations if custom else None) or {})
    annotations.update(naming.TOOLKIT_DISABLE_ANNOTATIONS)
    return annotations


def desired_service(canary: Canary, role: Role, meta: WorkloadMetadata) -> dict[str, Any]:
    """The Service `role` to create: ClusterIP (headless when asked), selecting the canary pods
    (`<value>`) or the primary pods (`<value>-primary`, apex and primary)."""
    value = meta.label_value if role == "canary" else meta.primary_label_value
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": {meta.label: value},
        "ports": service_ports(canary, meta.ports),
    }
    if canary.spec.required_service.headless:
        spec["clusterIP"] = "None"
    if canary.spec.required_service.traffic_distribution:
        spec["trafficDistribution"] = canary.spec.required_service.traffic_distribution
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(canary, role),
            "namespace": canary.namespace,
            "labels": desired_labels(canary, role, meta.label),
            "annotations": desired_annotations(canary, role),
            "ownerReferences": [owner_reference(canary)],
        },
        "spec": spec,
    }


def desired_apex_service(canary: Canary, meta: WorkloadMetadata) -> dict[str, Any]:
    return desired_service(canary, "apex", meta)


def desired_primary_service(canary: Canary, meta: WorkloadMetadata) -> dict[str, Any]:
    return desired_service(canary, "primary", meta)


def desired_canary_service(canary: Canary, meta: WorkloadMetadata) -> dict[str, Any]:
    return desired_service(canary, "canary", meta)


def _comparable_ports(ports: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    normalized = []
    for port in ports:
        item = {k: v for k, v in port.items() if v not in (None, "")}
        item.setdefault("protocol", "TCP")
        normalized.append(item)
    return sorted(normalized, key=lambda p: (int(p.get("port") or 0), str(p.get("name") or "")))


def merge_for_update(
    desired: Mapping[str, Any], actual: Mapping[str, Any], canary: Canary
) -> dict[str, Any] | None:
    """What to write over the existing Service `actual`, or None when it already fits.

    * Node ports of same-named ports are kept (a NodePort apex stays reachable where it was).
    * Ports (compared regardless of order) and selector are replaced together when they differ;
      type, clusterIP and other spec fields are left to whoever set them.
    * Labels and annotations are replaced only on a Service this Canary owns; the keys listed in
      `spec.service.unmanagedMetadata` keep their current values there.
    * Whatever is written carries the Flux-disabling annotations.
    """
    actual_spec = actual.get("spec") or {}
    actual_meta = actual.get("metadata") or {}
    desired_meta = desired.get("metadata") or {}
    ports = copy.deepcopy(list((desired.get("spec") or {}).get("ports") or []))
    for existing in actual_spec.get("ports") or []:
        for port in ports:
            if port.get("name") == existing.get("name") and existing.get("nodePort"):
                port["nodePort"] = existing["nodePort"]
                break
    selector = dict((desired.get("spec") or {}).get("selector") or {})

    result = copy.deepcopy(dict(actual))
    result.pop("status", None)
    changed = False
    if _comparable_ports(ports) != _comparable_ports(
        list(actual_spec.get("ports") or [])
    ) or selector != (actual_spec.get("selector") or {}):
        result.setdefault("spec", {})["ports"] = ports
        result["spec"]["selector"] = selector
        changed = True

    metadata = result.setdefault("metadata", {})
    if is_owned_by(actual, canary.name):
        unmanaged = canary.spec.required_service.unmanaged_metadata
        for key, unmanaged_keys in (
            ("annotations", (unmanaged.annotations if unmanaged else None) or []),
            ("labels", (unmanaged.labels if unmanaged else None) or []),
        ):
            wanted = dict(desired_meta.get(key) or {})
            current = dict(actual_meta.get(key) or {})
            for unmanaged_key in unmanaged_keys:
                if unmanaged_key in current:
                    wanted[unmanaged_key] = current[unmanaged_key]
                else:
                    wanted.pop(unmanaged_key, None)
            if wanted != current:
                metadata[key] = wanted
                changed = True
    if not changed:
        return None
    annotations = dict(metadata.get("annotations") or {})
    annotations.update(naming.TOOLKIT_DISABLE_ANNOTATIONS)
    metadata["annotations"] = annotations
    return result
