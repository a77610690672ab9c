"""Gloo Edge router: Upstreams for the copies and the RouteTable `<apex>` (Flagger's gloo.go and
gloo_test.go), every object validated against Gloo's official CRDs."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.gloo import ROUTER
from coalmine.routers.verdict import Options, compatibility
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid

PRIMARY_UPSTREAM = "default-podinfo-primaryupstream-9898"
CANARY_UPSTREAM = "default-podinfo-canaryupstream-9898"
UPSTREAM_REF = {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "podinfo-config"}


def copy_service(name: str, app: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": app or name}, "ports": [{"port": 9898}]},
    }


def upstream(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


COPIES = [copy_service("podinfo-primary"), copy_service("podinfo-canary")]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def destinations(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (d["destination"]["upstream"]["name"], d["weight"])
        for d in route["routeAction"]["multi"]["destinations"]
    ]


def test_initialization_writes_both_upstreams_then_a_route_table_at_100_0() -> None:
    canary = make_canary(service={"apex": {"labels": {"team": "a"}, "annotations": {"n": "v"}}})
    written = ROUTER.reconcile(canary, COPIES)
    assert_valid(*written)
    assert [o["kind"] for o in written] == ["Upstream", "Upstream", "RouteTable"]
    upstreams = by_kind(written, "Upstream")
    assert upstreams[PRIMARY_UPSTREAM]["spec"] == {
        "kube": {
            "serviceName": "podinfo-primary",
            "serviceNamespace": "default",
            "servicePort": 9898,
            "selector": {"app": "podinfo-primary"},
        }
    }
    assert upstreams[CANARY_UPSTREAM]["spec"]["kube"]["serviceName"] == "podinfo-canary"
    table = by_kind(written, "RouteTable")["podinfo"]
    (route,) = table["spec"]["routes"]
    assert route["inheritablePathMatchers"] is True
    assert "matchers" not in route
    assert destinations(route) == [(PRIMARY_UPSTREAM, 100), (CANARY_UPSTREAM, 0)]
    assert table["metadata"]["labels"] == {"team": "a"}
    assert table["metadata"]["annotations"]["n"] == "v"
    assert table["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    for obj in written:
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "Canary"


def test_a_missing_copy_service_is_flaggers_get_query_error() -> None:
    with pytest.raises(RouterError, match=r"service podinfo-canary\.default get query error"):
        ROUTER.reconcile(make_canary(), COPIES[:1])


def test_upstream_ref_settings_are_cloned_but_not_its_destination() -> None:
    config = upstream(
        "podinfo-config",
        {
            "kube": {"serviceName": "elsewhere", "serviceNamespace": "x", "servicePort": 1},
            "loadBalancerConfig": {"leastRequest": {"slowStartConfig": {"minWeightPercent": 20}}},
            "sslConfig": {"sni": "podinfo.example.com"},
            "useHttp2": True,
            "healthChecks": [{"timeout": "1s"}],
        },
    )
    canary = make_canary(extra_spec={"upstreamRef": UPSTREAM_REF})
    upstreams = by_kind(ROUTER.reconcile(canary, [*COPIES, config]), "Upstream")
    spec = upstreams[CANARY_UPSTREAM]["spec"]
    assert_valid(*upstreams.values())
    assert spec["loadBalancerConfig"] == {
        "leastRequest": {"slowStartConfig": {"minWeightPercent": 20}}
    }
    assert spec["sslConfig"] == {"sni": "podinfo.example.com"}
    assert spec["useHttp2"] is True
    assert "healthChecks" not in spec
    assert spec["kube"]["serviceName"] == "podinfo-canary"


def test_a_missing_upstream_ref_is_an_error_naming_it() -> None:
    canary = make_canary(extra_spec={"upstreamRef": {**UPSTREAM_REF, "namespace": "gloo-system"}})
    with pytest.raises(RouterError, match=r"config upstream podinfo-config\.gloo-system"):
        ROUTER.reconcile(canary, COPIES)
    assert any(r.namespace == "gloo-system" for r in ROUTER.references(canary))


def test_without_upstream_ref_the_apex_services_discovered_upstream_is_cloned() -> None:
    discovered = upstream("default-podinfo-9898", {"useHttp2": True, "kube": {"servicePort": 1}})
    upstreams = by_kind(ROUTER.reconcile(make_canary(), [*COPIES, discovered]), "Upstream")
    assert upstreams[PRIMARY_UPSTREAM]["spec"]["useHttp2"] is True
    assert upstreams[PRIMARY_UPSTREAM]["spec"]["kube"]["servicePort"] == 9898


def test_weights_round_trip_and_zero_zero_is_refused() -> None:
    canary = make_canary()
    cluster = apply(COPIES, ROUTER.reconcile(canary, COPIES))
    update = ROUTER.set_routes(canary, cluster, 60, 40)
    (table,) = update.objects
    assert_valid(table)
    assert destinations(table["spec"]["routes"][0]) == [
        (PRIMARY_UPSTREAM, 60),
        (CANARY_UPSTREAM, 40),
    ]
    cluster = apply(cluster, update.objects)
    assert ROUTER.get_routes(canary, cluster) == Routes(60, 40)
    with pytest.raises(RouterError, match="no valid weights"):
        ROUTER.set_routes(canary, cluster, 0, 0)


def test_ab_matches_route_by_header_and_everything_else_goes_to_the_primary() -> None:
    canary = make_canary(
        analysis={
            "stepWeight": None,
            "iterations": 5,
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"user-agent": {"regex": ".*Firefox.*"}}, "method": {"exact": "GET"}},
                {"headers": {"cookie": {"prefix": "beta."}}, "queryParams": {"v": {"exact": "2"}}},
            ],
        }
    )
    cluster = apply(COPIES, ROUTER.reconcile(canary, COPIES))
    (table,) = ROUTER.set_routes(canary, cluster, 0, 100).objects
    assert_valid(table)
    ab_route, rest = table["spec"]["routes"]
    assert ab_route["matchers"] == [
        {"headers": [{"name": "x-canary", "value": "insider"}]},
        {
            "headers": [{"name": "user-agent", "value": ".*Firefox.*", "regex": True}],
            "methods": ["GET"],
        },
        {
            "headers": [{"name": "cookie", "value": r"beta\..*", "regex": True}],
            "queryParameters": [{"name": "v", "value": "2"}],
        },
    ]
    assert destinations(ab_route) == [(PRIMARY_UPSTREAM, 0), (CANARY_UPSTREAM, 100)]
    assert "matchers" not in rest
    assert destinations(rest) == [(PRIMARY_UPSTREAM, 100), (CANARY_UPSTREAM, 0)]
    assert ROUTER.get_routes(canary, apply(cluster, [table])) == Routes(0, 100)


def test_retries_and_timeout_become_route_options() -> None:
    canary = make_canary(
        service={
            "timeout": "15s",
            "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx,connect-failure"},
        }
    )
    table = by_kind(ROUTER.reconcile(canary, COPIES), "RouteTable")["podinfo"]
    assert_valid(table)
    assert table["spec"]["routes"][0]["options"] == {
        "retries": {"numRetries": 3, "perTryTimeout": "5s", "retryOn": "5xx,connect-failure"},
        "timeout": "15s",
    }


def test_reconcile_keeps_the_live_split_and_what_others_put_in_an_upstream() -> None:
    canary = make_canary()
    cluster = apply(COPIES, ROUTER.reconcile(canary, COPIES))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 40, 60).objects)
    for obj in cluster:
        if obj["metadata"]["name"] == PRIMARY_UPSTREAM:
            obj["spec"] = {**obj["spec"], "healthChecks": [{"timeout": "1s"}]}
    assert ROUTER.reconcile(canary, cluster) == []
    # A promotion changed the primary copy's selector: the upstream follows it, and only it.
    moved = [copy_service("podinfo-primary", "podinfo-green"), *cluster[1:]]
    (written,) = ROUTER.reconcile(canary, moved)
    assert written["metadata"]["name"] == PRIMARY_UPSTREAM
    assert written["spec"]["kube"]["selector"] == {"app": "podinfo-green"}
    assert written["spec"]["healthChecks"] == [{"timeout": "1s"}]
    relabelled = make_canary(service={"apex": {"labels": {"new": "label"}}})
    (table,) = ROUTER.reconcile(relabelled, cluster)
    assert destinations(table["spec"]["routes"][0]) == [
        (PRIMARY_UPSTREAM, 40),
        (CANARY_UPSTREAM, 60),
    ]


def test_get_routes_names_the_route_table_when_it_has_no_split() -> None:
    canary = make_canary()
    table = by_kind(ROUTER.reconcile(canary, COPIES), "RouteTable")["podinfo"]
    table["spec"]["routes"][0]["routeAction"]["multi"]["destinations"].pop()
    with pytest.raises(RouterError, match=r"RouteTable podinfo\.default destinations not found"):
        ROUTER.get_routes(canary, [table])
    with pytest.raises(RouterError, match=r"RouteTable podinfo\.default get query error"):
        ROUTER.get_routes(canary, [])


def test_check_and_controller_refuse_what_gloo_cannot_route() -> None:
    uri = make_canary(
        provider="gloo",
        analysis={"stepWeight": None, "iterations": 2, "match": [{"uri": {"prefix": "/v2"}}]},
    )
    problems = {p.path: p for p in compatibility(uri, Options())}
    assert problems["spec.analysis.match[0]"].severity == "error"
    mirror = make_canary(provider="gloo", analysis={"mirror": True})
    (warning,) = [p for p in compatibility(mirror, Options()) if p.path == "spec.analysis.mirror"]
    assert warning.severity == "warning"
    external = {"spec": {"type": "ExternalName", "externalName": "x.example.com"}}
    service_target = make_canary(provider="gloo", target_kind="Service")
    errors = [
        p for p in compatibility(service_target, Options(), external) if p.severity == "error"
    ]
    assert [p.path for p in errors] == ["spec.targetRef"]
    assert "kube Upstream" in errors[0].reason
