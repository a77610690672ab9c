"""`WeightedRouter`: the life cycle shared by the routers whose split lives in one object
`<apex>` (Istio VirtualService, Gateway API HTTPRoute, SMI TrafficSplit, Contour HTTPProxy,
TraefikService, Gloo RouteTable, Kuma TrafficRoute)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.validation.problems import Problem
from coalmine.routers.affinity import (
    TokenSource,
    affinity_of,
    next_cookies,
    random_token,
    reconcile_cookies,
    status_cookies,
)
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.routers.common import (
    Capabilities,
    ObjectRef,
    RouteUpdate,
    TargetKind,
)
from coalmine.routers.objects import (
    Obj,
    RouterError,
    apex_annotations,
    apex_labels,
    find,
    is_external_name,
    merge_onto,
    needs_write,
    new_object,
    require,
    service_names,
)
from coalmine.routers.split import SplitRouter


class WeightedRouter(SplitRouter):
    """Desired / Reconcile / SetRoutes for routers whose split is one object `<apex>` of `kind`
    (Istio VirtualService, Gateway API HTTPRoute, SMI TrafficSplit, Contour HTTPProxy,
    TraefikService).

    The life cycle is the same for all of them: build the objects at the given weights; on Reconcile
    rebuild them at the weights that are live (see docs/decisions.md, 'Live weights on reconcile')
    and write only what differs; on SetRoutes rewrite the routing object. A subclass supplies what
    is its own: the object's shape (`_built`, or `_objects` when it writes more than one object or
    uses session cookies), how weights are read back (`get_routes`), its capabilities and its
    compatibility rules (`_rule_problems`, `_external_name_problems`).
    """

    api_version: str
    kind: str
    provider: str
    capabilities: Capabilities
    #: Refuse SetRoutes(0, 0) with "<Kind> <apex>.<ns> update failed: no valid weights", for the
    #: routers that derive the canary weight as 100 - primary (Contour, Traefik).
    refuses_empty_split: bool = False
    #: Whether the session-affinity cookie life cycle includes the primary cookie.
    sets_primary_cookie: bool = True

    # --- what a subclass defines ----------------------------------------------------------------

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        """The routing object at these weights (routers that override `_objects` need not)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither _built nor _objects")

    def _objects(
        self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies | None
    ) -> list[Obj]:
        """Every object the router writes, the routing object among them. `cookies` are the
        session-affinity cookies to route by; routers without affinity ignore them."""
        return [self._built(canary, weights)]

    @abstractmethod
    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        """The live split, read from the routing object (RouterError when it holds none)."""

    def _live_set_cookies(self, canary: Canary, current: Obj | None) -> dict[str, str]:
        """The Set-Cookie values the live routing object sends (keys `session`, `primary`)."""
        return {}

    def _taking_over(self, canary: Canary, current: Obj, merged: Obj) -> None:
        """Optional hook before Reconcile rewrites a live routing object (Istio keeps the user's
        spec)."""

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        """What this router cannot do with the Canary beyond the shared capability checks."""
        return []

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        """What routing to ExternalName Service copies means for this router."""
        return []

    # --- the shared life cycle ------------------------------------------------------------------

    def _name(self, canary: Canary) -> str:
        return service_names(canary).apex

    def _routing_object(self, canary: Canary, spec: Obj) -> Obj:
        """`<apex>` with this spec, the apex labels and annotations, owned by the Canary."""
        return new_object(
            canary,
            self.api_version,
            self.kind,
            self._name(canary),
            spec,
            labels=apex_labels(canary),
            annotations=apex_annotations(canary),
        )

    def _required(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        """The live routing object; a missing one is "<Kind> <apex>.<ns> get query error"."""
        return require(existing, self.kind, self._name(canary), canary.namespace)

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [ObjectRef(self.api_version, self.kind, self._name(canary), canary.namespace)]

    def _three_way(self, canary: Canary) -> bool:
        return self._capabilities_for(canary).three_way

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        built = self._objects(canary, weights, status_cookies(canary))
        return [merge_onto(find(existing, o["kind"], o["metadata"]["name"]), o) for o in built]

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Objects to write: missing ones, and drifted ones rebuilt at the weights that are live."""
        current = find(existing, self.kind, self._name(canary))
        live = self._live_weights(canary, existing, current)
        cookies = reconcile_cookies(canary, self._live_set_cookies(canary, current))
        writes = []
        for obj in self._objects(canary, live, cookies):
            found = find(existing, obj["kind"], obj["metadata"]["name"])
            if not needs_write(found, obj):
                continue
            merged = merge_onto(found, obj)
            if obj["kind"] == self.kind and found is not None:
                self._taking_over(canary, found, merged)
            writes.append(merged)
        return writes

    def set_routes(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        *,
        baseline_weight: int = 0,
        token: TokenSource = random_token,
    ) -> RouteUpdate:
        """SetRoutes; `token` makes the session-affinity cookie values (tests pass their own)."""
        weights = self._checked(canary, primary_weight, canary_weight, mirrored, baseline_weight)
        return self._route_update(canary, existing, weights, token)

    def _route_update(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        weights: Routes,
        token: TokenSource = random_token,
    ) -> RouteUpdate:
        name = self._name(canary)
        if self.refuses_empty_split and weights.primary_weight == 0 and weights.canary_weight == 0:
            raise RouterError(
                f"{self.kind} {name}.{canary.namespace} update failed: no valid weights"
            )
        current = self._required(canary, existing)
        cookies = None
        if self.capabilities.session_affinity and affinity_of(canary) is not None:
            cookies = next_cookies(
                canary, weights.canary_weight, token, primary_cookie=self.sets_primary_cookie
            )
        built = self._objects(canary, weights, cookies)
        routing = next(o for o in built if o["kind"] == self.kind)
        return RouteUpdate([merge_onto(current, routing)], cookies)

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        problems: list[Problem] = []
        problems += self._rule_problems(canary)
        if is_external_name(target_service):
            problems += self._external_name_problems(canary)
        return problems
