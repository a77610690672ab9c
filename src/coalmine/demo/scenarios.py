"""The demo's scenarios: what is released, what changes, and how each version behaves.

Every scenario releases `podinfo` in namespace `default` through the Gateway API router: the
controller writes an HTTPRoute whose backend weights move from `podinfo-primary` to
`podinfo-canary`, and the demo's traffic follows those weights. Metrics are two MetricTemplates
(success rate and P99 latency) read from the demo application, through Prometheus or through the
`http` provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from coalmine.demo.traffic import VersionBehaviour

NAMESPACE = "default"
APEX = "podinfo"
GATEWAY = "demo-gateway"
PROVIDER = "gatewayapi:v1"
PORT = 9898
STEP_WEIGHTS = (10, 20, 40, 60, 80)
PODINFO_IMAGE = "ghcr.io/stefanprodan/podinfo"

SUCCESS_RATE_METRIC = "success-rate"
LATENCY_METRIC = "latency-p99"
SUCCESS_RATE_MIN = 99.0
LATENCY_MAX_MS = 500.0

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """The user's edit that makes a new revision: a merge patch of one object."""

    resource: str
    name: str
    patch: Manifest
    description: str


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    target_kind: str
    target: tuple[Manifest, ...]
    change: Change
    expected_phase: str
    versions: dict[str, VersionBehaviour] = field(default_factory=dict)
    threshold: int = 3


def _service(selector: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APEX, "namespace": NAMESPACE},
        "spec": {
            "selector": {"app": selector},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
        },
    }


def _external_service(host: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APEX, "namespace": NAMESPACE},
        "spec": {
            "type": "ExternalName",
            "externalName": host,
            "ports": [{"name": "http", "port": PORT}],
        },
    }


def _deployment(version: str, tag: str) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APEX, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": APEX}},
            "template": {
                "metadata": {"labels": {"app": APEX, "version": version}},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": f"{PODINFO_IMAGE}:{tag}",
                            "ports": [{"name": "http", "containerPort": PORT}],
                        }
                    ]
                },
            },
        },
    }


def _healthy() -> dict[str, VersionBehaviour]:
    return {
        "blue": VersionBehaviour(success_rate=100.0, latency_ms=40.0),
        "green": VersionBehaviour(success_rate=100.0, latency_ms=25.0),
    }


SCENARIOS: dict[str, Scenario] = {
    "service": Scenario(
        name="service",
        title="ClusterIP Service podinfo: selector app=podinfo-blue → app=podinfo-green",
        target_kind="Service",
        target=(_service("podinfo-blue"),),
        change=Change(
            "services",
            APEX,
            {"spec": {"selector": {"app": "podinfo-green"}}},
            "Service podinfo selector set to app=podinfo-green",
        ),
        expected_phase="Succeeded",
        versions=_healthy(),
    ),
    "externalname": Scenario(
        name="externalname",
        title=(
            "ExternalName Service podinfo: podinfo.blue-cluster.example.com → "
            "podinfo.green-cluster.example.com (a whole new cluster)"
        ),
        target_kind="Service",
        target=(_external_service("podinfo.blue-cluster.example.com"),),
        change=Change(
            "services",
            APEX,
            {"spec": {"externalName": "podinfo.green-cluster.example.com"}},
            "Service podinfo externalName set to podinfo.green-cluster.example.com",
        ),
        expected_phase="Succeeded",
        versions=_healthy(),
    ),
    "deployment": Scenario(
        name="deployment",
        title=f"Deployment podinfo: {PODINFO_IMAGE}:6.5.0 (blue) → 6.6.0 (green)",
        target_kind="Deployment",
        target=(_deployment("blue", "6.5.0"),),
        change=Change(
            "deployments.apps",
            APEX,
            {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"version": "green"}},
                        "spec": {
                            "containers": [{"name": "podinfod", "image": f"{PODINFO_IMAGE}:6.6.0"}]
                        },
                    }
                }
            },
            f"Deployment podinfo image set to {PODINFO_IMAGE}:6.6.0",
        ),
        expected_phase="Succeeded",
        versions=_healthy(),
    ),
    "rollback": Scenario(
        name="rollback",
        title="ClusterIP Service podinfo: app=podinfo-blue → app=podinfo-green, green fails",
        target_kind="Service",
        target=(_service("podinfo-blue"),),
        change=Change(
            "services",
            APEX,
            {"spec": {"selector": {"app": "podinfo-green"}}},
            "Service podinfo selector set to app=podinfo-green (green answers 40% errors)",
        ),
        expected_phase="Failed",
        versions={
            "blue": VersionBehaviour(success_rate=100.0, latency_ms=40.0),
            "green": VersionBehaviour(success_rate=60.0, latency_ms=120.0),
        },
        threshold=2,
    ),
}


def gateway() -> Manifest:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": NAMESPACE},
        "spec": {
            "gatewayClassName": "demo",
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def canary(scenario: Scenario, interval: str) -> Manifest:
    api_version = "apps/v1" if scenario.target_kind == "Deployment" else "v1"
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": APEX, "namespace": NAMESPACE},
        "spec": {
            "provider": PROVIDER,
            "targetRef": {"apiVersion": api_version, "kind": scenario.target_kind, "name": APEX},
            "service": {
                "port": PORT,
                "gatewayRefs": [{"name": GATEWAY, "namespace": NAMESPACE}],
            },
            "analysis": {
                "interval": interval,
                "threshold": scenario.threshold,
                "stepWeights": list(STEP_WEIGHTS),
                "metrics": [
                    {
                        "name": SUCCESS_RATE_METRIC,
                        "templateRef": {"name": SUCCESS_RATE_METRIC},
                        "thresholdRange": {"min": SUCCESS_RATE_MIN},
                        "interval": metric_window(interval),
                    },
                    {
                        "name": LATENCY_METRIC,
                        "templateRef": {"name": LATENCY_METRIC},
                        "thresholdRange": {"max": LATENCY_MAX_MS},
                        "interval": metric_window(interval),
                    },
                ],
            },
        },
    }


def metric_window(interval: str) -> str:
    """Long enough to hold a few Prometheus scrapes of the canary's traffic, whatever the step."""
    from coalmine.api.models import parse_go_duration

    seconds = parse_go_duration(interval) or 1.0
    return f"{max(5, round(2 * seconds))}s"


def metric_templates(metrics: str, address: str) -> list[Manifest]:
    """The two templates, for `prometheus` (PromQL) or `http` (the application's JSON stats)."""
    if metrics == "prometheus":
        selector = 'backend="{{ service }}-canary"'
        queries = {
            SUCCESS_RATE_METRIC: (
                f'sum(rate(demo_requests_total{{{selector}, code!~"5.."}}[{{{{ interval }}}}])) '
                f"/ (sum(rate(demo_requests_total{{{selector}}}[{{{{ interval }}}}])) > 0) * 100"
            ),
            LATENCY_METRIC: (
                "histogram_quantile(0.99, sum by (le) (rate("
                f"demo_request_duration_seconds_bucket{{{selector}}}[{{{{ interval }}}}]))) * 1000"
            ),
        }
    else:
        stats = "/api/stats?backend={{ service }}-canary&window={{ interval }}"
        queries = {
            SUCCESS_RATE_METRIC: f"{stats} $.successRate",
            LATENCY_METRIC: f"{stats} $.latencyP99Ms",
        }
    return [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"provider": {"type": metrics, "address": address}, "query": query},
        }
        for name, query in queries.items()
    ]


_TOKEN = re.compile(r"[a-z0-9]+")


def version_in(texts: list[str], versions: list[str]) -> str | None:
    """The first version named as a whole word in the texts (`podinfo-green` → green)."""
    for text in texts:
        tokens = set(_TOKEN.findall(text.lower()))
        for version in versions:
            if version in tokens:
                return version
    return None


def backend_texts(service: Manifest, deployments: list[Manifest]) -> list[str]:
    """What tells a backend Service's version: its externalName, selector, or selected pods."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return [str(spec.get("externalName") or "")]
    selector: dict[str, str] = spec.get("selector") or {}
    texts = list(selector.values())
    for deployment in deployments:
        template_labels: dict[str, str] = (
            ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("labels") or {}
        if selector and all(template_labels.get(k) == v for k, v in selector.items()):
            texts.extend(v for k, v in template_labels.items() if k not in selector)
    return texts
