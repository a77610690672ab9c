"""APISIX canary ApisixRoute router (Flagger's apisix.go and apisix_test.go), every object
validated against the official ApisixRoute CRD."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.routers.apisix import ROUTER, canary_route_name
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from routers.canaries import apply, make_canary, severities
from routers.schemas import as_stored, assert_valid

ROUTE_REF = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"}
CANARY_ROUTE = "podinfo-podinfo-canary"


def user_route(backend: str = "podinfo", backends: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"app": "podinfo"},
            "annotations": {
                "kubernetes.io/ingress.class": "apisix",
                naming.KUBECTL_LAST_APPLIED_ANNOTATION: "{}",
            },
        },
        "spec": {
            "ingressClassName": "apisix",
            "http": [
                {
                    "name": "static",
                    "match": {"hosts": ["app.example.com"], "paths": ["/static/*"]},
                    "backends": [{"serviceName": "cdn", "servicePort": 80}],
                },
                {
                    "name": "method",
                    "match": {"hosts": ["app.example.com"], "paths": ["/*"], "methods": ["GET"]},
                    "plugins": [{"name": "prometheus", "enable": True}],
                    "timeout": {"read": "10s"},
                    "backends": [
                        {
                            "serviceName": backend,
                            "servicePort": 9898,
                            "resolveGranularity": "service",
                        }
                    ]
                    * backends,
                },
            ],
        },
    }


def canary_with(**kwargs: Any) -> Any:
    return make_canary(extra_spec={"routeRef": ROUTE_REF}, provider="apisix", **kwargs)


def weights_of(route: dict[str, Any]) -> dict[str, int]:
    return {b["serviceName"]: b["weight"] for b in route["spec"]["http"][0]["backends"]}


def test_reconcile_writes_a_prioritised_copy_of_the_users_http_route_at_100_0() -> None:
    (route,) = ROUTER.reconcile(canary_with(), [user_route()])

    assert_valid(route)
    assert route["metadata"]["name"] == CANARY_ROUTE == canary_route_name(canary_with())
    assert route["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert route["metadata"]["labels"] == {"app": "podinfo"}
    annotations = route["metadata"]["annotations"]
    assert annotations["kubernetes.io/ingress.class"] == "apisix"
    assert naming.KUBECTL_LAST_APPLIED_ANNOTATION not in annotations
    assert annotations["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    assert route["spec"]["ingressClassName"] == "apisix"
    (http,) = route["spec"]["http"]
    assert http["name"] == "method"
    assert http["priority"] == 10000
    assert http["match"] == user_route()["spec"]["http"][1]["match"]
    assert http["plugins"] == [{"name": "prometheus", "enable": True}]
    assert http["backends"] == [
        {
            "serviceName": "podinfo-primary",
            "servicePort": 9898,
            "weight": 100,
            "resolveGranularity": "service",
        },
        {
            "serviceName": "podinfo-canary",
            "servicePort": 9898,
            "weight": 0,
            "resolveGranularity": "service",
        },
    ]


def test_set_and_get_routes_step_the_backend_weights() -> None:
    canary = canary_with()
    existing = apply([user_route()], ROUTER.reconcile(canary, [user_route()]))
    assert ROUTER.get_routes(canary, existing) == Routes(100, 0)

    update = ROUTER.set_routes(canary, existing, 60, 40)
    existing = apply(existing, update.objects)

    (route,) = update.objects
    assert_valid(route)
    assert weights_of(route) == {"podinfo-primary": 60, "podinfo-canary": 40}
    assert ROUTER.get_routes(canary, existing) == Routes(60, 40)
    assert ROUTER.get_routes(canary, [as_stored(route)]) == Routes(60, 40)


def test_set_routes_refuses_an_empty_split() -> None:
    canary = canary_with()
    existing = apply([user_route()], ROUTER.reconcile(canary, [user_route()]))
    with pytest.raises(
        RouterError, match=re.escape(f"ApisixRoute {CANARY_ROUTE}.default update failed")
    ):
        ROUTER.set_routes(canary, existing, 0, 0)


def test_reconcile_follows_a_change_of_the_users_route_keeping_the_live_weights() -> None:
    canary = canary_with()
    existing = apply([user_route()], ROUTER.reconcile(canary, [user_route()]))
    existing = apply(existing, ROUTER.set_routes(canary, existing, 80, 20).objects)
    assert ROUTER.reconcile(canary, existing) == []

    changed = copy.deepcopy(user_route())
    changed["spec"]["http"][1]["match"]["paths"] = ["/api/*"]
    existing = [changed, *existing[1:]]
    (route,) = ROUTER.reconcile(canary, existing)

    assert_valid(route)
    assert route["spec"]["http"][0]["match"]["paths"] == ["/api/*"]
    assert weights_of(route) == {"podinfo-primary": 80, "podinfo-canary": 20}


def test_a_route_to_the_primary_copy_is_split_too() -> None:
    (route,) = ROUTER.reconcile(canary_with(), [user_route("podinfo-primary")])
    assert weights_of(route) == {"podinfo-primary": 100, "podinfo-canary": 0}


def test_a_missing_route_ref_is_named() -> None:
    canary = make_canary(provider="apisix")
    with pytest.raises(RouterError, match=re.escape("apisix route selector is empty")):
        ROUTER.references(canary)


def test_a_missing_users_route_is_a_get_query_error() -> None:
    with pytest.raises(RouterError, match=re.escape("ApisixRoute podinfo.default get query error")):
        ROUTER.reconcile(canary_with(), [])


def test_a_route_without_the_apex_backend_is_refused() -> None:
    with pytest.raises(
        RouterError, match=re.escape("backend podinfo not found in ApisixRoute podinfo")
    ):
        ROUTER.reconcile(canary_with(), [user_route("other")])
    problems = ROUTER.compatibility(canary_with(), "Deployment", None, existing=[user_route("x")])
    assert [p.path for p in problems] == ["spec.routeRef"]


def test_a_route_with_several_backends_is_refused() -> None:
    with pytest.raises(
        RouterError, match=re.escape("must have exactly one backend to split, it has 2")
    ):
        ROUTER.reconcile(canary_with(), [user_route(backends=2)])


def test_finalize_leaves_the_canary_route_to_garbage_collection() -> None:
    canary = canary_with()
    existing = apply([user_route()], ROUTER.reconcile(canary, [user_route()]))
    assert ROUTER.finalize(canary, existing) == []


def test_ab_runs_are_refused_and_mirroring_and_affinity_are_warnings() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    ab = canary_with(analysis={"iterations": 5, "match": match, "stepWeight": None})
    problems = severities(ab)
    assert problems["spec.analysis.match"] == "error"
    mirrored = canary_with(analysis={"mirror": True})
    problems = severities(mirrored)
    assert problems == {"spec.analysis.mirror": "warning"}
    sticky = canary_with(analysis={"sessionAffinity": {"cookieName": "c"}})
    problems = severities(sticky)
    assert problems == {"spec.analysis.sessionAffinity": "warning"}
