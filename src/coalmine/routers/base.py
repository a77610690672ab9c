"""The seams between the scheduler and traffic routing.

Two kinds of router take part in every cycle, as in Flagger:

* the *service router* (`ServiceRouter`) owns the ClusterIP Services `<apex>`, `<apex>-primary`
  and `<apex>-canary` of Deployment/DaemonSet targets (Flagger's KubernetesDefaultRouter); for
  Service targets it is a no-op;
* the *mesh router* (`Router`), one per provider (istio, gatewayapi, nginx, ... and the no-op
  `kubernetes`), owns the weighted routing object.

The router is the source of truth for weights: the scheduler reads them back with `get_routes`
every cycle and never trusts `status.canaryWeight` for a decision. That is what makes a crash
between `set_routes` and the status write harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from coalmine.api.models import Canary
from coalmine.targets.base import TargetMetadata


@dataclass(frozen=True)
class Routes:
    """The split as it is live: percentages of traffic and whether the canary gets a mirror copy.

    `baseline_weight` is the share of a fresh baseline (`spec.analysis.baseline`), taken from the
    primary's: 0 for every two-way split, so two-way routers never see it.
    """

    primary_weight: int
    canary_weight: int
    mirrored: bool = False
    baseline_weight: int = 0

    @property
    def primary_share(self) -> int:
        """What the two-way weight arithmetic counts as the primary's: its own and the
        baseline's (the baseline's traffic comes out of it)."""
        return self.primary_weight + self.baseline_weight


@dataclass(frozen=True)
class SessionAffinityCookies:
    """`status.*SessionAffinityCookie` values a router chose while setting routes.

    A router with session affinity (Istio, Gateway API v1) returns the values the status must hold
    after `set_routes` (None means "clear the field"); the scheduler persists them with the status
    write that follows in the same cycle, as Flagger does.
    """

    session_affinity_cookie: str | None = None
    primary_session_affinity_cookie: str | None = None
    previous_session_affinity_cookie: str | None = None


class Router(Protocol):
    """A provider's routing object (VirtualService, HTTPRoute, Ingress, ...)."""

    #: Whether `set_routes(..., mirrored=True)` really mirrors (Istio, Gateway API). When False
    #: the scheduler ignores `analysis.mirror` instead of waiting at weight 0 for a mirror that
    #: never comes (see docs/decisions.md, 'Mirroring').
    supports_mirroring: bool

    async def reconcile(self, canary: Canary) -> None:
        """Create or adopt the routing object (initially 100/0); later keep the live weights."""
        ...

    async def set_routes(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool,
        *,
        baseline_weight: int = 0,
    ) -> SessionAffinityCookies | None:
        """Write the split; return the cookie fields to persist, or None when not applicable.

        `baseline_weight` > 0 only for routers that split three ways (the verdict refuses a
        baseline on the others)."""
        ...

    async def get_routes(self, canary: Canary) -> Routes:
        """Read the live split back (raises when the routing object is missing or unreadable)."""
        ...

    async def finalize(self, canary: Canary) -> None:
        """revertOnDeletion: restore or remove what the router changed."""
        ...


class ServiceRouter(Protocol):
    """The Kubernetes Services of a canary (Flagger's KubernetesDefaultRouter / NoopRouter)."""

    async def initialize(self, canary: Canary, metadata: TargetMetadata) -> None:
        """Create/update `<apex>-canary` and `<apex>-primary` (step 4 of a cycle)."""
        ...

    async def reconcile(self, canary: Canary, metadata: TargetMetadata) -> None:
        """Create/update the apex Service pointing at the primary (step 9 of a cycle)."""
        ...

    async def finalize(self, canary: Canary, metadata: TargetMetadata) -> None:
        """revertOnDeletion: point a pre-existing apex Service back at the target's pods."""
        ...
