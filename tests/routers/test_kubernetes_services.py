"""The Kubernetes Services of workload canaries (Flagger's kubernetes_default.go) and port discovery
(its scheduler tests' expectations)."""

from __future__ import annotations

import copy
from typing import Any

from coalmine.api.models import Canary
from coalmine.routers.kubernetes_services import (
    desired_apex_service,
    desired_canary_service,
    desired_primary_service,
    merge_for_update,
    service_ports,
)
from coalmine.targets.ports import discover_ports
from coalmine.targets.workload import WorkloadMetadata

TOOLKIT = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
POD_SPEC: dict[str, Any] = {
    "containers": [
        {
            "name": "podinfo",
            "ports": [
                {"name": "http", "containerPort": 9898},
                {"name": "http-metrics", "containerPort": 8080},
                {"containerPort": 8888},
            ],
        },
        {"name": "istio-proxy", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]},
        {"name": "envoy", "ports": [{"containerPort": 15000}]},
    ]
}


def _canary(**service: Any) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "default", "uid": "canary-uid"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898, **service},
                "analysis": {"interval": "1m", "threshold": 10, "stepWeight": 10},
            },
        }
    )


def _meta(canary: Canary) -> WorkloadMetadata:
    ports = (
        discover_ports(canary.spec.service, POD_SPEC) if canary.spec.service.port_discovery else {}
    )
    return WorkloadMetadata("app", "podinfo", ports)


def _ports(service: dict[str, Any]) -> list[tuple[str, int, Any]]:
    return [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]]


def test_port_discovery_adds_every_container_port_but_the_main_one() -> None:
    canary = _canary(portDiscovery=True)
    service = desired_canary_service(canary, _meta(canary))
    assert _ports(service) == [
        ("http", 9898, 9898),
        ("http-metrics", 8080, 8080),
        ("tcp-podinfo-2", 8888, 8888),
    ]
    assert all(p["protocol"] == "TCP" for p in service["spec"]["ports"])


def test_target_port_number_excludes_that_container_port() -> None:
    canary = _canary(port=80, targetPort=9898, portDiscovery=True)
    assert _ports(desired_canary_service(canary, _meta(canary))) == [
        ("http", 80, 9898),
        ("http-metrics", 8080, 8080),
        ("tcp-podinfo-2", 8888, 8888),
    ]


def test_target_port_name_excludes_the_named_container_port() -> None:
    canary = _canary(port=8080, targetPort="http", portDiscovery=True)
    assert discover_ports(canary.spec.service, POD_SPEC) == {
        "http-metrics": 8080,
        "tcp-podinfo-2": 8888,
    }
    # http-metrics would repeat port 8080, which a real API server refuses: it is left out
    assert _ports(desired_canary_service(canary, _meta(canary))) == [
        ("http", 8080, "http"),
        ("tcp-podinfo-2", 8888, 8888),
    ]


def test_discovered_port_named_like_the_main_port_is_left_out() -> None:
    canary = _canary(port=80, targetPort=8080, portDiscovery=True)
    ports = service_ports(canary, discover_ports(canary.spec.service, POD_SPEC))
    assert [p["name"] for p in ports] == ["http", "tcp-podinfo-2"]


def test_services_select_canary_and_primary_pods() -> None:
    canary = _canary(portName="tcp", appProtocol="http", trafficDistribution="PreferClose")
    meta = _meta(canary)
    apex = desired_apex_service(canary, meta)
    primary = desired_primary_service(canary, meta)
    canary_service = desired_canary_service(canary, meta)
    assert [s["metadata"]["name"] for s in (apex, primary, canary_service)] == [
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    ]
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
    assert primary["spec"]["selector"] == {"app": "podinfo-primary"}
    assert canary_service["spec"]["selector"] == {"app": "podinfo"}
    assert apex["spec"]["type"] == "ClusterIP"
    assert apex["spec"]["trafficDistribution"] == "PreferClose"
    assert apex["spec"]["ports"] == [
        {"name": "tcp", "protocol": "TCP", "port": 9898, "targetPort": 9898, "appProtocol": "http"}
    ]
    assert "clusterIP" not in apex["spec"]


def test_labels_annotations_and_owner_of_created_services() -> None:
    canary = _canary(
        name="web",
        apex={"labels": {"tier": "apex"}, "annotations": {"a": "1"}},
        canary={"labels": {"tier": "canary"}},
    )
    meta = _meta(canary)
    apex = desired_apex_service(canary, meta)
    assert apex["metadata"]["name"] == "web"
    assert apex["metadata"]["labels"] == {"tier": "apex", "app": "web"}
    assert apex["metadata"]["annotations"] == {"a": "1", **TOOLKIT}
    canary_service = desired_canary_service(canary, meta)
    assert canary_service["metadata"]["labels"] == {"tier": "canary", "app": "web-canary"}
    assert canary_service["metadata"]["annotations"] == TOOLKIT
    assert apex["metadata"]["ownerReferences"][0]["name"] == "podinfo"
    assert apex["metadata"]["ownerReferences"][0]["controller"] is True


def test_headless_only_on_creation() -> None:
    canary = _canary(headless=True)
    desired = desired_primary_service(canary, _meta(canary))
    assert desired["spec"]["clusterIP"] == "None"
    actual = _as_stored(desired_primary_service(_canary(), _meta(_canary())), "10.96.0.5")
    update = merge_for_update(desired, actual, canary)
    assert update is None


def _as_stored(obj: dict[str, Any], ip: str) -> dict[str, Any]:
    stored = copy.deepcopy(obj)
    stored["metadata"]["resourceVersion"] = "12"
    stored["spec"].setdefault("clusterIP", ip)
    stored["spec"]["clusterIPs"] = [stored["spec"]["clusterIP"]]
    stored["spec"]["sessionAffinity"] = "None"
    return stored


def test_unchanged_service_is_not_written() -> None:
    canary = _canary(portDiscovery=True)
    desired = desired_canary_service(canary, _meta(canary))
    actual = _as_stored(desired, "10.96.0.6")
    actual["spec"]["ports"].reverse()
    assert merge_for_update(desired, actual, canary) is None


def test_changed_selector_and_ports_are_replaced_keeping_node_ports() -> None:
    canary = _canary()
    desired = desired_apex_service(canary, _meta(canary))
    actual = _as_stored(desired, "10.96.0.7")
    actual["spec"]["type"] = "NodePort"
    actual["spec"]["ports"] = [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898, "nodePort": 30080}
    ]
    actual["spec"]["selector"] = {"app": "podinfo"}
    update = merge_for_update(desired, actual, canary)
    assert update is not None
    assert update["spec"]["selector"] == {"app": "podinfo-primary"}
    assert update["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898, "nodePort": 30080}
    ]
    # type and cluster IP stay as they are
    assert update["spec"]["type"] == "NodePort"
    assert update["spec"]["clusterIP"] == "10.96.0.7"
    assert update["metadata"]["resourceVersion"] == "12"


def test_owned_service_metadata_is_replaced_but_unmanaged_keys_kept() -> None:
    canary = _canary(
        apex={"labels": {"tier": "apex"}},
        unmanagedMetadata={"labels": ["external"], "annotations": ["linkerd.io/inject"]},
    )
    desired = desired_apex_service(canary, _meta(canary))
    actual = _as_stored(desired, "10.96.0.8")
    actual["metadata"]["labels"] = {"app": "podinfo", "stale": "x", "external": "kept"}
    actual["metadata"]["annotations"] = {"linkerd.io/inject": "enabled", "old": "y"}
    update = merge_for_update(desired, actual, canary)
    assert update is not None
    assert update["metadata"]["labels"] == {"tier": "apex", "app": "podinfo", "external": "kept"}
    assert update["metadata"]["annotations"] == {"linkerd.io/inject": "enabled", **TOOLKIT}


def test_foreign_service_only_gets_ports_selector_and_toolkit_annotations() -> None:
    canary = _canary()
    desired = desired_apex_service(canary, _meta(canary))
    actual = _as_stored(desired, "10.96.0.9")
    actual["metadata"] = {
        "name": "podinfo",
        "namespace": "default",
        "labels": {"helm": "yes"},
        "annotations": {"x": "1"},
    }
    assert merge_for_update(desired, actual, canary) is None
    actual["spec"]["selector"] = {"app": "podinfo"}
    update = merge_for_update(desired, actual, canary)
    assert update is not None
    assert update["metadata"]["labels"] == {"helm": "yes"}
    assert update["metadata"]["annotations"] == {"x": "1", **TOOLKIT}
    assert update["spec"]["selector"] == {"app": "podinfo-primary"}
