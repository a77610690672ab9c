"""Gateway API router, HTTPRoute v1 and v1beta1 (Flagger's gateway_api.go and
gateway_api_test.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.gatewayapi import ROUTER_V1, ROUTER_V1BETA1, GatewayAPIRouter
from routers.canaries import apply, make_canary, with_status
from routers.schemas import assert_valid

ROUTERS = [ROUTER_V1, ROUTER_V1BETA1]
GATEWAYS = [{"name": "public", "namespace": "gateways", "sectionName": "https"}]


def canary_with(service: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return make_canary(service={"gatewayRefs": GATEWAYS, **(service or {})}, **kwargs)


def route_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "HTTPRoute")


def token() -> str:
    return "abcdefghij"


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
def test_initialization_writes_an_http_route_at_100_0(router: GatewayAPIRouter) -> None:
    canary = canary_with({"hosts": ["app.example.com"], "timeout": "30s", "backendTimeout": "10s"})
    (route,) = router.reconcile(canary, [])
    assert_valid(route)
    assert route["apiVersion"] == f"gateway.networking.k8s.io/{router.version}"
    spec = route["spec"]
    assert spec["parentRefs"] == GATEWAYS
    assert spec["hostnames"] == ["app.example.com"]
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "podinfo-primary", "port": 9898, "weight": 100},
        {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898, "weight": 0},
    ]
    if router.version == "v1":
        assert rule["timeouts"] == {"request": "30s", "backendRequest": "10s"}
    else:
        assert "timeouts" not in rule


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
def test_weight_steps_round_trip(router: GatewayAPIRouter) -> None:
    canary = canary_with()
    cluster = apply([], router.reconcile(canary, []))
    for primary, weight in [(80, 20), (60, 40), (40, 60), (50, 50), (100, 0)]:
        update = router.set_routes(canary, cluster, primary, weight)
        assert_valid(*update.objects)
        cluster = apply(cluster, update.objects)
        assert router.get_routes(canary, cluster) == Routes(primary, weight)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
def test_ab_testing_with_header_and_cookie_matches(router: GatewayAPIRouter) -> None:
    canary = canary_with(
        {"match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}]},
        analysis={
            "stepWeight": None,
            "iterations": 10,
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            ],
        },
    )
    cluster = apply([], router.reconcile(canary, []))
    update = router.set_routes(canary, cluster, 0, 100)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    weighted, fallback = route_of(cluster)["spec"]["rules"]
    assert weighted["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/api"},
            "method": "GET",
            "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}],
        },
        {
            "path": {"type": "PathPrefix", "value": "/api"},
            "method": "GET",
            "headers": [
                {
                    "name": "cookie",
                    "type": "RegularExpression",
                    "value": "^(.*?;)?(canary=always)(;.*)?$",
                }
            ],
        },
    ]
    assert [b["weight"] for b in weighted["backendRefs"]] == [0, 100]
    assert fallback["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}
    ]
    assert [(b["name"], b["weight"]) for b in fallback["backendRefs"]] == [("podinfo-primary", 100)]
    assert router.get_routes(canary, cluster) == Routes(0, 100)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
@pytest.mark.parametrize("iterations", [0, 5], ids=["canary", "blue-green"])
def test_mirroring_adds_a_request_mirror_filter(router: GatewayAPIRouter, iterations: int) -> None:
    analysis: dict[str, Any] = {"mirror": True, "mirrorWeight": 25}
    if iterations:
        analysis.update({"stepWeight": None, "iterations": iterations})
    canary = canary_with(analysis=analysis)
    cluster = apply([], router.reconcile(canary, []))
    update = router.set_routes(canary, cluster, 100, 0, mirrored=True)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    (rule,) = route_of(cluster)["spec"]["rules"]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {
                    "group": "",
                    "kind": "Service",
                    "name": "podinfo-canary",
                    "port": 9898,
                },
                "percent": 25,
            },
        }
    ]
    assert router.get_routes(canary, cluster) == Routes(100, 0, mirrored=True)
    assert router.reconcile(canary, cluster) == [], "a mirroring run is not undone by reconcile"
    cluster = apply(cluster, router.set_routes(canary, cluster, 0, 100).objects)
    assert router.get_routes(canary, cluster) == Routes(0, 100, mirrored=False)


AFFINITY = {
    "cookieName": "flagger-cookie",
    "primaryCookieName": "primary-cookie",
    "maxAge": 300,
    "domain": "example.com",
    "httpOnly": True,
    "partitioned": True,
    "path": "/",
    "sameSite": "Strict",
    "secure": True,
}
CANARY_COOKIE = (
    "flagger-cookie=abcdefghij; Max-Age=300; Domain=example.com; HttpOnly; Partitioned; "
    "Path=/; SameSite=Strict; Secure"
)


def set_cookie(value: str) -> dict[str, Any]:
    return {
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": value}]},
    }


def test_session_affinity_v1_sticky_rules_and_cookie_attributes() -> None:
    canary = canary_with(analysis={"sessionAffinity": AFFINITY})
    cluster = apply([], ROUTER_V1.reconcile(canary, []))
    update = ROUTER_V1.set_routes(canary, cluster, 90, 10, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies.session_affinity_cookie == "flagger-cookie=abcdefghij"
    assert update.cookies.primary_session_affinity_cookie == "primary-cookie=abcdefghij"
    cluster = apply(cluster, update.objects)
    sticky, primary_sticky, weighted = route_of(cluster)["spec"]["rules"]
    assert sticky["matches"] == [
        {
            "headers": [
                {
                    "name": "Cookie",
                    "type": "RegularExpression",
                    "value": ".*flagger-cookie.*abcdefghij.*",
                }
            ]
        }
    ]
    assert [b["weight"] for b in sticky["backendRefs"]] == [0, 100]
    assert primary_sticky["matches"][0]["headers"][0]["value"] == ".*primary-cookie.*abcdefghij.*"
    assert [b["weight"] for b in primary_sticky["backendRefs"]] == [100, 0]
    primary, canary_backend = weighted["backendRefs"]
    assert canary_backend["filters"] == [set_cookie(CANARY_COOKIE)]
    assert primary["filters"] == [
        set_cookie(
            "primary-cookie=abcdefghij; Max-Age=60; Domain=example.com; HttpOnly; Partitioned; "
            "Path=/; SameSite=Strict; Secure"
        )
    ]
    canary = with_status(
        canary,
        sessionAffinityCookie=update.cookies.session_affinity_cookie,
        primarySessionAffinityCookie=update.cookies.primary_session_affinity_cookie,
    )
    assert ROUTER_V1.get_routes(canary, cluster) == Routes(90, 10)
    assert ROUTER_V1.reconcile(canary, cluster) == []

    update = ROUTER_V1.set_routes(canary, cluster, 100, 0, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies.session_affinity_cookie is None
    assert update.cookies.previous_session_affinity_cookie == "flagger-cookie=abcdefghij"
    cleanup, weighted = route_of(update.objects)["spec"]["rules"]
    assert cleanup["filters"] == [set_cookie("flagger-cookie=abcdefghij; Max-Age=-1")]
    assert "filters" not in weighted["backendRefs"][1]


def test_session_affinity_v1beta1_has_no_primary_cookie() -> None:
    canary = canary_with(analysis={"sessionAffinity": AFFINITY})
    cluster = apply([], ROUTER_V1BETA1.reconcile(canary, []))
    update = ROUTER_V1BETA1.set_routes(canary, cluster, 90, 10, token=token)
    assert_valid(*update.objects)
    assert update.cookies is not None
    assert update.cookies.primary_session_affinity_cookie is None
    sticky, weighted = route_of(update.objects)["spec"]["rules"]
    assert [b["weight"] for b in sticky["backendRefs"]] == [0, 100]
    assert "filters" not in weighted["backendRefs"][0]
    assert weighted["backendRefs"][1]["filters"] == [set_cookie(CANARY_COOKIE)]


def test_session_affinity_cookie_match_is_merged_with_service_match() -> None:
    canary = canary_with(
        {"match": [{"uri": {"prefix": "/api"}}]},
        analysis={"sessionAffinity": {"cookieName": "c"}},
    )
    cluster = apply([], ROUTER_V1.reconcile(canary, []))
    sticky, _ = route_of(ROUTER_V1.set_routes(canary, cluster, 50, 50, token=token).objects)[
        "spec"
    ]["rules"]
    assert sticky["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/api"},
            "headers": [
                {"name": "Cookie", "type": "RegularExpression", "value": ".*c.*abcdefghij.*"}
            ],
        }
    ]


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
def test_filters_sort_headers_and_rewrite(router: GatewayAPIRouter) -> None:
    canary = canary_with(
        {
            "headers": {
                "request": {
                    "add": {"x-b": "2", "x-a": "1"},
                    "set": {"z": "1", "y": "2"},
                    "remove": ["x-drop"],
                },
                "response": {"add": {"r-b": "2", "r-a": "1"}},
            },
            "rewrite": {"uri": "/v2", "authority": "backend.example.com"},
            "mirror": [{"backendRef": {"name": "shadow", "port": 8080}}],
        }
    )
    (route,) = router.reconcile(canary, [])
    assert_valid(route)
    filters = route["spec"]["rules"][0]["filters"]
    assert filters == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "add": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}],
                "set": [{"name": "y", "value": "2"}, {"name": "z", "value": "1"}],
                "remove": ["x-drop"],
            },
        },
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {
                "add": [{"name": "r-a", "value": "1"}, {"name": "r-b", "value": "2"}]
            },
        },
        {
            "type": "URLRewrite",
            "urlRewrite": {
                "hostname": "backend.example.com",
                "path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2"},
            },
        },
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}},
        },
    ]


def test_rewrite_with_prefix_type_replaces_the_prefix() -> None:
    canary = canary_with({"rewrite": {"uri": "/", "type": "ReplacePrefixMatch"}})
    (route,) = ROUTER_V1.reconcile(canary, [])
    assert route["spec"]["rules"][0]["filters"] == [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]


def test_cors_policy_becomes_a_cors_filter_on_v1_only() -> None:
    canary = canary_with(
        {
            "corsPolicy": {
                "allowOrigin": ["https://example.com"],
                "allowOrigins": [{"exact": "https://other.example.com"}],
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["x-some-header"],
                "exposeHeaders": ["x-exposed"],
                "maxAge": "24h",
                "allowCredentials": True,
            }
        }
    )
    (route,) = ROUTER_V1.reconcile(canary, [])
    assert_valid(route)
    assert route["spec"]["rules"][0]["filters"] == [
        {
            "type": "CORS",
            "cors": {
                "allowOrigins": ["https://example.com", "https://other.example.com"],
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["x-some-header"],
                "exposeHeaders": ["x-exposed"],
                "maxAge": 86400,
                "allowCredentials": True,
            },
        }
    ]
    (beta,) = ROUTER_V1BETA1.reconcile(canary, [])
    assert "filters" not in beta["spec"]["rules"][0]


def test_service_match_is_mapped_to_route_matches() -> None:
    canary = canary_with(
        {
            "match": [
                {"uri": {"regex": "/api/v[0-9]+"}, "queryParams": {"debug": {"exact": "1"}}},
                {
                    "uri": {"exact": "/healthz"},
                    "headers": {"x-b": {"regex": ".*"}, "x-a": {"exact": "1"}},
                },
            ]
        }
    )
    (route,) = ROUTER_V1.reconcile(canary, [])
    assert_valid(route)
    assert route["spec"]["rules"][0]["matches"] == [
        {
            "path": {"type": "RegularExpression", "value": "/api/v[0-9]+"},
            "queryParams": [{"name": "debug", "type": "Exact", "value": "1"}],
        },
        {
            "path": {"type": "Exact", "value": "/healthz"},
            "headers": [
                {"name": "x-a", "type": "Exact", "value": "1"},
                {"name": "x-b", "type": "RegularExpression", "value": ".*"},
            ],
        },
    ]


def test_unsupported_match_is_an_error() -> None:
    canary = canary_with({"match": [{"uri": {"suffix": ".png"}}]})
    with pytest.raises(RouterError, match="doesn't support the specified path matching selector"):
        ROUTER_V1.reconcile(canary, [])
    assert any(p.severity == "error" for p in ROUTER_V1.compatibility(canary, "Deployment", None))


def test_gateway_refs_are_required() -> None:
    canary = make_canary()
    with pytest.raises(RouterError, match="GatewayRefs must be specified"):
        ROUTER_V1.reconcile(canary, [])
    problems = ROUTER_V1.compatibility(canary, "Deployment", None)
    assert any(p.severity == "error" and "gatewayRefs" in str(p) for p in problems)


def with_parent_status(route: dict[str, Any], status: str, observed: int) -> dict[str, Any]:
    result = copy.deepcopy(route)
    result["status"] = {
        "parents": [
            {
                "parentRef": {"name": "public", "namespace": "gateways"},
                "controllerName": "istio.io/gateway-controller",
                "conditions": [
                    {
                        "type": "Accepted",
                        "status": status,
                        "reason": "Accepted" if status == "True" else "NotAllowedByListeners",
                        "message": "",
                        "observedGeneration": observed,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        ]
    }
    return result


def test_get_routes_v1_requires_every_parent_to_accept_the_route() -> None:
    canary = canary_with()
    cluster = apply([], ROUTER_V1.reconcile(canary, []))
    route = route_of(cluster)
    generation = route["metadata"]["generation"]
    rejected = with_parent_status(route, "False", generation)
    with pytest.raises(RouterError, match=r"HTTPRoute podinfo\.default parent public is not ready"):
        ROUTER_V1.get_routes(canary, [rejected])
    accepted = with_parent_status(route, "True", generation)
    assert_valid(accepted)
    assert ROUTER_V1.get_routes(canary, [accepted]) == Routes(100, 0)
    # v1beta1 reads weights without the gate
    assert ROUTER_V1BETA1.get_routes(canary, [{**rejected, "apiVersion": "x"}]) == Routes(100, 0)


def test_get_routes_v1_waits_for_the_gateway_to_observe_the_latest_generation() -> None:
    canary = canary_with()
    cluster = apply([], ROUTER_V1.reconcile(canary, []))
    cluster = apply(cluster, ROUTER_V1.set_routes(canary, cluster, 50, 50).objects)
    route = route_of(cluster)
    behind = with_parent_status(route, "True", route["metadata"]["generation"] - 1)
    with pytest.raises(RouterError, match="observedGeneration 1 is behind generation 2"):
        ROUTER_V1.get_routes(canary, [behind])


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.version)
def test_reconcile_keeps_live_weights_and_foreign_annotations(router: GatewayAPIRouter) -> None:
    canary = canary_with()
    cluster = apply([], router.reconcile(canary, []))
    cluster = apply(cluster, router.set_routes(canary, cluster, 60, 40).objects)
    route = route_of(cluster)
    route["metadata"]["annotations"]["foo"] = "bar"
    # server-side defaults do not count as drift
    route["spec"]["parentRefs"][0].update({"group": "gateway.networking.k8s.io", "kind": "Gateway"})
    assert router.reconcile(canary, cluster) == []
    changed = canary_with({"hosts": ["new.example.com"], "timeout": "5s"})
    (written,) = router.reconcile(changed, cluster)
    assert_valid(written)
    assert written["spec"]["hostnames"] == ["new.example.com"]
    assert [b["weight"] for b in written["spec"]["rules"][0]["backendRefs"]] == [60, 40]
    assert written["metadata"]["annotations"]["foo"] == "bar"


def test_finalize_leaves_the_route_to_garbage_collection() -> None:
    canary = canary_with()
    assert ROUTER_V1.finalize(canary, apply([], ROUTER_V1.reconcile(canary, []))) == []


def test_external_name_backends_are_a_caveat_and_tcp_is_refused() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.example.com"}}
    (caveat,) = ROUTER_V1.compatibility(canary_with(), "Service", external)
    assert caveat.severity == "warning"
    assert "ExternalName" in str(caveat)
    tcp = canary_with({"appProtocol": "tcp"})
    assert any(p.severity == "error" for p in ROUTER_V1.compatibility(tcp, "Deployment", None))


def test_settings_that_break_http_route_validation_rules_are_reported() -> None:
    prefix_rewrite = canary_with(
        {"rewrite": {"uri": "/", "type": "ReplacePrefixMatch"}},
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [{"headers": {"a": {"exact": "1"}}}, {"headers": {"b": {"exact": "2"}}}],
        },
    )
    problems = ROUTER_V1.compatibility(prefix_rewrite, "Deployment", None)
    assert any(p.severity == "error" and "ReplacePrefixMatch" in str(p) for p in problems)
    single = canary_with({"rewrite": {"uri": "/", "type": "ReplacePrefixMatch"}})
    assert ROUTER_V1.compatibility(single, "Deployment", None) == []
    timeouts = canary_with({"timeout": "5s", "backendTimeout": "10s"})
    problems = ROUTER_V1.compatibility(timeouts, "Deployment", None)
    assert any(p.severity == "error" and "backendTimeout" in str(p) for p in problems)


def test_source_label_matches_are_reported() -> None:
    canary = canary_with(
        analysis={"stepWeight": None, "iterations": 2, "match": [{"sourceLabels": {"app": "x"}}]}
    )
    problems = ROUTER_V1.compatibility(canary, "Deployment", None)
    assert any(p.severity == "error" and "sourceLabels" in str(p) for p in problems)


def test_reconcile_keeps_the_live_cookie_when_the_status_lost_it() -> None:
    canary = canary_with(
        analysis={"sessionAffinity": {"cookieName": "c", "primaryCookieName": "p"}}
    )
    cluster = apply([], ROUTER_V1.reconcile(canary, []))
    cluster = apply(cluster, ROUTER_V1.set_routes(canary, cluster, 70, 30, token=token).objects)
    assert ROUTER_V1.reconcile(canary, cluster) == []
    changed = canary_with(
        {"hosts": ["new.example.com"]},
        analysis={"sessionAffinity": {"cookieName": "c", "primaryCookieName": "p"}},
    )
    (written,) = ROUTER_V1.reconcile(changed, cluster)
    sticky = written["spec"]["rules"][0]
    assert sticky["matches"][0]["headers"][0]["value"] == ".*c.*abcdefghij.*"
    assert [b["weight"] for b in written["spec"]["rules"][-1]["backendRefs"]] == [70, 30]
