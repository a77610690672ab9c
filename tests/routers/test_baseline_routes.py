"""A fresh baseline's three-way split (issue 19): Istio and Gateway API route primary, canary and
baseline; two-way routers refuse it, and `coalmine check` and the controller refuse a Canary that
asks a two-way router for a baseline with the same problem."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from coalmine.api.validation import ManifestError, parse_canary
from coalmine.cli.check import Options as CheckOptions
from coalmine.cli.check import check_stream
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.gatewayapi import GatewayAPIRouter
from coalmine.routers.istio import ROUTER as ISTIO
from coalmine.routers.nginx import NginxRouter
from coalmine.routers.smi import SMIRouter
from coalmine.routers.verdict import Options, judge
from routers.canaries import apply, make_canary

BASELINE = {"baseline": {"enabled": True}, "maxWeight": 40}
GATEWAYS = [{"name": "public", "namespace": "gateways"}]


def three_way(router: Any, canary: Any) -> tuple[list[dict[str, Any]], Routes]:
    existing = apply([], router.reconcile(canary, []))
    update = router.set_routes(canary, existing, 60, 20, False, baseline_weight=20)
    existing = apply(existing, update.objects)
    return existing, router.get_routes(canary, existing)


def test_istio_routes_primary_canary_and_baseline_and_reads_the_split_back() -> None:
    canary = make_canary(analysis=BASELINE)
    existing, routes = three_way(ISTIO, canary)
    assert routes == Routes(60, 20, False, 20)
    vs = next(o for o in existing if o["kind"] == "VirtualService")
    route = vs["spec"]["http"][0]["route"]
    assert [(d["destination"]["host"], d["weight"]) for d in route] == [
        ("podinfo-primary", 60),
        ("podinfo-canary", 20),
        ("podinfo-baseline", 20),
    ]
    # reconcile keeps the live three-way split
    assert ISTIO.reconcile(canary, existing) == []


def test_istio_two_way_splits_are_unchanged_without_a_baseline_share() -> None:
    canary = make_canary(analysis=BASELINE)
    existing = apply([], ISTIO.reconcile(canary, []))
    update = ISTIO.set_routes(canary, existing, 80, 20, False)
    vs = next(o for o in update.objects if o["kind"] == "VirtualService")
    hosts = [d["destination"]["host"] for d in vs["spec"]["http"][0]["route"]]
    assert hosts == ["podinfo-primary", "podinfo-canary"]
    assert ISTIO.get_routes(canary, apply(existing, update.objects)) == Routes(80, 20, False)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_gateway_api_routes_three_backends_and_reads_the_split_back(version: str) -> None:
    router = GatewayAPIRouter(version)  # type: ignore[arg-type]
    canary = make_canary(service={"gatewayRefs": GATEWAYS}, analysis=BASELINE)
    existing, _ = three_way(router, canary)
    route = existing[0]
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [
        ("podinfo-primary", 60),
        ("podinfo-canary", 20),
        ("podinfo-baseline", 20),
    ]
    assert router._read_weights(canary, route) == Routes(60, 20, False, 20)


@pytest.mark.parametrize("router", [NginxRouter(), SMIRouter("v1alpha3")])
def test_a_two_way_router_refuses_a_baseline_share(router: Any) -> None:
    canary = make_canary(
        analysis=BASELINE,
        extra_spec={
            "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "i"}
        },
    )
    existing = apply([], router.reconcile(canary, [{"kind": "Ingress", **_ingress()}]))
    with pytest.raises(RouterError, match="cannot split traffic three ways"):
        router.set_routes(canary, existing, 60, 20, False, baseline_weight=20)


def _ingress() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "i", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "podinfo", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


def baseline_canary(provider: str, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u"},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898, "gatewayRefs": GATEWAYS},
            "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "i"},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "stepWeight": 10,
                "maxWeight": 30,
                "baseline": {"enabled": True},
                **analysis,
            },
        },
    }


@pytest.mark.parametrize(
    "provider", ["nginx", "kubernetes", "contour", "linkerd", "traefik", "smi:v1alpha3"]
)
def test_a_router_that_cannot_split_three_ways_is_refused_alike_by_check_and_controller(
    provider: str,
) -> None:
    doc = baseline_canary(provider)
    verdict = judge(doc, Options())
    assert verdict.reason == "UnsupportedRouting"
    problems = [str(p) for p in verdict.problems if p.path == "spec.analysis.baseline.enabled"]
    assert len(problems) == 1
    assert f"the {provider} router cannot split traffic three ways" in problems[0]
    result = check_stream(yaml.safe_dump(doc), "canary.yaml", CheckOptions())
    errors = {f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"}
    assert problems[0] in errors


@pytest.mark.parametrize("provider", ["istio", "gatewayapi:v1", "gatewayapi:v1beta1"])
def test_a_three_way_router_runs_a_baseline(provider: str) -> None:
    verdict = judge(baseline_canary(provider), Options())
    assert verdict.refusal is None, verdict.problems


@pytest.mark.parametrize(
    ("analysis", "reason"),
    [
        ({"maxWeight": 50, "stepWeight": 20}, "the canary weight reaches 60"),
        ({"stepWeight": None, "maxWeight": None, "iterations": 5}, "needs progressive weights"),
        ({"mirror": True}, "cannot be combined with mirror"),
    ],
)
def test_a_baseline_the_strategy_cannot_give_the_canary_share_is_refused(
    analysis: dict[str, Any], reason: str
) -> None:
    doc = baseline_canary("istio", **analysis)
    doc["spec"]["analysis"] = {k: v for k, v in doc["spec"]["analysis"].items() if v is not None}
    with pytest.raises(ManifestError) as caught:
        parse_canary(doc)
    assert any(
        e.path == "spec.analysis.baseline.enabled" and reason in e.reason
        for e in caught.value.errors
    ), caught.value.errors


def test_a_daemonset_target_gets_no_baseline() -> None:
    doc = baseline_canary("istio")
    doc["spec"]["targetRef"]["kind"] = "DaemonSet"
    with pytest.raises(ManifestError, match="Deployment and Service targets"):
        parse_canary(doc)


def test_without_the_field_nothing_changes() -> None:
    doc = baseline_canary("nginx")
    del doc["spec"]["analysis"]["baseline"]
    assert judge(doc, Options()).refusal is None
