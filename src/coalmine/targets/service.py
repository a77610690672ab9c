"""Service targets: `<apex>-primary` and `<apex>-canary` copies of a user's Service.

The copies carry the target's spec (selector, ports, type, externalName, …) but never the values the
API server allocated for the target (cluster IPs, node ports, health-check node port): those belong
to one Service each and a real API server refuses to hand them out twice (see docs/decisions.md,
'Service copies'). An existing copy keeps its own allocations, so updating it is accepted. The
copies stay owned by the Canary after promotion ('Primary ownership') and are named from
`spec.service.name` when set ('Service-target copy names'), the same names the routers route to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.labels import merge_owner_references, owner_reference, prefix_matches

EXTERNAL_NAME = "ExternalName"
NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})
# Allocated by the API server for the target, or addresses that belong to the target (a copy
# claiming the target's external IP would take its traffic): never copied.
TARGET_ONLY_SPEC_FIELDS = (
    "clusterIP",
    "clusterIPs",
    "healthCheckNodePort",
    "loadBalancerIP",
    "externalIPs",
)
IP_FIELDS = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")
# Fields only a NodePort/LoadBalancer Service may carry: dropped when a copy becomes ClusterIP.
EXTERNAL_ONLY_SPEC_FIELDS = (
    "externalTrafficPolicy",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "allocateLoadBalancerNodePorts",
)
# On the Canary: "true" keeps a NodePort/LoadBalancer target's type on its copies.
KEEP_TYPE_ANNOTATION = "coalmine.dev/keep-service-type"
NEVER_COPIED_ANNOTATIONS = frozenset({naming.KUBECTL_LAST_APPLIED_ANNOTATION})


def service_copy_names(canary: Canary) -> tuple[str, str]:
    """(`<apex>-primary`, `<apex>-canary`), `<apex>` = `spec.service.name` or the target name."""
    apex = canary.spec.apex_name
    return naming.primary_name(apex), naming.canary_name(apex)


def _type(spec: Mapping[str, Any] | None) -> str:
    return str((spec or {}).get("type") or "ClusterIP")


def _is_headless(spec: Mapping[str, Any] | None) -> bool:
    return (spec or {}).get("clusterIP") == "None"


def _port_key(port: Mapping[str, Any]) -> tuple[str, int, str]:
    return (str(port.get("name") or ""), int(port.get("port") or 0), port.get("protocol") or "TCP")


def _matching_node_port(
    port: Mapping[str, Any], existing_ports: Sequence[Mapping[str, Any]], used: set[int]
) -> int | None:
    """The node port the copy already holds for `port`: same name, or same number and protocol
    when unnamed."""
    name, number, protocol = _port_key(port)
    for candidate in existing_ports:
        node_port = candidate.get("nodePort")
        if not node_port or node_port in used:
            continue
        other_name, other_number, other_protocol = _port_key(candidate)
        if (name and name == other_name) or (
            not name and not other_name and number == other_number and protocol == other_protocol
        ):
            return int(node_port)
    return None


def keeps_type(canary: Canary) -> bool:
    """The opt-in to copies of the target's NodePort/LoadBalancer type (default: ClusterIP)."""
    value = (canary.metadata.annotations or {}).get(KEEP_TYPE_ANNOTATION, "")
    return value.strip().lower() == "true"


def _as_cluster_ip(spec: dict[str, Any]) -> None:
    """A NodePort/LoadBalancer spec turned ClusterIP: no node ports, no cloud load balancer."""
    spec["type"] = "ClusterIP"
    for field in EXTERNAL_ONLY_SPEC_FIELDS:
        spec.pop(field, None)


def copy_spec(
    target_spec: Mapping[str, Any],
    existing_spec: Mapping[str, Any] | None,
    traffic_distribution: str | None,
    *,
    keep_type: bool = False,
) -> dict[str, Any]:
    """The spec of a copy: the target's, with the copy's own allocations (if it exists).

    Rules a real API server enforces, and how this spec satisfies them:
    * `clusterIP` is immutable except to/from ExternalName → an existing copy's IP family fields
      are kept; a new copy leaves `clusterIP`/`clusterIPs` empty for the server to allocate (a
      headless target keeps `clusterIP: None`).
    * `clusterIPs` must be empty when `clusterIP` is, and start with it otherwise → both come from
      the same object, never mixed.
    * ExternalName Services may not have cluster IPs, IP families, node ports → all dropped.
    * node ports collide across Services (422) → the target's are never copied; a copy keeps its
      own for ports of the same name (or number when unnamed) while its type still has node ports.
    * a NodePort/LoadBalancer target gives ClusterIP copies unless `keep_type` (no new cloud load
      balancers, no node ports opened for the copies).
    """
    spec = copy.deepcopy(dict(target_spec))
    if _type(spec) in NODE_PORT_TYPES and not keep_type:
        _as_cluster_ip(spec)
    service_type = _type(spec)
    headless = _is_headless(spec)
    for field in TARGET_ONLY_SPEC_FIELDS:
        spec.pop(field, None)
    existing_type = _type(existing_spec) if existing_spec is not None else None
    existing_ports: list[Mapping[str, Any]] = list((existing_spec or {}).get("ports") or [])
    keep_node_ports = existing_type in NODE_PORT_TYPES and service_type in NODE_PORT_TYPES
    used: set[int] = set()
    ports = []
    for port in spec.get("ports") or []:
        port = dict(port)
        port.pop("nodePort", None)
        if keep_node_ports:
            node_port = _matching_node_port(port, existing_ports, used)
            if node_port is not None:
                port["nodePort"] = node_port
                used.add(node_port)
        ports.append(port)
    if "ports" in spec:
        spec["ports"] = ports

    if service_type == EXTERNAL_NAME:
        for field in IP_FIELDS:
            spec.pop(field, None)
    elif (
        existing_spec is not None
        and existing_type != EXTERNAL_NAME
        and existing_spec.get("clusterIP")
        and _is_headless(existing_spec) == headless
    ):
        for field in IP_FIELDS:
            if existing_spec.get(field) is not None:
                spec[field] = copy.deepcopy(existing_spec[field])
            else:
                spec.pop(field, None)
    elif headless:
        spec["clusterIP"] = "None"

    if (
        service_type == "LoadBalancer"
        and existing_type == "LoadBalancer"
        and spec.get("externalTrafficPolicy") == "Local"
        and (existing_spec or {}).get("externalTrafficPolicy") == "Local"
        and (existing_spec or {}).get("healthCheckNodePort")
    ):
        spec["healthCheckNodePort"] = existing_spec["healthCheckNodePort"]  # type: ignore[index]

    if traffic_distribution:
        spec["trafficDistribution"] = traffic_distribution
    return spec


def _copy_metadata_map(
    target_values: Mapping[str, str] | None,
    existing_values: Mapping[str, str] | None,
    include_label_prefixes: Sequence[str],
    unmanaged: Sequence[str],
    never: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Labels or annotations of a copy.

    Keys selected by `--include-label-prefix` are the operator's: they mirror the target. Every
    other key on an existing copy belongs to someone else (a cloud controller, a policy engine) and
    is kept, as are the keys listed in `spec.service.unmanagedMetadata`, so the operator does not
    fight other writers every cycle.
    """
    result = {
        k: v
        for k, v in (target_values or {}).items()
        if k not in never and prefix_matches(k, include_label_prefixes)
    }
    for key, value in (existing_values or {}).items():
        foreign = key in never or not prefix_matches(key, include_label_prefixes)
        if foreign or key in unmanaged:
            result[key] = value
    return result


def desired_service_copy(
    canary: Canary,
    target: Mapping[str, Any],
    name: str,
    existing: Mapping[str, Any] | None,
    include_label_prefixes: Sequence[str],
) -> dict[str, Any]:
    """The `name` copy of the target Service as it should be.

    With `existing=None` this is the object to create (no allocated fields). With the existing
    copy it is the object to write over it: the target's spec with the copy's own allocations,
    the copy's foreign metadata kept and the Canary as controlling owner. Used for the canary copy
    every cycle and for the primary copy on creation and promotion.
    """
    target_meta = target.get("metadata") or {}
    existing_meta = (existing or {}).get("metadata") or {}
    unmanaged = canary.spec.required_service.unmanaged_metadata
    metadata: dict[str, Any] = {"name": name, "namespace": canary.namespace}
    labels = _copy_metadata_map(
        target_meta.get("labels"),
        existing_meta.get("labels"),
        include_label_prefixes,
        (unmanaged.labels or []) if unmanaged else [],
    )
    annotations = _copy_metadata_map(
        target_meta.get("annotations"),
        existing_meta.get("annotations"),
        include_label_prefixes,
        (unmanaged.annotations or []) if unmanaged else [],
        NEVER_COPIED_ANNOTATIONS,
    )
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    metadata["ownerReferences"] = merge_owner_references(
        existing_meta.get("ownerReferences"), owner_reference(canary)
    )
    spec = copy_spec(
        target.get("spec") or {},
        (existing or {}).get("spec") if existing is not None else None,
        canary.spec.required_service.traffic_distribution,
        keep_type=keeps_type(canary),
    )
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def _normalized(value: Any) -> Any:
    """Empty maps, lists and strings count as absent, as the API server omits them."""
    if isinstance(value, Mapping):
        items = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def service_copy_update(
    desired: Mapping[str, Any], actual: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`actual` with the desired spec, labels, annotations and owners, or None when equal.

    The result keeps `resourceVersion` and `uid`, so the write is an optimistic Update.
    """
    desired_meta = desired.get("metadata") or {}
    actual_meta = actual.get("metadata") or {}
    same = _normalized(desired.get("spec")) == _normalized(actual.get("spec")) and all(
        _normalized(desired_meta.get(key)) == _normalized(actual_meta.get(key))
        for key in ("labels", "annotations", "ownerReferences")
    )
    if same:
        return None
    result = copy.deepcopy(dict(actual))
    result.pop("status", None)
    metadata = result.setdefault("metadata", {})
    for key in ("labels", "annotations", "ownerReferences"):
        if desired_meta.get(key):
            metadata[key] = copy.deepcopy(desired_meta[key])
        else:
            metadata.pop(key, None)
    result["spec"] = copy.deepcopy(dict(desired.get("spec") or {}))
    return result


def service_copy_needs_recreate(target: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """True when no Update can turn the existing copy into the target's shape.

    A real API server refuses to turn an allocated cluster IP into `None` (headless) or back, to
    change the IP family policy's primary family, and to change `loadBalancerClass`; the copy must
    then be deleted and created again.
    """
    target_spec = target.get("spec") or {}
    actual_spec = actual.get("spec") or {}
    if EXTERNAL_NAME in (_type(target_spec), _type(actual_spec)):
        return False
    if _is_headless(target_spec) != _is_headless(actual_spec):
        return True
    target_families = target_spec.get("ipFamilies") or []
    actual_families = actual_spec.get("ipFamilies") or []
    if target_families and actual_families and target_families[0] != actual_families[0]:
        return True
    return (
        _type(target_spec) == "LoadBalancer"
        and _type(actual_spec) == "LoadBalancer"
        and target_spec.get("loadBalancerClass") != actual_spec.get("loadBalancerClass")
    )
