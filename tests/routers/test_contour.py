"""Contour HTTPProxy router (Flagger's contour.go and contour_test.go)."""

from __future__ import annotations

import pytest

from coalmine.api import naming
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.contour import ROUTER, ContourRouter
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid


def test_initialization_writes_one_route_with_both_services() -> None:
    router = ContourRouter(ingress_class="contour")
    canary = make_canary(
        service={
            "match": [{"uri": {"prefix": "/podinfo"}}],
            "timeout": "15s",
            "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx, gateway-error"},
            "apex": {"labels": {"team": "a"}},
        }
    )
    (proxy,) = router.reconcile(canary, [])
    assert_valid(proxy)
    assert proxy["apiVersion"] == "projectcontour.io/v1"
    assert proxy["spec"]["ingressClassName"] == "contour"
    assert proxy["metadata"]["labels"] == {"team": "a"}
    assert proxy["metadata"]["annotations"] == naming.TOOLKIT_DISABLE_ANNOTATIONS
    (route,) = proxy["spec"]["routes"]
    assert route["conditions"] == [{"prefix": "/podinfo"}]
    assert route["timeoutPolicy"] == {"response": "15s", "idle": "5m"}
    assert route["retryPolicy"] == {
        "count": 3,
        "perTryTimeout": "5s",
        "retryOn": ["5xx", "gateway-error"],
    }
    primary, canary_service = route["services"]
    assert (primary["name"], primary["port"], primary["weight"]) == ("podinfo-primary", 9898, 100)
    assert primary["requestHeadersPolicy"] == {
        "set": [
            {"name": "l5d-dst-override", "value": "podinfo-primary.default.svc.cluster.local:9898"}
        ]
    }
    assert (canary_service["name"], canary_service["weight"]) == ("podinfo-canary", 0)


def test_routes_50_50_then_100_0_then_0_100() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    for primary, weight in [(50, 50), (100, 0), (0, 100)]:
        update = ROUTER.set_routes(canary, cluster, primary, weight)
        assert_valid(*update.objects)
        cluster = apply(cluster, update.objects)
        assert ROUTER.get_routes(canary, cluster) == Routes(primary, weight)


def test_set_routes_refuses_zero_weights() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    with pytest.raises(RouterError, match="no valid weights"):
        ROUTER.set_routes(canary, cluster, 0, 0)


def test_ab_testing_adds_header_conditions_and_a_primary_route() -> None:
    canary = make_canary(
        analysis={
            "stepWeight": None,
            "iterations": 10,
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"user-agent": {"prefix": "Mozilla"}}},
            ],
        }
    )
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 0, 100)
    assert_valid(*update.objects)
    first, second = update.objects[0]["spec"]["routes"]
    assert first["conditions"] == [
        {"prefix": "/"},
        {"header": {"name": "x-canary", "exact": "insider"}},
        {"header": {"name": "user-agent", "contains": "Mozilla"}},
    ]
    assert [s["weight"] for s in first["services"]] == [0, 100]
    assert second["conditions"] == [{"prefix": "/"}]
    assert [s["weight"] for s in second["services"]] == [100, 0]
    cluster = apply(cluster, update.objects)
    assert ROUTER.get_routes(canary, cluster) == Routes(0, 100)


def test_reconcile_keeps_live_weights_while_updating_port_and_timeout() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 70, 30).objects)
    cluster[0]["metadata"]["annotations"]["foreign"] = "kept"
    changed = make_canary(service={"port": 8080, "timeout": "1m"})
    (written,) = ROUTER.reconcile(changed, cluster)
    assert_valid(written)
    route = written["spec"]["routes"][0]
    assert [s["port"] for s in route["services"]] == [8080, 8080]
    assert [s["weight"] for s in route["services"]] == [70, 30]
    assert route["timeoutPolicy"]["response"] == "1m"
    assert written["metadata"]["annotations"]["foreign"] == "kept"


def test_get_routes_fails_when_services_are_missing() -> None:
    canary = make_canary()
    (proxy,) = ROUTER.reconcile(canary, [])
    proxy["spec"]["routes"][0]["services"] = proxy["spec"]["routes"][0]["services"][:1]
    with pytest.raises(RouterError, match="services not found"):
        ROUTER.get_routes(canary, [proxy])


def test_compatibility_reports_tcp_mirroring_and_external_name() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.example.com"}}
    (caveat,) = ROUTER.compatibility(make_canary(), "Service", external)
    assert caveat.severity == "warning"
    assert "enableExternalNameService" in str(caveat)
    tcp = make_canary(service={"appProtocol": "tcp"}, analysis={"mirror": True})
    found = {p.path: p.severity for p in ROUTER.compatibility(tcp, "Deployment", None)}
    # TCP cannot work; a mirror Contour cannot make is ignored, as Flagger ignores it.
    assert found == {"spec.service.appProtocol": "error", "spec.analysis.mirror": "warning"}


def test_ab_matches_contour_cannot_express_are_reported() -> None:
    canary = make_canary(
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [{"headers": {"x-user": {"regex": "^bob$"}}, "uri": {"prefix": "/x"}}],
        }
    )
    problems = ROUTER.compatibility(canary, "Deployment", None)
    assert [p.severity for p in problems] == ["error", "error"]
    assert "headers.x-user" in str(problems[0])
