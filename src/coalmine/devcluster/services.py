"""Service admission as kube-apiserver does it: defaults, ClusterIP and NodePort allocation, and
the validation rules clients hit when they copy or switch Services.

The rules and messages follow kube-apiserver's service REST storage (`alloc.go`: allocation,
`patchAllocatedValues`, `dropTypeDependentFields`, `NormalizeClusterIPs`) and
`ValidateService`/`ValidateServiceUpdate`. Known differences: IPv4 single-stack only (a dual-stack
request is rejected as a single-stack kube-apiserver rejects it), no `loadBalancerClass` or
`externalIPs` admission, no Endpoints/EndpointSlice maintenance, and validation covers the
allocation-related fields, ports and types rather than every field of a Service.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any

from coalmine.devcluster.errors import Cause, invalid

Obj = dict[str, Any]

TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
FAMILIES = ["IPv4", "IPv6"]
DEFAULTED_DUAL = "__devcluster_defaulted_dual_stack"
IANA_SVC_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PROTOCOLS = ["SCTP", "TCP", "UDP"]
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def needs_cluster_ip(svc: Obj) -> bool:
    return bool(svc.get("spec", {}).get("type", "ClusterIP") != "ExternalName")


def needs_node_port(svc: Obj) -> bool:
    return bool(svc.get("spec", {}).get("type") in ("NodePort", "LoadBalancer"))


def needs_hc_node_port(svc: Obj) -> bool:
    spec = svc.get("spec", {})
    return bool(spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local")


class ServiceAllocator:
    """ClusterIPs from a service CIDR and node ports from a port range, with kube's messages."""

    def __init__(
        self, cidr: str = "10.96.0.0/12", node_ports: tuple[int, int] = (30000, 32767)
    ) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        self.node_port_range = node_ports
        self.ips: set[str] = set()
        self.ports: set[int] = set()
        # The first address is the network, the second is kept for the `kubernetes` Service.
        self._next_ip = int(self.network.network_address) + 10
        self._next_port = node_ports[0]

    # --- IPs -------------------------------------------------------------------------------
    def allocate_ip(
        self, requested: str | None, path: str, value: Any
    ) -> tuple[str | None, Cause | None]:
        if requested:
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                return None, Cause.invalid(path, value, "must be a valid IP address")
            if address not in self.network:
                detail = (
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in "
                    f"the valid range. The range of valid IPs is {self.network}"
                )
                return None, Cause.invalid(path, value, detail)
            if requested in self.ips:
                detail = f"failed to allocate IP {requested}: provided IP is already allocated"
                return None, Cause.invalid(path, value, detail)
            self.ips.add(requested)
            return requested, None
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1
        size = last - first + 1
        for step in range(size):
            candidate = first + (self._next_ip - first + step) % size
            text = str(ipaddress.IPv4Address(candidate))
            if text not in self.ips:
                self.ips.add(text)
                self._next_ip = candidate + 1
                return text, None
        return None, Cause.invalid(path, value, "failed to allocate IP: range is full")

    def release_ip(self, ip: str | None) -> None:
        if ip:
            self.ips.discard(ip)

    # --- node ports ------------------------------------------------------------------------
    def allocate_port(self, requested: int | None, path: str) -> tuple[int | None, Cause | None]:
        low, high = self.node_port_range
        if requested:
            if not low <= requested <= high:
                detail = (
                    "provided port is not in the valid range. The range of valid ports is "
                    f"{low}-{high}"
                )
                return None, Cause.invalid(path, requested, detail)
            if requested in self.ports:
                return None, Cause.invalid(path, requested, "provided port is already allocated")
            self.ports.add(requested)
            return requested, None
        size = high - low + 1
        for step in range(size):
            candidate = low + (self._next_port - low + step) % size
            if candidate not in self.ports:
                self.ports.add(candidate)
                self._next_port = candidate + 1
                return candidate, None
        return None, Cause.invalid(path, requested, "range is full")

    def release_port(self, port: int | None) -> None:
        if port:
            self.ports.discard(port)

    # --- admission -------------------------------------------------------------------------
    def admit(self, new: Obj, old: Obj | None) -> Obj:
        """Default, validate and allocate for a create (`old` None) or an update; raise 422."""
        svc = copy.deepcopy(new)
        svc.setdefault("spec", {})
        if old is not None:
            _drop_type_dependent_fields(svc, old)
            _patch_allocated_values(svc, old)
        _normalize_cluster_ips(svc, old)
        _set_defaults(svc)
        name = svc["metadata"].get("name", "")
        causes = _validate(svc, old)
        if causes:
            raise invalid("Service", "", name, causes)
        causes = self._allocate(svc, old)
        if causes:
            raise invalid("Service", "", name, causes)
        if old is not None:
            self._release_unused(old, svc)
        return svc

    def _allocate(self, svc: Obj, old: Obj | None) -> list[Cause]:
        spec = svc["spec"]
        taken_ips: list[str] = []
        taken_ports: list[int] = []
        causes: list[Cause] = []
        old_spec = (old or {}).get("spec", {})
        old_ips = set(old_spec.get("clusterIPs") or []) if old is not None else set()
        if needs_cluster_ip(svc):
            cluster_ip = spec.get("clusterIP") or ""
            if cluster_ip != "None" and cluster_ip not in old_ips:
                got, cause = self.allocate_ip(
                    cluster_ip or None, "spec.clusterIPs", spec.get("clusterIPs") or [cluster_ip]
                )
                if cause is not None:
                    causes.append(cause)
                elif got is not None:
                    taken_ips.append(got)
                    spec["clusterIP"] = got
                    spec["clusterIPs"] = [got]
        old_ports = {
            p.get("nodePort") for p in old_spec.get("ports") or [] if p.get("nodePort")
        } | ({old_spec["healthCheckNodePort"]} if old_spec.get("healthCheckNodePort") else set())
        if needs_node_port(svc) and spec.get("allocateLoadBalancerNodePorts", True) is not False:
            for index, port in enumerate(spec.get("ports") or []):
                requested = port.get("nodePort")
                if requested and requested in old_ports:
                    continue
                got_port, cause = self.allocate_port(requested, f"spec.ports[{index}].nodePort")
                if cause is not None:
                    causes.append(cause)
                elif got_port is not None:
                    taken_ports.append(got_port)
                    port["nodePort"] = got_port
        elif needs_node_port(svc):
            for index, port in enumerate(spec.get("ports") or []):
                requested = port.get("nodePort")
                if requested and requested not in old_ports:
                    got_port, cause = self.allocate_port(requested, f"spec.ports[{index}].nodePort")
                    if cause is not None:
                        causes.append(cause)
                    elif got_port is not None:
                        taken_ports.append(got_port)
        if needs_hc_node_port(svc):
            requested = spec.get("healthCheckNodePort")
            if not (requested and requested in old_ports):
                got_port, cause = self.allocate_port(requested, "spec.healthCheckNodePort")
                if cause is not None:
                    causes.append(cause)
                elif got_port is not None:
                    taken_ports.append(got_port)
                    spec["healthCheckNodePort"] = got_port
        if causes:
            for ip in taken_ips:
                self.release_ip(ip)
            for taken in taken_ports:
                self.release_port(taken)
        return causes

    def _release_unused(self, old: Obj, new: Obj) -> None:
        held_ips = set(new["spec"].get("clusterIPs") or [])
        for ip in old.get("spec", {}).get("clusterIPs") or []:
            if ip not in held_ips and ip != "None":
                self.release_ip(ip)
        held_ports = set(service_node_ports(new))
        for port in service_node_ports(old):
            if port not in held_ports:
                self.release_port(port)

    def release_unused(self, dry_run: Obj, live: Obj) -> None:
        """Undo what admitting the dry-run update `dry_run` of `live` allocated."""
        self._release_unused(dry_run, live)
        for ip in live.get("spec", {}).get("clusterIPs") or []:
            if ip != "None":
                self.ips.add(ip)
        self.ports.update(service_node_ports(live))

    def release(self, svc: Obj) -> None:
        """Free what a deleted Service held."""
        for ip in svc.get("spec", {}).get("clusterIPs") or []:
            if ip != "None":
                self.release_ip(ip)
        for port in service_node_ports(svc):
            self.release_port(port)


def service_node_ports(svc: Obj) -> list[int]:
    spec = svc.get("spec", {})
    ports = [p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")]
    if spec.get("healthCheckNodePort"):
        ports.append(spec["healthCheckNodePort"])
    return ports


def _drop_type_dependent_fields(svc: Obj, old: Obj) -> None:
    """Switching type clears the fields the new type cannot have, if the user left them as they were."""
    spec, old_spec = svc["spec"], old.get("spec", {})
    if needs_cluster_ip(old) and not needs_cluster_ip(svc):
        if spec.get("clusterIP") == old_spec.get("clusterIP") and (
            spec.get("clusterIPs") in (None, old_spec.get("clusterIPs"))
        ):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old_spec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
        if spec.get("internalTrafficPolicy") == old_spec.get("internalTrafficPolicy"):
            spec.pop("internalTrafficPolicy", None)
    if needs_node_port(old) and not needs_node_port(svc):
        old_ports = {p.get("name", ""): p.get("nodePort") for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if port.get("nodePort") and old_ports.get(port.get("name", "")) == port["nodePort"]:
                del port["nodePort"]
        if spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
            spec.pop("externalTrafficPolicy", None)
    if (
        needs_hc_node_port(old)
        and not needs_hc_node_port(svc)
        and spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort")
    ):
        spec.pop("healthCheckNodePort", None)
    if (
        old_spec.get("type") == "LoadBalancer"
        and spec.get("type") != "LoadBalancer"
        and spec.get("allocateLoadBalancerNodePorts")
        == old_spec.get("allocateLoadBalancerNodePorts")
    ):
        spec.pop("allocateLoadBalancerNodePorts", None)


def _patch_allocated_values(svc: Obj, old: Obj) -> None:
    """An update that omits allocated values keeps them (kube's `patchAllocatedValues`)."""
    spec, old_spec = svc["spec"], old.get("spec", {})
    if needs_cluster_ip(old) and needs_cluster_ip(svc):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_node_port(old) and needs_node_port(svc):
        used = {p.get("nodePort") for p in old_spec.get("ports") or []} & {
            p.get("nodePort") for p in spec.get("ports") or []
        }
        by_name = {p.get("name", ""): p.get("nodePort") for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                previous = by_name.get(port.get("name", ""))
                if previous and previous not in used:
                    port["nodePort"] = previous
    if (
        needs_hc_node_port(old)
        and needs_hc_node_port(svc)
        and not spec.get("healthCheckNodePort")
        and old_spec.get("healthCheckNodePort")
    ):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def _normalize_cluster_ips(svc: Obj, old: Obj | None) -> None:
    spec = svc["spec"]
    if old is None:
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        return
    old_spec = old.get("spec", {})
    if not spec.get("clusterIP") and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
        # the user cleared the singular field and left the plural untouched
        spec.pop("clusterIPs", None)
    elif (
        spec.get("clusterIP")
        and spec.get("clusterIP") != old_spec.get("clusterIP")
        and spec.get("clusterIPs") == old_spec.get("clusterIPs")
        and old_spec.get("clusterIPs")
    ):
        spec["clusterIPs"] = [spec["clusterIP"], *old_spec["clusterIPs"][1:]]
    elif spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]


def _set_defaults(svc: Obj) -> None:
    spec = svc["spec"]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    kind = spec["type"]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if "targetPort" not in port and "port" in port:
            port["targetPort"] = port["port"]
    if kind != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        if headless_without_selector and "ipFamilyPolicy" not in spec:
            # kube-apiserver gives such a Service every family, even on a single-stack cluster
            spec["ipFamilyPolicy"] = "RequireDualStack"
            spec.setdefault("ipFamilies", ["IPv4", "IPv6"])
            svc[DEFAULTED_DUAL] = True
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec.get("sessionAffinity") == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        config.setdefault("timeoutSeconds", 10800)
    svc.setdefault("status", {"loadBalancer": {}})
    for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if isinstance(ingress, dict) and ingress.get("ip"):
            ingress.setdefault("ipMode", "VIP")


def _validate(svc: Obj, old: Obj | None) -> list[Cause]:
    spec = svc["spec"]
    causes: list[Cause] = []
    kind = spec.get("type")
    if kind not in TYPES:
        causes.append(Cause.not_supported("spec.type", kind, TYPES))
        return causes
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = spec.get("clusterIPs") or []
    if kind == "ExternalName":
        if cluster_ip or cluster_ips:
            causes.append(
                Cause.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
            )
        external = spec.get("externalName") or ""
        if not external:
            causes.append(Cause.required("spec.externalName"))
        elif not DNS1123_SUBDOMAIN.match(external.rstrip(".")) or len(external) > 253:
            causes.append(
                Cause.invalid(
                    "spec.externalName",
                    external,
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            )
    else:
        if not cluster_ip and cluster_ips:
            causes.append(
                Cause.invalid(
                    "spec.clusterIPs", cluster_ips, "must be empty when clusterIP is not specified"
                )
            )
        elif cluster_ip and cluster_ips and cluster_ips[0] != cluster_ip:
            causes.append(
                Cause.invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`")
            )
        for index in range(1, len(cluster_ips)):
            causes.append(
                Cause.invalid(
                    f"spec.clusterIPs[{index}]",
                    cluster_ips,
                    "may specify no more than one IP for each IP family (this cluster is IPv4 "
                    "single-stack)",
                )
            )
        for index, ip in enumerate(cluster_ips):
            if ip == "None":
                if index > 0 or kind != "ClusterIP":
                    causes.append(
                        Cause.invalid(
                            f"spec.clusterIPs[{index}]",
                            ip,
                            "may be 'None' only for ClusterIP services (headless)",
                        )
                    )
                continue
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                causes.append(
                    Cause.invalid(
                        f"spec.clusterIPs[{index}]",
                        ip,
                        "must be empty, 'None', or a valid IP address",
                    )
                )
        if not svc.pop(DEFAULTED_DUAL, False):
            causes.extend(_family_causes(spec))
        if spec.get("externalTrafficPolicy") and kind == "ClusterIP":
            causes.append(
                Cause.invalid(
                    "spec.externalTrafficPolicy",
                    spec["externalTrafficPolicy"],
                    "may only be set for externally-accessible services",
                )
            )
        ports = spec.get("ports") or []
        if not ports and cluster_ip != "None":
            causes.append(Cause.required("spec.ports"))
    if old is not None and needs_cluster_ip(old) and needs_cluster_ip(svc):
        old_ips = old.get("spec", {}).get("clusterIPs") or []
        if old_ips and cluster_ips and old_ips[0] != cluster_ips[0]:
            causes.append(
                Cause.invalid("spec.clusterIPs[0]", cluster_ips, "may not change once set")
            )
    causes.extend(_validate_ports(spec))
    return causes


def _family_causes(spec: Obj) -> list[Cause]:
    """`ipFamilyPolicy` and `ipFamilies` on this IPv4 single-stack cluster."""
    policy = spec.get("ipFamilyPolicy")
    if policy not in POLICIES:
        return [Cause.not_supported("spec.ipFamilyPolicy", policy, POLICIES)]
    families = spec.get("ipFamilies") or []
    many = "families" if len(families) > 1 else "cluster IPs"
    if policy == "SingleStack" and (len(families) > 1 or len(spec.get("clusterIPs") or []) > 1):
        return [
            Cause.invalid(
                "spec.ipFamilyPolicy",
                policy,
                f"must be 'RequireDualStack' or 'PreferDualStack' when multiple {many} are "
                "specified",
            )
        ]
    if policy == "RequireDualStack":
        return [
            Cause.invalid(
                "spec.ipFamilyPolicy",
                policy,
                "this cluster is not configured for dual-stack services",
            )
        ]
    causes: list[Cause] = []
    for index, family in enumerate(families):
        if family not in FAMILIES:
            causes.append(Cause.not_supported(f"spec.ipFamilies[{index}]", family, FAMILIES))
        elif family != "IPv4":
            causes.append(
                Cause.invalid(f"spec.ipFamilies[{index}]", family, "not configured on this cluster")
            )
    return causes


def _target_port_causes(path: str, target: Any) -> list[Cause]:
    if isinstance(target, int) and not isinstance(target, bool):
        if not 1 <= target <= 65535:
            return [Cause.invalid(path, target, "must be between 1 and 65535, inclusive")]
    elif isinstance(target, str) and not IANA_SVC_NAME.match(target):
        return [
            Cause.invalid(
                path,
                target,
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            )
        ]
    return []


def _validate_ports(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    ports = spec.get("ports") or []
    names: set[str] = set()
    node_ports: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            causes.append(Cause.required(f"{path}.name"))
        elif name:
            if name in names:
                causes.append(Cause.duplicate(f"{path}.name", name))
            names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                Cause.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive")
            )
        causes.extend(_target_port_causes(f"{path}.targetPort", port.get("targetPort")))
        protocol = port.get("protocol")
        if protocol not in PROTOCOLS:
            causes.append(Cause.not_supported(f"{path}.protocol", protocol, PROTOCOLS))
        node_port = port.get("nodePort")
        if node_port:
            if spec.get("type") not in ("NodePort", "LoadBalancer"):
                causes.append(
                    Cause.forbidden(
                        f"{path}.nodePort",
                        f"may not be used when `type` is '{spec.get('type')}'",
                    )
                )
            elif (node_port, protocol) in node_ports:
                # what the allocator says (validation's Duplicate comes after it on a real server)
                causes.append(
                    Cause.invalid(
                        f"{path}.nodePort", node_port, "provided port is already allocated"
                    )
                )
            node_ports.add((node_port, str(protocol)))
    return causes
