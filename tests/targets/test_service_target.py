"""Service targets (Flagger's service_controller.go, with docs/decisions.md 'Service copies',
'Primary ownership' and 'Service-target copy names'): copies a real API server accepts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.targets.hashing import service_hash
from coalmine.targets.labels import owner_reference
from coalmine.targets.service import (
    KEEP_TYPE_ANNOTATION,
    copy_spec,
    desired_service_copy,
    service_copy_names,
    service_copy_needs_recreate,
    service_copy_update,
)

from .targets_fixtures import CANARY_UID, make_canary

ALLOCATED_SPEC_FIELDS = ("clusterIP", "clusterIPs", "healthCheckNodePort")
SERVICE_CANARY = {
    "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
    "autoscalerRef": None,
}


def _canary(*, keep_type: bool = False, **service: Any) -> Canary:
    canary = make_canary({**SERVICE_CANARY, "service": {"port": 80, **service}}, kind="Service")
    if keep_type:
        canary.metadata.annotations = {KEEP_TYPE_ANNOTATION: "true"}
    return canary


def _target(service_type: str = "ClusterIP", **spec: Any) -> dict[str, Any]:
    """A Service as the API server returns it, allocations and server fields included."""
    body: dict[str, Any] = {
        "type": service_type,
        "selector": {"app": "podinfo-blue"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898}],
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
    }
    if service_type in ("NodePort", "LoadBalancer"):
        body["externalTrafficPolicy"] = "Cluster"
        body["ports"][0]["nodePort"] = 30080
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "uid": "target-uid",
            "resourceVersion": "41",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "labels": {
                "app.kubernetes.io/name": "podinfo",
                "team": "a",
                "helm.toolkit.fluxcd.io/name": "x",
            },
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "app.kubernetes.io/note": "n",
            },
        },
        "spec": body,
        "status": {"loadBalancer": {}},
    }


def _external(name: str = "cluster-a.example.com") -> dict[str, Any]:
    target = _target()
    target["spec"] = {
        "type": "ExternalName",
        "externalName": name,
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}],
        "sessionAffinity": "None",
    }
    return target


def _as_created(
    obj: dict[str, Any], ip: str, node_ports: tuple[int, ...] = (), health: int | None = None
) -> dict[str, Any]:
    """What the API server returns after creating `obj`: its own allocations filled in."""
    created = copy.deepcopy(obj)
    created["metadata"].update({"uid": f"uid-{obj['metadata']['name']}", "resourceVersion": "50"})
    spec = created["spec"]
    if spec.get("type") != "ExternalName":
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        else:
            spec["clusterIPs"] = ["None"]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    for port, node_port in zip(spec.get("ports") or [], node_ports, strict=False):
        port["nodePort"] = node_port
    if health is not None:
        spec["healthCheckNodePort"] = health
    return created


def _assert_creatable(obj: dict[str, Any]) -> None:
    spec = obj["spec"]
    assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations", "ownerReferences"}
    assert "status" not in obj
    for field in ("clusterIPs", "healthCheckNodePort"):
        assert field not in spec
    assert spec.get("clusterIP") in (None, "None")
    assert all("nodePort" not in port for port in spec.get("ports") or [])


def test_copies_are_named_from_service_name_when_set() -> None:
    assert service_copy_names(_canary()) == ("podinfo-primary", "podinfo-canary")
    assert service_copy_names(_canary(name="web")) == ("web-primary", "web-canary")


@pytest.mark.parametrize("service_type", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_new_copy_carries_the_spec_without_allocated_fields(service_type: str) -> None:
    target = _target(service_type)
    if service_type == "LoadBalancer":
        target["spec"].update(
            externalTrafficPolicy="Local", healthCheckNodePort=31999, loadBalancerIP="1.2.3.4"
        )
    canary = _canary(keep_type=True)
    created = desired_service_copy(canary, target, "podinfo-canary", None, ["app.kubernetes.io"])
    _assert_creatable(created)
    spec = created["spec"]
    assert spec["type"] == service_type
    assert spec["selector"] == {"app": "podinfo-blue"}
    assert spec["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898}]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert "loadBalancerIP" not in spec
    assert "externalIPs" not in spec
    assert created["metadata"]["name"] == "podinfo-canary"
    assert created["metadata"]["ownerReferences"] == [owner_reference(canary)]


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_node_port_and_load_balancer_targets_give_cluster_ip_copies_by_default(
    service_type: str,
) -> None:
    target = _target(
        service_type,
        externalTrafficPolicy="Local",
        healthCheckNodePort=31999,
        loadBalancerIP="1.2.3.4",
        loadBalancerSourceRanges=["10.0.0.0/8"],
        loadBalancerClass="example.com/lb",
        allocateLoadBalancerNodePorts=True,
    )
    spec = desired_service_copy(_canary(), target, "podinfo-canary", None, [""])["spec"]
    assert spec["type"] == "ClusterIP"
    for field in (
        "externalTrafficPolicy",
        "healthCheckNodePort",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "loadBalancerClass",
        "allocateLoadBalancerNodePorts",
        "clusterIP",
        "clusterIPs",
    ):
        assert field not in spec, field
    assert all("nodePort" not in port for port in spec["ports"])
    assert spec["selector"] == {"app": "podinfo-blue"}


def test_headless_target_gives_headless_copies() -> None:
    target = _target(clusterIP="None", clusterIPs=["None"])
    created = desired_service_copy(_canary(), target, "podinfo-primary", None, [""])
    assert created["spec"]["clusterIP"] == "None"
    assert "clusterIPs" not in created["spec"]
    existing = _as_created(created, "unused")
    again = desired_service_copy(_canary(), target, "podinfo-primary", existing, [""])
    assert again["spec"]["clusterIP"] == "None"
    assert again["spec"]["clusterIPs"] == ["None"]
    assert service_copy_update(again, existing) is None


def test_external_name_target_copies_as_is() -> None:
    created = desired_service_copy(_canary(), _external(), "podinfo-canary", None, [""])
    assert created["spec"] == {
        "type": "ExternalName",
        "externalName": "cluster-a.example.com",
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}],
        "sessionAffinity": "None",
    }


def test_metadata_follows_include_label_prefix_without_kubectl_or_flux_keys() -> None:
    created = desired_service_copy(_canary(), _target(), "podinfo-canary", None, ["*"])
    assert created["metadata"]["labels"] == {"app.kubernetes.io/name": "podinfo", "team": "a"}
    assert created["metadata"]["annotations"] == {"app.kubernetes.io/note": "n"}
    plain = desired_service_copy(_canary(), _target(), "podinfo-canary", None, [""])
    assert "labels" not in plain["metadata"]
    assert "annotations" not in plain["metadata"]


def test_traffic_distribution_comes_from_the_canary() -> None:
    created = desired_service_copy(
        _canary(trafficDistribution="PreferClose"), _target(), "c", None, [""]
    )
    assert created["spec"]["trafficDistribution"] == "PreferClose"


def test_promotion_keeps_the_primarys_own_cluster_ip() -> None:
    canary = _canary()
    primary = _as_created(
        desired_service_copy(canary, _target(), "podinfo-primary", None, [""]), "10.96.0.20"
    )
    green = _target(selector={"app": "podinfo-green"})
    promoted = desired_service_copy(canary, green, "podinfo-primary", primary, [""])
    update = service_copy_update(promoted, primary)
    assert update is not None
    spec = update["spec"]
    assert spec["selector"] == {"app": "podinfo-green"}
    assert spec["clusterIP"] == "10.96.0.20"
    assert spec["clusterIPs"] == ["10.96.0.20"]
    assert spec["ipFamilies"] == ["IPv4"]
    assert update["metadata"]["resourceVersion"] == "50"
    assert update["metadata"]["uid"] == "uid-podinfo-primary"


def test_promotion_keeps_the_canary_owner_reference() -> None:
    canary = _canary()
    primary = _as_created(
        desired_service_copy(canary, _target(), "podinfo-primary", None, [""]), "10.96.0.20"
    )
    promoted = desired_service_copy(
        canary, _target(selector={"app": "green"}), "podinfo-primary", primary, [""]
    )
    update = service_copy_update(promoted, primary)
    assert update is not None
    refs = update["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"], r["controller"]) for r in refs] == [
        ("Canary", "podinfo", CANARY_UID, True)
    ]


def test_unchanged_target_writes_nothing() -> None:
    canary = _canary()
    existing = _as_created(
        desired_service_copy(canary, _target(), "podinfo-canary", None, ["*"]), "10.96.0.30"
    )
    desired = desired_service_copy(canary, _target(), "podinfo-canary", existing, ["*"])
    assert service_copy_update(desired, existing) is None


def test_node_ports_and_health_check_port_of_the_copy_are_kept() -> None:
    canary = _canary(keep_type=True)
    target = _target("LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=31999)
    target["spec"]["ports"].append(
        {"name": "metrics", "protocol": "TCP", "port": 8080, "targetPort": 8080, "nodePort": 30081}
    )
    created = desired_service_copy(canary, target, "podinfo-primary", None, [""])
    _assert_creatable(created)
    existing = _as_created(created, "10.96.0.40", node_ports=(31080, 31081), health=32000)
    reordered = copy.deepcopy(target)
    reordered["spec"]["ports"].reverse()
    reordered["spec"]["selector"] = {"app": "green"}
    update = service_copy_update(
        desired_service_copy(canary, reordered, "podinfo-primary", existing, [""]), existing
    )
    assert update is not None
    ports = {p["name"]: p["nodePort"] for p in update["spec"]["ports"]}
    assert ports == {"http": 31080, "metrics": 31081}
    assert update["spec"]["healthCheckNodePort"] == 32000
    assert update["spec"]["clusterIP"] == "10.96.0.40"


def test_new_node_port_is_left_to_the_server() -> None:
    canary = _canary(keep_type=True)
    target = _target("NodePort")
    existing = _as_created(
        desired_service_copy(canary, target, "c", None, [""]), "10.96.0.41", node_ports=(31080,)
    )
    target["spec"]["ports"].append(
        {"name": "grpc", "protocol": "TCP", "port": 9999, "targetPort": 9999, "nodePort": 30999}
    )
    spec = copy_spec(target["spec"], existing["spec"], None, keep_type=True)
    assert spec["ports"][0]["nodePort"] == 31080
    assert "nodePort" not in spec["ports"][1]


def test_cluster_ip_to_external_name_drops_ips() -> None:
    canary = _canary()
    existing = _as_created(
        desired_service_copy(canary, _target(), "podinfo-primary", None, [""]), "10.96.0.50"
    )
    desired = desired_service_copy(canary, _external(), "podinfo-primary", existing, [""])
    for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert field not in desired["spec"]
    assert not service_copy_needs_recreate(_external(), existing)
    update = service_copy_update(desired, existing)
    assert update is not None
    assert update["spec"]["type"] == "ExternalName"
    assert "clusterIP" not in update["spec"]


def test_external_name_to_cluster_ip_has_no_ip_to_keep() -> None:
    canary = _canary()
    existing = _as_created(
        desired_service_copy(canary, _external(), "podinfo-primary", None, [""]), "x"
    )
    desired = desired_service_copy(canary, _target(), "podinfo-primary", existing, [""])
    spec = desired["spec"]
    assert spec["type"] == "ClusterIP"
    assert "clusterIP" not in spec
    assert "clusterIPs" not in spec
    assert not service_copy_needs_recreate(_target(), existing)


def test_node_port_to_cluster_ip_drops_node_ports() -> None:
    canary = _canary()
    existing = _as_created(
        desired_service_copy(canary, _target("NodePort"), "c", None, [""]),
        "10.96.0.60",
        node_ports=(31080,),
    )
    spec = desired_service_copy(canary, _target(), "c", existing, [""])["spec"]
    assert all("nodePort" not in p for p in spec["ports"])
    assert spec["clusterIP"] == "10.96.0.60"
    assert "externalTrafficPolicy" not in spec


def test_headless_switch_needs_recreate() -> None:
    canary = _canary()
    existing = _as_created(desired_service_copy(canary, _target(), "c", None, [""]), "10.96.0.70")
    headless = _target(clusterIP="None", clusterIPs=["None"])
    assert service_copy_needs_recreate(headless, existing)
    assert not service_copy_needs_recreate(_target(), existing)


def test_foreign_and_unmanaged_metadata_on_copies_is_kept() -> None:
    canary = _canary(unmanagedMetadata={"labels": ["app.kubernetes.io/owned-by-other"]})
    existing = _as_created(
        desired_service_copy(canary, _target(), "c", None, ["app.kubernetes.io"]), "10.96.0.80"
    )
    existing["metadata"]["annotations"] = {
        "cloud.google.com/neg-status": "{}",
        "app.kubernetes.io/stale": "x",
    }
    existing["metadata"]["labels"]["app.kubernetes.io/owned-by-other"] = "y"
    desired = desired_service_copy(canary, _target(), "c", existing, ["app.kubernetes.io"])
    assert desired["metadata"]["annotations"] == {
        "cloud.google.com/neg-status": "{}",
        "app.kubernetes.io/note": "n",
    }
    assert desired["metadata"]["labels"] == {
        "app.kubernetes.io/name": "podinfo",
        "app.kubernetes.io/owned-by-other": "y",
    }


def test_hash_ignores_metadata_and_the_targets_allocations() -> None:
    first = _target()
    second = _target(clusterIP="10.96.9.9", clusterIPs=["10.96.9.9"])
    second["metadata"]["labels"] = {}
    assert service_hash(first) == service_hash(second)
    assert service_hash(first) != service_hash(_target(selector={"app": "podinfo-green"}))
