"""`SplitRouter`: the weight-taking entry points of the `PureRouter` contract (Desired, SetRoutes),
written once for every router.

Each router would otherwise restate the same steps before doing its own work: check the weights,
refuse a baseline share when it splits two ways, pack the weights into `Routes`, and on Reconcile
fall back to 100/0 when the live split cannot be read. A subclass supplies only the objects
(`_desired_objects`) and the write (`_route_update`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Capabilities,
    FinalizeAction,
    RouteUpdate,
    TargetKind,
    capability_problems,
)
from coalmine.routers.objects import Obj, RouterError
from coalmine.routers.weights import INITIAL_WEIGHTS, check_weights, refuse_baseline


class SplitRouter(ABC):
    """Desired and SetRoutes of a router: checked weights in, the router's objects out."""

    provider: str
    capabilities: Capabilities

    # --- what a subclass defines ----------------------------------------------------------------

    @abstractmethod
    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        """The objects the router wants at these weights (Desired)."""

    @abstractmethod
    def _route_update(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> RouteUpdate:
        """The write that puts the live routing object at these weights (SetRoutes)."""

    @abstractmethod
    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        """The live split (RouterError when the routing object holds none)."""

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        """What this router cannot do with the Canary beyond the shared capability checks."""
        return []

    def _capabilities_for(self, canary: Canary) -> Capabilities:
        """What the router can do for this Canary (Istio: less for a TCP route)."""
        return self.capabilities

    def _three_way(self, canary: Canary) -> bool:
        """Whether the router routes a baseline share for this Canary (two-way routers refuse)."""
        return False

    # --- the shared steps -----------------------------------------------------------------------

    def _checked(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool, baseline: int
    ) -> Routes:
        """The split SetRoutes was asked for, refused when negative or three-way on a two-way
        router."""
        check_weights(primary, canary_weight, baseline)
        if not self._three_way(canary):
            refuse_baseline(self.provider, baseline)
        return Routes(primary, canary_weight, mirrored, baseline)

    def _live_weights(self, canary: Canary, existing: Sequence[Obj], current: Obj | None) -> Routes:
        """The weights Reconcile keeps (docs/decisions.md, 'Live weights on reconcile'): the live
        ones, or 100/0 when there is no routing object yet or its split cannot be read."""
        if current is None:
            return INITIAL_WEIGHTS
        try:
            return self.get_routes(canary, existing)
        except RouterError:
            return INITIAL_WEIGHTS

    def desired(
        self,
        canary: Canary,
        *,
        existing: Sequence[Obj] = (),
        primary_weight: int = 100,
        canary_weight: int = 0,
        mirrored: bool = False,
    ) -> list[Obj]:
        check_weights(primary_weight, canary_weight)
        weights = Routes(primary_weight, canary_weight, mirrored)
        return self._desired_objects(canary, existing, weights)

    def set_routes(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        *,
        baseline_weight: int = 0,
    ) -> RouteUpdate:
        weights = self._checked(canary, primary_weight, canary_weight, mirrored, baseline_weight)
        return self._route_update(canary, existing, weights)

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Nothing to undo by default: owner references garbage-collect what the router wrote."""
        return []

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]:
        problems = capability_problems(canary, self.provider, self._capabilities_for(canary))
        return problems + self._router_problems(canary, target_kind, target_service, existing)
