"""Which traffic follows the weights, per provider and target kind (docs/targets.md table)."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.routers.verdict import Options, compatibility
from coalmine.targets.service_coverage import (
    builtin_checks_reason,
    routing_coverage,
    selectorless_reason,
)


def canary(provider: str | None, kind: str = "Service", **spec: Any) -> Canary:
    api = "v1" if kind == "Service" else "apps/v1"
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": api, "kind": kind, "name": "podinfo"},
        "service": {"port": 9898},
        **spec,
    }
    if provider:
        body["provider"] = provider
    return Canary.model_validate(
        {"metadata": {"name": "podinfo", "namespace": "test"}, "spec": body}
    )


@pytest.mark.parametrize(
    ("provider", "scope", "event"),
    [
        ("istio", "mesh", "Normal"),
        ("linkerd", "mesh", "Normal"),
        ("osm", "mesh", "Normal"),
        ("smi:v1alpha3", "mesh", "Normal"),
        ("gatewayapi:v1", "edge", "Warning"),
        ("contour", "edge", "Warning"),
        ("nginx", "edge", "Warning"),
        ("traefik", "edge", "Warning"),
        ("kubernetes", "copies", "Warning"),
    ],
)
def test_every_routing_provider_has_one_coverage(provider: str, scope: str, event: str) -> None:
    coverage = routing_coverage(canary(provider))
    assert (coverage.scope, coverage.event_type) == (scope, event)
    assert coverage.sentence.startswith(f"provider {provider}: ")
    # a Service target: clients that bypass the router move at once, and the sentence says so
    assert "podinfo.test move" in coverage.sentence
    assert coverage.sentence.endswith("to a new revision as soon as the Service changes")


def test_a_deployment_target_keeps_bypassing_clients_on_the_primary() -> None:
    coverage = routing_coverage(canary("nginx", kind="Deployment"))
    assert "stay on the primary until promotion" in coverage.sentence


def test_the_controller_flag_decides_when_the_canary_names_no_provider() -> None:
    assert routing_coverage(canary(None), "kubernetes").scope == "copies"
    assert routing_coverage(canary(None)).scope == "mesh"  # the controller's default, istio


def test_a_service_without_selector_is_refused_but_an_external_name_is_not() -> None:
    manual = {"spec": {"ports": [{"port": 80}]}}
    assert "has no selector" in selectorless_reason(canary("istio"), manual)
    external = {"spec": {"type": "ExternalName", "externalName": "x.example.com"}}
    assert selectorless_reason(canary("istio"), external) == ""
    assert selectorless_reason(canary("istio"), None) == ""  # not listed yet: judged later


def test_builtin_checks_are_refused_only_where_nothing_isolates_the_canary() -> None:
    metrics = {"analysis": {"metrics": [{"name": "request-success-rate", "interval": "1m"}]}}
    selected = {"spec": {"selector": {"app": "blue"}}}
    refusal = builtin_checks_reason(canary("kubernetes", **metrics), None)
    assert refusal.startswith("spec.analysis.metrics[0]: the builtin check request-success-rate")
    assert "templateRef" in refusal
    assert selectorless_reason(canary("kubernetes", **metrics), selected) == ""
    assert builtin_checks_reason(canary("istio", **metrics), None) == ""
    assert builtin_checks_reason(canary("kubernetes", "Deployment", **metrics), None) == ""


def test_check_says_the_sentence_as_a_warning_and_the_refusal_as_an_error() -> None:
    metrics = {"analysis": {"metrics": [{"name": "request-duration", "interval": "1m"}]}}
    findings = compatibility(canary("kubernetes", **metrics), Options())
    assert [(f.path, f.severity) for f in findings] == [
        ("spec.provider", "warning"),
        ("spec.analysis.metrics[0]", "error"),
    ]
    assert compatibility(canary("istio", kind="Deployment"), Options()) == []
