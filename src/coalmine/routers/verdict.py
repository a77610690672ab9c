"""One verdict on a Canary for `coalmine check` and the controller: the same pure functions.

`compatibility()` says what the canary's provider and target can and cannot do (its router's
`compatibility()`, the provider table's refusals, the Service-target rules); `judge()` is the
controller's whole refusal decision for one Canary object — the spec rules (`InvalidSpec`), then
the routing rules (`UnsupportedRouting`) — and `coalmine check` reports every problem both find.
Errors are what cannot work; warnings are what Flagger ran and coalmine runs too (docs/api.md,
"One verdict").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from coalmine.api import providers
from coalmine.api.models import Canary
from coalmine.api.refusals import Refusal
from coalmine.api.validation import ManifestError, Problem, parse_canary, summarize_problems
from coalmine.routers.common import RouterError
from coalmine.routers.registry import router_for
from coalmine.targets.kinds import target_key
from coalmine.targets.service_coverage import (
    builtin_checks_reason,
    routing_coverage,
    selectorless_reason,
)

Obj = Mapping[str, Any]
ServiceLookup = Callable[[Canary], Obj | None]


@dataclass(frozen=True)
class Options:
    """The controller flags that change the verdict (`coalmine check` takes the same ones)."""

    mesh_provider: str = providers.DEFAULT_MESH_PROVIDER
    no_cross_namespace_refs: bool = False
    ingress_class: str = ""
    ingress_annotations_prefix: str | None = None
    mesh_name: str = ""


@dataclass(frozen=True)
class Verdict:
    """The controller's decision on one Canary object: the canary as read (None when it cannot
    be read), and, when it is refused, the condition reason and the problems why."""

    canary: Canary | None
    reason: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def refusal(self) -> Refusal | None:
        """The `Valid=False` condition to record (`coalmine.api.refusals`), None: it runs."""
        if not self.reason:
            return None
        return Refusal(self.reason, summarize_problems(self.problems))


def _reason_problem(reason: str) -> Problem:
    """A `path: reason` text (service_coverage's refusals) as a Problem."""
    path, _, text = reason.partition(": ")
    return Problem(path, text)


def _not_ab(problem: Problem, canary: Canary) -> Problem:
    """A match a router cannot honour breaks only an A/B run; otherwise it is a leftover that
    neither Flagger nor coalmine uses (no iterations), so a warning."""
    if problem.severity != "error" or not problem.path.startswith("spec.analysis.match"):
        return problem
    if canary.spec.strategy == "ab-testing":
        return problem
    reason = f"{problem.reason}; ignored: without iterations this is not an A/B run"
    return replace(problem, reason=reason, severity="warning")


def _service_target(canary: Canary, service: Obj | None, mesh_provider: str) -> list[Problem]:
    if not canary.spec.target_ref.is_core_service:
        return []
    path = "spec.provider" if canary.spec.provider else "spec.targetRef"
    problems = [Problem(path, routing_coverage(canary, mesh_provider).sentence, "warning")]
    for reason in (
        selectorless_reason(canary, service),
        builtin_checks_reason(canary, mesh_provider),
    ):
        if reason:
            problems.append(_reason_problem(reason))
    return problems


def baseline_routing(canary: Canary, provider: str) -> list[Problem]:
    """A fresh baseline needs a router that splits three ways (primary, canary, baseline)."""
    if not canary.spec.wants_baseline or providers.resolve(provider).capabilities.three_way:
        return []
    able = ", ".join(providers.with_capability("three_way"))
    return [
        Problem(
            "spec.analysis.baseline.enabled",
            f"the {provider} router cannot split traffic three ways (primary, canary, baseline), "
            f"so a fresh baseline cannot get the canary's share; routers that can: {able}. "
            "Without a baseline the judge compares the canary with the primary",
        )
    ]


def compatibility(canary: Canary, options: Options, service: Obj | None = None) -> list[Problem]:
    """What the provider and target make of this canary; `service` is the live target Service
    (None when unknown, as for `coalmine check`: rules that need it are then skipped)."""
    provider = providers.effective(canary.spec.provider, options.mesh_provider)
    try:
        selection = router_for(
            provider,
            ingress_class=options.ingress_class or None,
            ingress_annotations_prefix=options.ingress_annotations_prefix,
            mesh_name=options.mesh_name,
        )
    except RouterError as error:
        return [Problem("spec.provider", str(error))]
    problems = _service_target(canary, service, options.mesh_provider)
    problems += baseline_routing(canary, provider)
    if selection.warning:
        problems.append(Problem("spec.provider", selection.warning, "warning"))
    if selection.router is not None:
        ref = canary.spec.target_ref
        target = target_key(ref.api_version, ref.kind)
        routing = selection.router.compatibility(canary, target, dict(service) if service else None)
        problems += [_not_ab(problem, canary) for problem in routing]
    return problems


def judge(obj: Obj, options: Options, service_of: ServiceLookup | None = None) -> Verdict:
    """The controller's decision on one Canary object; `service_of` reads the target Service."""
    try:
        canary = parse_canary(
            obj,
            no_cross_namespace_refs=options.no_cross_namespace_refs,
            mesh_provider=options.mesh_provider,
        )
    except ManifestError as error:
        return Verdict(None, "InvalidSpec", tuple(error.errors))
    service = service_of(canary) if service_of is not None else None
    errors = [p for p in compatibility(canary, options, service) if p.severity == "error"]
    return Verdict(canary, "UnsupportedRouting" if errors else "", tuple(errors))
