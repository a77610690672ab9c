"""Istio router (Flagger's istio.go, its session affinity, and istio_test.go)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.routers.common import RouterError, Write
from coalmine.routers.istio import ROUTER
from routers.canaries import apply, make_canary, with_status
from routers.schemas import assert_valid


def virtual_service(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "VirtualService")


def token() -> str:
    return "abcdefghij"


def test_initialization_writes_destination_rules_and_a_virtual_service_at_100_0() -> None:
    canary = make_canary(
        service={
            "hosts": ["app.example.com"],
            "trafficPolicy": {"tls": {"mode": "DISABLE"}},
            "apex": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        }
    )
    objects = ROUTER.reconcile(canary, [])
    assert_valid(*objects)
    rules = {o["metadata"]["name"]: o for o in objects if o["kind"] == "DestinationRule"}
    assert rules["podinfo-canary"]["spec"] == {
        "host": "podinfo-canary",
        "trafficPolicy": {"tls": {"mode": "DISABLE"}},
    }
    assert rules["podinfo-primary"]["spec"]["host"] == "podinfo-primary"
    vs = virtual_service(objects)
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["spec"]["hosts"] == ["app.example.com", "podinfo"]
    assert vs["spec"]["gateways"] == ["mesh"]
    assert vs["spec"]["http"] == [
        {
            "route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 100},
                {"destination": {"host": "podinfo-canary"}, "weight": 0},
            ]
        }
    ]
    assert vs["metadata"]["labels"] == {"team": "a"}
    assert vs["metadata"]["annotations"] == {"note": "x", **naming.TOOLKIT_DISABLE_ANNOTATIONS}


def test_service_fields_are_carried_on_every_route() -> None:
    canary = make_canary(
        service={
            "gateways": ["public-gateway.istio-system.svc.cluster.local"],
            "match": [{"uri": {"prefix": "/api"}}],
            "rewrite": {"uri": "/", "authority": "backend"},
            "timeout": "30s",
            "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"},
            "headers": {
                "request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}},
                "response": {"remove": ["x-powered-by"]},
            },
            "corsPolicy": {
                "allowOrigin": ["example.com"],
                "allowMethods": ["GET", "POST"],
                "allowCredentials": False,
                "allowHeaders": ["x-some-header"],
                "maxAge": "24h",
            },
        }
    )
    vs = virtual_service(ROUTER.reconcile(canary, []))
    assert_valid(vs)
    (route,) = vs["spec"]["http"]
    assert route["match"] == [{"uri": {"prefix": "/api"}}]
    assert route["rewrite"] == {"uri": "/", "authority": "backend"}
    assert route["timeout"] == "30s"
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"}
    assert route["headers"]["request"]["add"] == {"x-envoy-upstream-rq-timeout-ms": "15000"}
    assert route["headers"]["response"]["remove"] == ["x-powered-by"]
    assert route["corsPolicy"]["allowMethods"] == ["GET", "POST"]
    assert route["corsPolicy"]["maxAge"] == "24h"


def test_weight_steps_are_written_and_read_back() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    for primary, weight in [(80, 20), (60, 40), (40, 60)]:
        update = ROUTER.set_routes(canary, cluster, primary, weight)
        assert_valid(*update.objects)
        cluster = apply(cluster, update.objects)
        route = virtual_service(cluster)["spec"]["http"][0]["route"]
        assert [d["weight"] for d in route] == [primary, weight]
        assert ROUTER.get_routes(canary, cluster) == Routes(primary, weight)


@pytest.mark.parametrize("label", ["promotion", "rollback"])
def test_promotion_and_rollback_route_everything_to_the_primary(label: str) -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 40, 60).objects)
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 100, 0).objects)
    assert ROUTER.get_routes(canary, cluster) == Routes(100, 0)
    assert_valid(*cluster)


def test_ab_testing_merges_header_and_cookie_matches_with_service_match() -> None:
    canary = make_canary(
        service={"match": [{"uri": {"prefix": "/api"}}]},
        analysis={
            "stepWeight": None,
            "iterations": 10,
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            ],
        },
    )
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 0, 100)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    first, second = virtual_service(cluster)["spec"]["http"]
    assert first["match"] == [
        {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
        {
            "uri": {"prefix": "/api"},
            "headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}},
        },
    ]
    assert [d["weight"] for d in first["route"]] == [0, 100]
    assert second["match"] == [{"uri": {"prefix": "/api"}}]
    assert second["route"] == [{"destination": {"host": "podinfo-primary"}, "weight": 0}]
    assert ROUTER.get_routes(canary, cluster) == Routes(0, 100)


def test_mirroring_adds_mirror_and_mirror_percentage() -> None:
    canary = make_canary(analysis={"mirror": True, "mirrorWeight": 50})
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 100, 0, mirrored=True)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    route = virtual_service(cluster)["spec"]["http"][0]
    assert route["mirror"] == {"host": "podinfo-canary"}
    assert route["mirrorPercentage"] == {"value": 50.0}
    assert ROUTER.get_routes(canary, cluster) == Routes(100, 0, mirrored=True)
    # reconcile keeps the live mirror (the run is mirroring)
    assert ROUTER.reconcile(canary, cluster) == []
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 80, 20).objects)
    assert "mirror" not in virtual_service(cluster)["spec"]["http"][0]
    assert ROUTER.get_routes(canary, cluster) == Routes(80, 20, mirrored=False)


def test_mirroring_without_mirror_weight_mirrors_everything() -> None:
    canary = make_canary(analysis={"mirror": True})
    cluster = apply([], ROUTER.reconcile(canary, []))
    route = virtual_service(ROUTER.set_routes(canary, cluster, 100, 0, True).objects)
    assert "mirrorPercentage" not in route["spec"]["http"][0]


AFFINITY = {
    "cookieName": "flagger-cookie",
    "maxAge": 300,
    "domain": "example.com",
    "httpOnly": True,
    "partitioned": True,
    "path": "/",
    "sameSite": "Strict",
    "secure": True,
}


def test_session_affinity_sets_cookie_on_canary_and_adds_sticky_route() -> None:
    canary = make_canary(analysis={"sessionAffinity": AFFINITY})
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 90, 10, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies == SessionAffinityCookies("flagger-cookie=abcdefghij", None, None)
    cluster = apply(cluster, update.objects)
    sticky, weighted = virtual_service(cluster)["spec"]["http"]
    assert sticky["name"] == "sticky-route"
    assert sticky["match"] == [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}]
    assert [d["weight"] for d in sticky["route"]] == [0, 100]
    primary, canary_destination = weighted["route"]
    assert "headers" not in primary
    assert canary_destination["headers"] == {
        "response": {
            "add": {
                "Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=300; Domain=example.com; "
                "HttpOnly; Partitioned; Path=/; SameSite=Strict; Secure"
            }
        }
    }
    canary = with_status(canary, sessionAffinityCookie="flagger-cookie=abcdefghij")
    assert ROUTER.get_routes(canary, cluster) == Routes(90, 10)
    assert ROUTER.reconcile(canary, cluster) == []

    # the run ends: the cookie becomes the previous one and is expired on the client
    update = ROUTER.set_routes(canary, cluster, 100, 0, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies.session_affinity_cookie is None
    assert update.cookies.previous_session_affinity_cookie == "flagger-cookie=abcdefghij"
    cleanup, weighted = virtual_service(update.objects)["spec"]["http"]
    assert cleanup["match"] == [
        {"headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}
    ]
    assert cleanup["headers"]["response"]["add"] == {
        "Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=-1"
    }
    assert [d["weight"] for d in cleanup["route"]] == [100, 0]
    assert [d["weight"] for d in weighted["route"]] == [100, 0]


def test_session_affinity_with_primary_cookie_adds_primary_sticky_route() -> None:
    canary = make_canary(
        analysis={"sessionAffinity": {"cookieName": "canary-c", "primaryCookieName": "primary-c"}}
    )
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 80, 20, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies.primary_session_affinity_cookie == "primary-c=abcdefghij"
    sticky, primary_sticky, weighted = virtual_service(update.objects)["spec"]["http"]
    assert sticky["name"] == "sticky-route"
    assert primary_sticky["name"] == "sticky-route-primary"
    assert primary_sticky["match"] == [
        {"headers": {"Cookie": {"regex": ".*primary-c.*abcdefghij.*"}}}
    ]
    assert [d["weight"] for d in primary_sticky["route"]] == [100, 0]
    primary, canary_destination = weighted["route"]
    assert primary["headers"]["response"]["add"]["Set-Cookie"] == "primary-c=abcdefghij; Max-Age=60"
    assert canary_destination["headers"]["response"]["add"]["Set-Cookie"] == (
        "canary-c=abcdefghij; Max-Age=86400"
    )


def test_session_affinity_cookie_is_kept_for_the_whole_run() -> None:
    canary = make_canary(analysis={"sessionAffinity": {"cookieName": "c"}})
    canary = with_status(canary, sessionAffinityCookie="c=existing")
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 60, 40, token=token)
    assert update.cookies is not None
    assert update.cookies.session_affinity_cookie == "c=existing"


def test_reconcile_keeps_live_weights_and_foreign_metadata_while_updating_hosts() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 60, 40).objects)
    vs = virtual_service(cluster)
    vs["metadata"]["labels"] = {"owner": "someone-else"}
    vs["metadata"]["annotations"] = {**vs["metadata"]["annotations"], "foreign": "keep"}
    changed = make_canary(service={"hosts": ["app.example.com"]})
    (written,) = ROUTER.reconcile(changed, cluster)
    assert_valid(written)
    assert written["spec"]["hosts"] == ["app.example.com", "podinfo"]
    assert [d["weight"] for d in written["spec"]["http"][0]["route"]] == [60, 40]
    assert written["metadata"]["labels"] == {"owner": "someone-else"}
    assert written["metadata"]["annotations"]["foreign"] == "keep"
    assert naming.ORIGINAL_CONFIGURATION_ANNOTATION not in written["metadata"]["annotations"]


def test_reconcile_reverts_gateway_drift() -> None:
    canary = make_canary(service={"gateways": ["public"]})
    cluster = apply([], ROUTER.reconcile(canary, []))
    virtual_service(cluster)["spec"]["gateways"] = ["something-else"]
    (written,) = ROUTER.reconcile(canary, cluster)
    assert written["spec"]["gateways"] == ["public"]


def test_reconcile_updates_destination_rules_when_traffic_policy_changes() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    changed = make_canary(service={"trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}})
    written = ROUTER.reconcile(changed, cluster)
    assert_valid(*written)
    assert sorted(o["metadata"]["name"] for o in written) == ["podinfo-canary", "podinfo-primary"]


def test_destination_port_is_set_with_port_discovery_and_a_gateway() -> None:
    canary = make_canary(service={"portDiscovery": True, "gateways": ["public-gateway"]})
    vs = virtual_service(ROUTER.reconcile(canary, []))
    assert_valid(vs)
    for destination in vs["spec"]["http"][0]["route"]:
        assert destination["destination"]["port"] == {"number": 9898}


def test_delegation_writes_a_delegate_virtual_service() -> None:
    canary = make_canary(service={"delegation": True, "portDiscovery": True})
    vs = virtual_service(ROUTER.reconcile(canary, []))
    assert_valid(vs)
    assert vs["spec"]["hosts"] == []
    assert vs["spec"]["gateways"] == []
    assert vs["spec"]["http"][0]["route"][0]["destination"]["port"] == {"number": 9898}


def test_delegation_with_hosts_is_an_error() -> None:
    canary = make_canary(service={"delegation": True, "hosts": ["app.example.com"]})
    with pytest.raises(RouterError, match="cannot have hosts and gateways when delegation"):
        ROUTER.reconcile(canary, [])
    problems = ROUTER.compatibility(canary, "Deployment", None)
    assert any(p.severity == "error" and "delegation" in str(p) for p in problems)


def test_tcp_service_gets_a_weighted_tcp_route() -> None:
    canary = make_canary(service={"appProtocol": "TCP", "match": [{"port": 9898}]})
    cluster = apply([], ROUTER.reconcile(canary, []))
    assert_valid(*cluster)
    vs = virtual_service(cluster)
    assert "http" not in vs["spec"]
    assert vs["spec"]["tcp"][0]["match"] == [{"port": 9898}]
    update = ROUTER.set_routes(canary, cluster, 70, 30)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    assert [d["weight"] for d in virtual_service(cluster)["spec"]["tcp"][0]["route"]] == [70, 30]
    assert ROUTER.get_routes(canary, cluster) == Routes(70, 30)


def test_get_routes_fails_when_the_virtual_service_has_no_split() -> None:
    canary = make_canary()
    foreign = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "x"}}]}]},
    }
    with pytest.raises(RouterError, match="does not contain routes for podinfo-primary"):
        ROUTER.get_routes(canary, [foreign])
    with pytest.raises(RouterError, match="not found"):
        ROUTER.get_routes(canary, [])


def user_virtual_service(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "resourceVersion": "7",
            "annotations": annotations or {},
        },
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]},
    }


def test_adopting_a_user_virtual_service_stores_its_spec_and_finalize_restores_it() -> None:
    canary = make_canary(analysis={"stepWeight": 10})
    cluster = [user_virtual_service()]
    written = ROUTER.reconcile(canary, cluster)
    assert_valid(*written)
    vs = virtual_service(written)
    stored = json.loads(vs["metadata"]["annotations"][naming.ORIGINAL_CONFIGURATION_ANNOTATION])
    assert stored == user_virtual_service()["spec"]
    cluster = apply(cluster, written)
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 50, 50).objects)
    # a later drift does not overwrite the original
    drifted = make_canary(service={"hosts": ["other.example.com"]})
    cluster = apply(cluster, ROUTER.reconcile(drifted, cluster))
    annotations = virtual_service(cluster)["metadata"]["annotations"]
    assert json.loads(annotations[naming.ORIGINAL_CONFIGURATION_ANNOTATION]) == stored

    (action,) = ROUTER.finalize(canary, cluster)
    assert isinstance(action, Write)
    assert action.obj["spec"] == user_virtual_service()["spec"]
    assert action.obj["metadata"]["resourceVersion"] == "7"


def test_finalize_restores_the_spec_from_the_kubectl_annotation() -> None:
    applied = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo"},
        "spec": {"hosts": ["kubectl-applied"]},
    }
    cluster = [user_virtual_service({naming.KUBECTL_LAST_APPLIED_ANNOTATION: json.dumps(applied)})]
    canary = make_canary()
    written = ROUTER.reconcile(canary, cluster)
    vs = virtual_service(written)
    assert naming.ORIGINAL_CONFIGURATION_ANNOTATION not in vs["metadata"]["annotations"]
    cluster = apply(cluster, written)
    (action,) = ROUTER.finalize(canary, cluster)
    assert isinstance(action, Write)
    assert action.obj["spec"] == {"hosts": ["kubectl-applied"]}


def test_finalize_without_stored_configuration_leaves_the_virtual_service() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    assert ROUTER.finalize(canary, cluster) == []


def test_finalize_reports_an_unreadable_annotation() -> None:
    cluster = [user_virtual_service({naming.ORIGINAL_CONFIGURATION_ANNOTATION: "{not json"})]
    with pytest.raises(RouterError, match="failed to unMarshal annotation"):
        ROUTER.finalize(make_canary(), cluster)


def test_external_name_backends_with_istio_mutual_tls_cannot_work() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.other-cluster.example"}}
    canary = make_canary(service={"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    problems = ROUTER.compatibility(canary, "Service", external)
    assert [p.severity for p in problems] == ["error"]
    assert "ISTIO_MUTUAL" in str(problems[0])
    caveats = ROUTER.compatibility(make_canary(), "Service", external)
    assert [p.severity for p in caveats] == ["warning"]
    assert ROUTER.compatibility(make_canary(), "Service", {"spec": {"type": "ClusterIP"}}) == []


def test_tcp_with_ab_matches_is_reported() -> None:
    canary = make_canary(
        service={"appProtocol": "tcp"},
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        },
    )
    problems = ROUTER.compatibility(canary, "Deployment", None)
    assert any(p.severity == "error" and "spec.analysis.match" in str(p) for p in problems)


def test_reconcile_keeps_the_live_cookie_when_the_status_lost_it() -> None:
    canary = make_canary(analysis={"sessionAffinity": {"cookieName": "c"}})
    cluster = apply([], ROUTER.reconcile(canary, []))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 70, 30, token=token).objects)
    # the status write was lost: reconcile must not rewrite the sticky route with a new cookie
    assert ROUTER.reconcile(canary, cluster) == []
    assert ROUTER.get_routes(canary, cluster) == Routes(70, 30)


def test_finalize_after_the_virtual_service_is_gone_does_nothing() -> None:
    assert ROUTER.finalize(make_canary(), []) == []
