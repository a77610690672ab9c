"""Every Service-target transition yields objects a real API server accepts.

The checks below are the API server's Service rules (create and update validation) that the copies
can trip over; hypothesis walks through target changes between every type and headlessness.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalmine.api.models import Canary
from coalmine.targets.service import (
    KEEP_TYPE_ANNOTATION,
    NODE_PORT_TYPES,
    desired_service_copy,
    service_copy_needs_recreate,
    service_copy_update,
)

from .targets_fixtures import make_canary

CANARY = make_canary(
    {
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
        "autoscalerRef": None,
        "service": {"port": 80},
    },
    kind="Service",
)
KEEPING_TYPE = CANARY.model_copy(deep=True)
KEEPING_TYPE.metadata.annotations = {KEEP_TYPE_ANNOTATION: "true"}
TARGET_NODE_PORTS = {30080, 30081, 31999}
_counter = itertools.count(1)


@st.composite
def target_services(draw: st.DrawFn) -> dict[str, Any]:
    """A target Service as the API server stores it (with the target's own allocations)."""
    service_type = draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]))
    names = draw(st.sampled_from([["http"], ["http", "metrics"], [""]]))
    ports = []
    for index, name in enumerate(names):
        port: dict[str, Any] = {"protocol": "TCP", "port": 80 + index, "targetPort": 9898 + index}
        if name:
            port["name"] = name
        if service_type in ("NodePort", "LoadBalancer"):
            port["nodePort"] = 30080 + index
        ports.append(port)
    spec: dict[str, Any] = {"type": service_type, "ports": ports, "sessionAffinity": "None"}
    if service_type == "ExternalName":
        spec["externalName"] = draw(st.sampled_from(["a.example.com", "b.example.com"]))
    else:
        spec["selector"] = {"app": draw(st.sampled_from(["blue", "green"]))}
        spec["ipFamilies"] = ["IPv4"]
        spec["ipFamilyPolicy"] = "SingleStack"
        spec["internalTrafficPolicy"] = "Cluster"
        if service_type == "ClusterIP" and draw(st.booleans()):
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        else:
            spec["clusterIP"] = "10.96.0.10"
            spec["clusterIPs"] = ["10.96.0.10"]
    if service_type in ("NodePort", "LoadBalancer"):
        local = service_type == "LoadBalancer" and draw(st.booleans())
        spec["externalTrafficPolicy"] = "Local" if local else "Cluster"
        if local:
            spec["healthCheckNodePort"] = 31999
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "default", "uid": "t", "resourceVersion": "1"},
        "spec": spec,
    }


def _validate(spec: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The API server's rules for a Service spec, `old` being the stored spec on update."""
    service_type = spec.get("type", "ClusterIP")
    cluster_ip = spec.get("clusterIP")
    cluster_ips = spec.get("clusterIPs") or []
    ports = spec.get("ports") or []
    if service_type == "ExternalName":
        assert not cluster_ip, "ExternalName: clusterIP must be empty"
        assert not cluster_ips, "ExternalName: clusterIPs must be empty"
        assert not spec.get("ipFamilies"), "ExternalName: ipFamilies may not be set"
        assert not spec.get("ipFamilyPolicy"), "ExternalName: ipFamilyPolicy may not be set"
    if cluster_ips:
        assert cluster_ip, "clusterIPs must be empty when clusterIP is not specified"
        assert cluster_ips[0] == cluster_ip, "clusterIPs[0] must match clusterIP"
    node_ports = [p["nodePort"] for p in ports if p.get("nodePort")]
    if node_ports:
        assert service_type in ("NodePort", "LoadBalancer"), (
            "nodePort only on NodePort/LoadBalancer"
        )
    assert not set(node_ports) & TARGET_NODE_PORTS, "nodePort already allocated (to the target)"
    assert len(set(node_ports)) == len(node_ports), "duplicate nodePort"
    health = spec.get("healthCheckNodePort")
    if health:
        assert service_type == "LoadBalancer"
        assert spec.get("externalTrafficPolicy") == "Local"
        assert health not in TARGET_NODE_PORTS
    if service_type != "ExternalName" and "externalTrafficPolicy" in spec:
        assert service_type in ("NodePort", "LoadBalancer"), "externalTrafficPolicy on ClusterIP"
    if old is not None:
        old_type = old.get("type", "ClusterIP")
        if old_type != "ExternalName" and service_type != "ExternalName" and old.get("clusterIP"):
            assert cluster_ip == old["clusterIP"], "spec.clusterIP: field is immutable"


def _store(obj: dict[str, Any]) -> dict[str, Any]:
    """Create `obj` the way the server does: allocate what was left empty."""
    _validate(obj["spec"], None)
    stored = copy.deepcopy(obj)
    stored["metadata"]["uid"] = "copy-uid"
    stored["metadata"]["resourceVersion"] = "2"
    spec = stored["spec"]
    if spec.get("type", "ClusterIP") != "ExternalName":
        if spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        elif not spec.get("clusterIP"):
            ip = f"10.96.1.{next(_counter) % 250}"
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        for port in spec.get("ports") or []:
            port.setdefault("nodePort", 32000 + next(_counter) % 700)
        if spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            spec.setdefault("healthCheckNodePort", 32700 + next(_counter) % 60)
    return stored


@pytest.mark.parametrize("canary", [CANARY, KEEPING_TYPE], ids=["default", "keep-type"])
@settings(max_examples=300, deadline=None)
@given(first=target_services(), second=target_services())
def test_every_target_change_gives_copies_the_api_server_accepts(
    canary: Canary, first: dict[str, Any], second: dict[str, Any]
) -> None:
    existing = _store(desired_service_copy(canary, first, "podinfo-primary", None, [""]))
    desired = desired_service_copy(canary, second, "podinfo-primary", existing, [""])
    if service_copy_needs_recreate(second, existing):
        _store(desired_service_copy(canary, second, "podinfo-primary", None, [""]))
        return
    update = service_copy_update(desired, existing)
    if update is not None:
        _validate(update["spec"], existing["spec"])
        assert update["metadata"]["resourceVersion"] == existing["metadata"]["resourceVersion"]
    result = _store(update) if update is not None else existing
    # the copy now carries the target's release
    for key in ("selector", "externalName"):
        assert result["spec"].get(key) == second["spec"].get(key)
    target_type = second["spec"].get("type", "ClusterIP")
    if canary is CANARY and target_type in NODE_PORT_TYPES:
        assert result["spec"]["type"] == "ClusterIP"
    else:
        assert result["spec"].get("type", "ClusterIP") == target_type
    assert [p["port"] for p in result["spec"]["ports"]] == [
        p["port"] for p in second["spec"]["ports"]
    ]
    # and a second pass writes nothing
    again = desired_service_copy(canary, second, "podinfo-primary", result, [""])
    assert service_copy_update(again, result) is None
