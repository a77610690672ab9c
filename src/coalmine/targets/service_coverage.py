"""Which traffic follows the canary weights, per provider and target kind, and what a Service
target cannot be used with. Pure: the same verdict for `coalmine check`, the controller and
`coalmine status` (docs/targets.md, "Which traffic is canaried").

A mesh routes every in-mesh call to the apex name; a gateway or ingress routes only what passes
through it; `provider: kubernetes` routes nothing. For a Deployment target the apex Service keeps
selecting the primary pods, so traffic that does not follow the weights stays on the last good
version. For a Service target it is the user's Service itself that changes, so every client that
calls it without going through the router moves to the new version at once: that is the trap this
module names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from coalmine.api import naming, providers
from coalmine.api.models import Canary
from coalmine.api.providers import Scope

EventKind = Literal["Normal", "Warning"]

COVERAGE_CONDITION = "TrafficCoverage"
BUILTIN_CHECKS = ("request-success-rate", "request-duration")


@dataclass(frozen=True)
class Coverage:
    """What follows the weights: `scope`, the condition's reason and status, and one sentence."""

    scope: Scope
    sentence: str

    @property
    def complete(self) -> bool:
        """Every caller of the apex name follows the weights (a mesh)."""
        return self.scope == "mesh"

    @property
    def event_type(self) -> EventKind:
        return "Normal" if self.complete else "Warning"

    @property
    def reason(self) -> str:
        return {"mesh": "InMeshClients", "edge": "GatewayTrafficOnly", "copies": "CopiesOnly"}[
            self.scope
        ]


def provider_of(canary: Canary, mesh_provider: str | None) -> str:
    """The provider the controller routes this canary with (`spec.provider`, else the flag)."""
    return providers.effective(canary.spec.provider, mesh_provider)


def scope_of(provider: str) -> Scope:
    """mesh, edge (gateway/ingress) or copies (`kubernetes`): the provider table's `scope`."""
    return providers.resolve(provider).scope


def _sentence(canary: Canary, provider: str, scope: Scope) -> str:
    ns = canary.namespace
    target = f"{canary.spec.target_ref.name}.{ns}"
    apex = canary.spec.apex_name
    primary, copy = naming.primary_name(apex), naming.canary_name(apex)
    service = canary.spec.target_ref.is_core_service
    if scope == "copies":
        if service:
            return (
                f"provider kubernetes: no traffic follows the canary weights; only clients of "
                f"{primary} and {copy} are kept apart, and every client of {target} moves to a "
                f"new revision as soon as the Service changes"
            )
        return (
            f"provider kubernetes: no traffic follows the canary weights; clients of {apex} stay "
            f"on the primary until promotion (blue/green)"
        )
    if scope == "edge":
        through = providers.resolve(provider).through
        rest = (
            f"in-cluster clients of {target} move to a new revision as soon as the Service changes"
            if service
            else f"in-cluster clients of {apex} stay on the primary until promotion"
        )
        return f"provider {provider}: only traffic through {through} follows the canary weights; {rest}"
    outside = (
        f"clients outside the mesh calling {target} move to a new revision as soon as the Service "
        f"changes"
        if service
        else "clients outside the mesh stay on the primary until promotion"
    )
    return f"provider {provider}: in-mesh clients of {apex} follow the canary weights; {outside}"


def routing_coverage(canary: Canary, mesh_provider: str | None = None) -> Coverage:
    """Which traffic follows the weights for this canary (any target kind)."""
    provider = provider_of(canary, mesh_provider)
    scope = scope_of(provider)
    return Coverage(scope, _sentence(canary, provider, scope))


def has_selector(service: Mapping[str, Any]) -> bool:
    """A Service whose endpoints the cluster computes (a selector) or an ExternalName."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) or spec.get("type") == "ExternalName"


def selectorless_reason(canary: Canary, service: Mapping[str, Any] | None) -> str:
    """Why a target Service without a selector is refused, or "" (see docs/decisions.md)."""
    if service is None or not canary.spec.target_ref.is_core_service or has_selector(service):
        return ""
    name = f"{canary.spec.target_ref.name}.{canary.namespace}"
    return (
        f"spec.targetRef: Service {name} has no selector (its endpoints are managed by hand): its "
        f"copies would have no endpoints and routed traffic would go nowhere, and an endpoint "
        f"change is not a new revision; give the Service a selector, or use an ExternalName"
    )


def builtin_checks_reason(canary: Canary, mesh_provider: str | None) -> str:
    """Why builtin checks cannot measure this canary, or "".

    With `provider: kubernetes` and a Service target nothing isolates the canary copy's traffic:
    pods are named after their own workloads and the copies have no proxy in front of them.
    """
    if not canary.spec.target_ref.is_core_service:
        return ""
    if scope_of(provider_of(canary, mesh_provider)) != "copies":
        return ""
    analysis = canary.spec.effective_analysis
    field = "analysis" if canary.spec.analysis is not None else "canaryAnalysis"
    for position, metric in enumerate((analysis.metrics or []) if analysis else []):
        if metric.name in BUILTIN_CHECKS and not metric.template_ref and not metric.query:
            return (
                f"spec.{field}.metrics[{position}]: the builtin check {metric.name} cannot "
                f"isolate the canary copy's traffic of a Service target with provider kubernetes "
                f"(pods are named after their own workloads, and no router reports per "
                f"Service); measure it with a MetricTemplate (templateRef) that selects the new "
                f"version's pods or a router that can route this Service"
            )
    return ""
