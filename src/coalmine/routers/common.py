"""The contract of the pure routers: the `PureRouter` protocol and what it returns (object
references, finalize actions, route updates), provider strings, and the capability checks every
router's `compatibility()` shares.

Every router module is a set of pure functions over plain dicts (the routing objects as the API
server stores them). The I/O layer reads the objects from the watch cache, hands them in as
`existing`, and writes whatever comes back; nothing here talks to Kubernetes. The shared pieces
live by concern: `objects` (names, metadata, comparison and merging), `weights`, `affinity`
(session-affinity cookies) and `weighted` (`WeightedRouter`, the life cycle of the routers whose
split is one object `<apex>`); this module re-exports the first three for the routers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from coalmine.api import providers
from coalmine.api.models import ABMatch, Canary
from coalmine.api.validation.problems import Problem
from coalmine.routers.affinity import (
    COOKIE_HEADER,
    SET_COOKIE_HEADER,
    TokenSource,
    affinity_of,
    build_cookie,
    cookie_regex,
    next_cookies,
    primary_cookie_max_age,
    random_token,
    reconcile_cookies,
    status_cookies,
    sticky_set_cookie,
)
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.routers.objects import (
    Obj,
    RouterError,
    ServiceNames,
    apex_annotations,
    apex_labels,
    contained_in,
    copied_annotations,
    drop_none,
    find,
    is_external_name,
    merge_onto,
    needs_write,
    new_object,
    owner_reference,
    require,
    service_names,
    wire,
    with_toolkit_annotations,
)
from coalmine.routers.weights import (
    INITIAL_WEIGHTS,
    check_weights,
    refuse_baseline,
    split_from_primary,
    weight_from,
)
from coalmine.targets import kinds as target_kinds

__all__ = [
    "COOKIE_HEADER",
    "INITIAL_WEIGHTS",
    "SET_COOKIE_HEADER",
    "Capabilities",
    "Delete",
    "FinalizeAction",
    "Obj",
    "ObjectRef",
    "ProviderSpec",
    "PureRouter",
    "RouteUpdate",
    "RouterError",
    "Routes",
    "ServiceNames",
    "TargetKind",
    "TokenSource",
    "Write",
    "affinity_of",
    "apex_annotations",
    "apex_labels",
    "build_cookie",
    "capability_problems",
    "check_weights",
    "contained_in",
    "cookie_regex",
    "copied_annotations",
    "drop_none",
    "find",
    "ignored_match_fields",
    "is_external_name",
    "merge_onto",
    "needs_write",
    "new_object",
    "next_cookies",
    "owner_reference",
    "parse_provider",
    "primary_cookie_max_age",
    "random_token",
    "reconcile_cookies",
    "refuse_baseline",
    "require",
    "service_names",
    "split_from_primary",
    "status_cookies",
    "sticky_set_cookie",
    "weight_from",
    "wire",
    "with_toolkit_annotations",
]


# Provider strings are parsed by the provider table (re-exported here for the routers).
ProviderSpec = providers.ProviderSpec
parse_provider = providers.parse


@dataclass(frozen=True)
class ObjectRef:
    """An object a router reads or writes, so the I/O layer knows what to watch and fetch."""

    api_version: str
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Delete:
    """Finalize action: delete this object."""

    ref: ObjectRef


@dataclass(frozen=True)
class Write:
    """Finalize action: replace the object with this one (it carries resourceVersion when known)."""

    obj: Obj


FinalizeAction = Delete | Write


@dataclass(frozen=True)
class RouteUpdate:
    """What SetRoutes produces: objects to write, and status fields when session affinity is used."""

    objects: list[Obj]
    cookies: SessionAffinityCookies | None = None


# A key of the target-kind table (`coalmine.targets.kinds`).
TargetKind = target_kinds.TargetKind


class PureRouter(Protocol):
    """The pure half of a router; the I/O half (base.py's Router) fetches `existing` and writes."""

    provider: str
    capabilities: Capabilities

    def references(self, canary: Canary) -> list[ObjectRef]: ...

    def desired(
        self,
        canary: Canary,
        *,
        existing: Sequence[Obj] = (),
        primary_weight: int = 100,
        canary_weight: int = 0,
        mirrored: bool = False,
    ) -> list[Obj]: ...

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]: ...

    def set_routes(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        *,
        baseline_weight: int = 0,
    ) -> RouteUpdate: ...

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes: ...

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]: ...

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]: ...


# --- capability checks shared by compatibility() ------------------------------------------------


Capabilities = providers.Capabilities


def capability_problems(canary: Canary, router: str, capabilities: Capabilities) -> list[Problem]:
    """What the Canary asks of a router that lacks it. Only what cannot work is an error: an A/B
    run on a router without header matching (all traffic would go to the canary) and TCP on an
    HTTP router. Mirroring and session affinity a router lacks are ignored, as Flagger does."""
    analysis = canary.spec.effective_analysis
    problems: list[Problem] = []
    if analysis and analysis.match and not capabilities.ab_testing:
        problems.append(
            Problem(
                "spec.analysis.match",
                f"the {router} router cannot route by header or cookie; an A/B run would send "
                "all traffic to the canary",
            )
        )
    if analysis and analysis.mirror and not capabilities.mirroring:
        problems.append(
            Problem(
                "spec.analysis.mirror",
                f"the {router} router cannot mirror traffic; the setting is ignored (no mirror "
                "step: a canary run shifts real traffic from its first step)",
                "warning",
            )
        )
    if analysis and analysis.session_affinity and not capabilities.session_affinity:
        problems.append(
            Problem(
                "spec.analysis.sessionAffinity",
                f"the {router} router has no session affinity; the setting is ignored",
                "warning",
            )
        )
    service = canary.spec.service  # a Knative Service target has none
    if service and (service.app_protocol or "").lower() == "tcp" and not capabilities.tcp:
        problems.append(
            Problem("spec.service.appProtocol", f"tcp: the {router} router routes HTTP only")
        )
    return problems


def ignored_match_fields(index: int, match: ABMatch, router: str, matches: str) -> list[Problem]:
    """A/B match fields a header-matching router would drop: the A/B route would then match
    more than the user asked for."""
    return [
        Problem(
            f"spec.analysis.match[{index}]",
            f"the {router} router matches {matches} only; {key} would be ignored",
        )
        for key in ("query_params", "uri", "method", "source_labels")
        if getattr(match, key) is not None
    ]
