"""App Mesh routers (Flagger's appmesh.go / appmesh_v1beta2.go and their tests): every object
validated against the official v1beta2 CRDs, or for v1beta1 against our schema written from
Flagger's Go types (no official v1beta1 CRD exists here; see crds/SOURCES.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine.api.models import Canary
from coalmine.cli.check import Options as CheckOptions
from coalmine.cli.check import check_stream
from coalmine.routers.appmesh import ROUTER_V1BETA2
from coalmine.routers.appmesh_v1beta1 import ROUTER_V1BETA1, AppMeshV1beta1Router
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.registry import router_for
from coalmine.routers.verdict import Options, compatibility, judge
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid

MESH = {"meshName": "global"}


def service_copy(name: str, selector: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": selector}, "ports": [{"port": 9898}]},
    }


COPIES = [
    service_copy("podinfo-primary", "podinfo-primary"),
    service_copy("podinfo-canary", "podinfo"),
]


def by_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    body = route.get("httpRoute") or route.get("http2Route") or route.get("http") or {}
    return [
        ((t.get("virtualNodeRef") or {}).get("name") or t.get("virtualNodeName"), t["weight"])
        for t in body["action"]["weightedTargets"]
    ]


# --- v1beta2 ------------------------------------------------------------------------------------


def test_v1beta2_reconcile_writes_nodes_routers_and_services_flagger_names() -> None:
    canary = make_canary(service={"apex": {"labels": {"l": "v"}}})
    objects = ROUTER_V1BETA2.reconcile(canary, COPIES)
    assert_valid(*objects)
    assert sorted(by_name(objects)) == [
        ("VirtualNode", "podinfo-canary"),
        ("VirtualNode", "podinfo-primary"),
        ("VirtualRouter", "podinfo"),
        ("VirtualRouter", "podinfo-canary"),
        ("VirtualService", "podinfo"),
        ("VirtualService", "podinfo-canary"),
    ]
    for obj in objects:
        assert obj["metadata"]["labels"] == {"l": "v"}
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "Canary"
        assert "meshRef" not in obj["spec"]  # the App Mesh webhook's field
    found = by_name(objects)
    primary = found["VirtualNode", "podinfo-primary"]["spec"]
    assert primary["serviceDiscovery"] == {
        "dns": {"hostname": "podinfo-primary.default.svc.cluster.local."}
    }
    assert primary["podSelector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["listeners"] == [{"portMapping": {"port": 9898, "protocol": "http"}}]
    canary_node = found["VirtualNode", "podinfo-canary"]["spec"]
    assert canary_node["podSelector"] == {"matchLabels": {"app": "podinfo"}}
    (route,) = found["VirtualRouter", "podinfo"]["spec"]["routes"]
    assert route["name"] == "podinfo"
    assert route["httpRoute"]["match"] == {"prefix": "/"}
    assert weights(route) == [("podinfo-canary", 0), ("podinfo-primary", 100)]
    (canary_route,) = found["VirtualRouter", "podinfo-canary"]["spec"]["routes"]
    assert weights(canary_route) == [("podinfo-canary", 100), ("podinfo-primary", 0)]
    assert found["VirtualService", "podinfo"]["spec"] == {
        "provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}}
    }


def test_v1beta2_node_selects_no_pods_until_the_service_copy_exists() -> None:
    objects = by_name(ROUTER_V1BETA2.reconcile(make_canary(), []))
    assert "podSelector" not in objects["VirtualNode", "podinfo-primary"]["spec"]
    cluster = apply([], list(objects.values()))
    again = by_name(ROUTER_V1BETA2.reconcile(make_canary(), [*cluster, *COPIES]))
    assert sorted(again) == [("VirtualNode", "podinfo-canary"), ("VirtualNode", "podinfo-primary")]


def test_v1beta2_listener_port_protocol_timeout_retries_and_backends() -> None:
    canary = make_canary(
        service={
            "targetPort": 8080,
            "portName": "grpc-api",
            "timeout": "15s",
            "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "server-error"},
            "backends": ["backend1", "arn:aws:appmesh:eu-west-1:1:mesh/m/virtualService/b2"],
            "match": [{"uri": {"prefix": "/api"}}],
        }
    )
    found = by_name(ROUTER_V1BETA2.reconcile(canary, COPIES))
    assert_valid(*found.values())
    node = found["VirtualNode", "podinfo-primary"]["spec"]
    assert node["listeners"] == [
        {
            "portMapping": {"port": 8080, "protocol": "grpc"},
            "timeout": {"grpc": {"perRequest": {"unit": "ms", "value": 15000}}},
        }
    ]
    assert node["backends"] == [
        {"virtualService": {"virtualServiceRef": {"name": "backend1"}}},
        {
            "virtualService": {
                "virtualServiceARN": "arn:aws:appmesh:eu-west-1:1:mesh/m/virtualService/b2"
            }
        },
    ]
    (route,) = found["VirtualRouter", "podinfo"]["spec"]["routes"]
    assert route["httpRoute"]["match"] == {"prefix": "/api"}
    assert route["httpRoute"]["timeout"] == {"perRequest": {"unit": "ms", "value": 15000}}
    assert route["httpRoute"]["retryPolicy"] == {
        "perRetryTimeout": {"unit": "ms", "value": 1000},
        "maxRetries": 3,
        "httpRetryEvents": ["server-error"],
    }


def test_v1beta2_retry_defaults_are_flaggers() -> None:
    found = by_name(ROUTER_V1BETA2.reconcile(make_canary(service={"retries": {}}), COPIES))
    (route,) = found["VirtualRouter", "podinfo"]["spec"]["routes"]
    assert route["httpRoute"]["retryPolicy"] == {
        "perRetryTimeout": {"unit": "ms", "value": 250},
        "maxRetries": 1,
        "httpRetryEvents": ["gateway-error"],
    }


@pytest.mark.parametrize(
    ("app_protocol", "listener", "route"),
    [("http2", "http2", "http2Route"), ("kubernetes.io/h2c", "http2", "http2Route"),
     ("grpc", "grpc", "httpRoute"), ("http", "http", "httpRoute")],
)  # fmt: skip
def test_v1beta2_app_protocol_chooses_the_listener_protocol(
    app_protocol: str, listener: str, route: str
) -> None:
    service = {"appProtocol": app_protocol, "timeout": "3s", "retries": {"attempts": 2}}
    canary = make_canary(
        service=service,
        analysis={"iterations": 2, "match": [{"headers": {"a": {"suffix": "b"}}}]},
    )
    found = by_name(ROUTER_V1BETA2.reconcile(canary, COPIES))
    assert_valid(*found.values())
    router = found["VirtualRouter", "podinfo"]["spec"]
    assert router["listeners"] == [{"portMapping": {"port": 9898, "protocol": listener}}]
    assert all(route in r for r in router["routes"])
    node = found["VirtualNode", "podinfo-primary"]["spec"]
    assert list(node["listeners"][0]["timeout"]) == [listener]


@pytest.mark.parametrize("provider", ["appmesh:v1beta2", "appmesh:v1beta2:anything"])
def test_the_v1beta2_prefix_selects_the_v1beta2_router(provider: str) -> None:
    assert router_for(provider).router is ROUTER_V1BETA2
    assert router_for("appmesh").router is ROUTER_V1BETA1


def test_v1beta2_access_log_and_gateway_annotations() -> None:
    canary = make_canary(service={"hosts": ["app.example.com"], "timeout": "5s"})
    canary.metadata.annotations = {"appmesh.flagger.app/accesslog": "enabled"}
    found = by_name(ROUTER_V1BETA2.reconcile(canary, COPIES))
    assert found["VirtualNode", "podinfo-canary"]["spec"]["logging"] == {
        "accessLog": {"file": {"path": "/dev/stdout"}}
    }
    annotations = found["VirtualService", "podinfo"]["metadata"]["annotations"]
    assert annotations["gateway.appmesh.k8s.aws/expose"] == "true"
    assert annotations["gateway.appmesh.k8s.aws/domain"] == "app.example.com,"
    assert annotations["gateway.appmesh.k8s.aws/timeout"] == "5s"
    canary_service = found["VirtualService", "podinfo-canary"]["metadata"]["annotations"]
    assert "gateway.appmesh.k8s.aws/expose" not in canary_service


def test_v1beta2_set_and_get_routes() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER_V1BETA2.reconcile(canary, COPIES))
    update = ROUTER_V1BETA2.set_routes(canary, cluster, 60, 40)
    assert_valid(*update.objects)
    assert [(o["kind"], o["metadata"]["name"]) for o in update.objects] == [
        ("VirtualRouter", "podinfo")
    ]
    cluster = apply(cluster, update.objects)
    assert ROUTER_V1BETA2.get_routes(canary, cluster) == Routes(60, 40)


def test_v1beta2_writes_keep_the_fields_the_app_mesh_controller_sets() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER_V1BETA2.reconcile(canary, COPIES))
    mesh_ref = {"name": "global", "uid": "mesh-uid"}
    for obj in cluster:
        obj["spec"] = {**obj["spec"], "meshRef": mesh_ref, "awsName": obj["metadata"]["name"]}
    (update,) = ROUTER_V1BETA2.set_routes(canary, cluster, 80, 20).objects
    assert update["spec"]["meshRef"] == mesh_ref
    changed = make_canary(service={"timeout": "9s"})
    writes = ROUTER_V1BETA2.reconcile(changed, [*cluster, *COPIES])
    assert writes
    assert all(w["spec"]["meshRef"] == mesh_ref for w in writes)


@pytest.mark.parametrize(("primary", "canary_weight"), [(100, 0), (70, 30), (0, 100)])
def test_v1beta2_reconcile_keeps_the_live_split(primary: int, canary_weight: int) -> None:
    canary = make_canary()
    cluster = apply([], ROUTER_V1BETA2.reconcile(canary, COPIES))
    cluster = apply(
        cluster, ROUTER_V1BETA2.set_routes(canary, cluster, primary, canary_weight).objects
    )
    changed = make_canary(service={"retries": {"attempts": 2}})
    cluster = apply(cluster, ROUTER_V1BETA2.reconcile(changed, [*cluster, *COPIES]))
    assert ROUTER_V1BETA2.get_routes(changed, cluster) == Routes(primary, canary_weight)


def test_v1beta2_merges_onto_a_users_existing_router() -> None:
    canary = make_canary()
    users = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"team": "a"},
            "resourceVersion": "7",
        },
        "spec": {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}], "routes": []},
    }
    written = by_name(ROUTER_V1BETA2.reconcile(canary, [users, *COPIES]))[
        "VirtualRouter", "podinfo"
    ]
    assert written["metadata"]["labels"] == {"team": "a"}
    assert written["metadata"]["resourceVersion"] == "7"
    assert weights(written["spec"]["routes"][0]) == [
        ("podinfo-canary", 0),
        ("podinfo-primary", 100),
    ]


def test_v1beta2_ab_routes_match_headers_first_then_the_primary() -> None:
    canary = make_canary(
        analysis={
            "iterations": 10,
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            ],
        }
    )
    cluster = apply([], ROUTER_V1BETA2.reconcile(canary, COPIES))
    cluster = apply(cluster, ROUTER_V1BETA2.set_routes(canary, cluster, 0, 100).objects)
    router = by_name(cluster)["VirtualRouter", "podinfo"]
    assert_valid(router)
    routes = router["spec"]["routes"]
    assert [(r["name"], r["priority"]) for r in routes] == [
        ("podinfo-a", 10),
        ("podinfo-a1", 11),
        ("podinfo-b", 20),
    ]
    assert routes[0]["httpRoute"]["match"]["headers"] == [
        {"name": "x-canary", "match": {"exact": "insider"}}
    ]
    assert routes[1]["httpRoute"]["match"]["headers"] == [
        {"name": "cookie", "match": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}
    ]
    assert (
        weights(routes[0])
        == weights(routes[1])
        == [("podinfo-canary", 100), ("podinfo-primary", 0)]
    )
    assert weights(routes[2]) == [("podinfo-primary", 100)]
    assert ROUTER_V1BETA2.get_routes(canary, cluster) == Routes(0, 100)


def test_get_routes_needs_two_weighted_targets_in_the_first_route() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER_V1BETA2.reconcile(canary, COPIES))
    router = by_name(cluster)["VirtualRouter", "podinfo"]
    router["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"].pop()
    with pytest.raises(RouterError, match=r"^VirtualRouter routes podinfo not found$"):
        ROUTER_V1BETA2.get_routes(canary, cluster)
    v1beta1 = make_canary(service=MESH)
    cluster = apply([], ROUTER_V1BETA1.reconcile(v1beta1, []))
    cluster = apply(cluster, ROUTER_V1BETA1.set_routes(v1beta1, cluster, 0, 0).objects)
    with pytest.raises(
        RouterError,
        match=r"^VirtualService podinfo\.default does not contain routes for podinfo-primary and "
        r"podinfo-canary$",
    ):
        ROUTER_V1BETA1.get_routes(v1beta1, cluster)


def test_get_routes_without_the_router_is_a_query_error() -> None:
    with pytest.raises(RouterError, match=r"VirtualRouter podinfo\.default get query error"):
        ROUTER_V1BETA2.get_routes(make_canary(), [])


# --- v1beta1 ------------------------------------------------------------------------------------


def test_v1beta1_reconcile_writes_flaggers_three_nodes_and_two_services() -> None:
    canary = make_canary(service={**MESH, "backends": ["backend.test"]})
    objects = ROUTER_V1BETA1.reconcile(canary, [])
    assert_valid(*objects)
    found = by_name(objects)
    assert sorted(found) == [
        ("VirtualNode", "podinfo"),
        ("VirtualNode", "podinfo-canary"),
        ("VirtualNode", "podinfo-primary"),
        ("VirtualService", "podinfo-canary.default"),
        ("VirtualService", "podinfo.default"),
    ]
    apex_node = found["VirtualNode", "podinfo"]["spec"]
    assert apex_node == {
        "meshName": "global",
        "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostName": "podinfo-primary.default"}},
        "backends": [{"virtualService": {"virtualServiceName": "backend.test"}}],
    }
    assert found["VirtualNode", "podinfo-canary"]["spec"]["serviceDiscovery"] == {
        "dns": {"hostName": "podinfo-canary.default"}
    }
    service = found["VirtualService", "podinfo.default"]["spec"]
    assert service["meshName"] == "global"
    assert service["virtualRouter"] == {
        "name": "podinfo",
        "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
    }
    assert weights(service["routes"][0]) == [("podinfo-canary", 0), ("podinfo-primary", 100)]
    canary_service = found["VirtualService", "podinfo-canary.default"]["spec"]
    assert canary_service["virtualRouter"]["name"] == "podinfo-canary"
    assert weights(canary_service["routes"][0]) == [("podinfo-canary", 100), ("podinfo-primary", 0)]


def test_v1beta1_set_get_routes_and_ab_routes() -> None:
    canary = make_canary(
        service={**MESH, "retries": {"attempts": 2}},
        analysis={"iterations": 5, "match": [{"headers": {"user-agent": {"prefix": "Mozilla"}}}]},
    )
    cluster = apply([], ROUTER_V1BETA1.reconcile(canary, []))
    update = ROUTER_V1BETA1.set_routes(canary, cluster, 0, 100)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    assert ROUTER_V1BETA1.get_routes(canary, cluster) == Routes(0, 100)
    routes = by_name(cluster)["VirtualService", "podinfo.default"]["spec"]["routes"]
    assert [(r["name"], r["priority"]) for r in routes] == [("podinfo-a", 10), ("podinfo-b", 20)]
    assert routes[0]["http"]["match"]["headers"] == [
        {"name": "user-agent", "match": {"prefix": "Mozilla"}}
    ]
    assert routes[0]["http"]["retryPolicy"] == {
        "perRetryTimeoutMillis": 250,
        "maxRetries": 2,
        "httpRetryEvents": ["gateway-error"],
    }


def test_v1beta1_mesh_name_comes_from_the_canary_or_the_controller_flag() -> None:
    flagged = router_for("appmesh", mesh_name="from-flag").router
    assert isinstance(flagged, AppMeshV1beta1Router)
    node = flagged.reconcile(make_canary(), [])[0]
    assert node["spec"]["meshName"] == "from-flag"
    own = flagged.reconcile(make_canary(service=MESH), [])[0]
    assert own["spec"]["meshName"] == "global"
    with pytest.raises(RouterError, match="mesh name cannot be empty"):
        ROUTER_V1BETA1.reconcile(make_canary(), [])


# --- one verdict --------------------------------------------------------------------------------


def manifest(provider: str, service: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898, **service},
            "analysis": {"interval": "1m", "threshold": 5, **(analysis or {"stepWeight": 10})},
        },
    }


AB = {"iterations": 10}
REFUSED = [
    (
        "appmesh:v1beta2",
        {"retries": {"attempts": 2, "retryOn": "5xx,connect-failure"}},
        {},
        "spec.service.retries.retryOn: App Mesh retries on server-error, gateway-error, "
        "client-error, stream-error only; 5xx, connect-failure would be refused by the App Mesh CRD",
    ),
    (
        "appmesh:v1beta2",
        {},
        {**AB, "match": [{"headers": {"x": {"exact": "y"}}, "queryParams": {"q": {"exact": "1"}}}]},
        "spec.analysis.match[0]: the appmesh:v1beta2 router matches headers only; query_params "
        "would be ignored",
    ),
    (
        "appmesh",
        {},
        {},
        "spec.service.meshName: required by the appmesh (v1beta1) provider (or the controller's "
        "--mesh-name)",
    ),
    (
        "appmesh",
        {**MESH, "backends": ["arn:aws:appmesh:eu-west-1:1:mesh/m/virtualService/b"]},
        {},
        "spec.service.backends: arn:aws:appmesh:eu-west-1:1:mesh/m/virtualService/b: App Mesh "
        "v1beta1 backends are virtual service names; an ARN needs appmesh:v1beta2",
    ),
    (
        "appmesh",
        {**MESH},
        {**AB, "match": [{"headers": {"x" * 51: {"exact": "y"}}}]},
        f"spec.analysis.match[0].headers.{'x' * 51}: App Mesh header names are at most 50 "
        "characters",
    ),
]


@pytest.mark.parametrize(("provider", "service", "analysis", "message"), REFUSED)
def test_check_and_the_controller_refuse_what_app_mesh_cannot_express_with_one_message(
    provider: str, service: dict[str, Any], analysis: dict[str, Any], message: str
) -> None:
    doc = manifest(provider, service, **analysis)
    verdict = judge(doc, Options())
    assert verdict.reason == "UnsupportedRouting"
    assert [str(p) for p in verdict.problems] == [message]
    result = check_stream(yaml.safe_dump(doc), "canary.yaml", CheckOptions())
    assert [f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"] == [message]


def test_mesh_name_flag_makes_a_v1beta1_canary_without_mesh_name_run_for_both() -> None:
    doc = manifest("appmesh", {})
    assert judge(doc, Options(mesh_name="global")).refusal is None
    result = check_stream(yaml.safe_dump(doc), "c.yaml", CheckOptions(mesh_name="global"))
    assert not [f for f in result.findings if f.severity == "error"]


@pytest.mark.parametrize("provider", ["appmesh", "appmesh:v1beta2"])
def test_flaggers_app_mesh_canaries_run(provider: str) -> None:
    doc = manifest(
        provider,
        {
            **MESH,
            "timeout": "15s",
            "retries": {
                "attempts": 3,
                "perTryTimeout": "5s",
                "retryOn": "gateway-error,client-error",
            },
            "hosts": ["app.example.com"],
            "backends": ["backend1"],
        },
        **AB,
        match=[
            {"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
        ],
    )
    assert judge(doc, Options()).refusal is None


def test_mesh_name_on_v1beta2_is_a_warning() -> None:
    canary = Canary.model_validate(manifest("appmesh:v1beta2", MESH))
    problems = compatibility(canary, Options())
    assert [(p.path, p.severity) for p in problems] == [("spec.service.meshName", "warning")]


def test_coalmine_check_takes_the_controllers_mesh_name_flag(tmp_path: Path) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(manifest("appmesh", {})))
    refused = subprocess.run(
        [sys.executable, "-m", "coalmine", "check", f"-f{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "spec.service.meshName: required by the appmesh (v1beta1) provider" in refused.stdout
    accepted = subprocess.run(
        [sys.executable, "-m", "coalmine", "check", f"-f{path}", "--mesh-name", "global"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stdout
