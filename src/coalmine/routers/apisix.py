"""APISIX: the canary ApisixRoute `<routeRef>-<apex>-canary` next to the user's route.

As Flagger's `pkg/router/apisix.go`: from the user's ApisixRoute (`spec.routeRef`) the HTTP route
whose single backend is `<apex>` is copied with `priority: 10000` (so it wins over the user's
route for the same match) and two weighted backends, `<apex>-primary` and `<apex>-canary`, each
with the original backend's port, resolveGranularity and subset. APISIX splits between them with
its traffic-split plugin. The user's route is never modified. The canary route keeps the user's
labels and annotations (an ingress-class annotation must reach the copy too) and
`spec.ingressClassName`, and is owned by the Canary: garbage-collected with it.

Unlike Flagger, Reconcile keeps the live weights when it brings the copy back in step with the
user's route (docs/decisions.md, 'Live weights on reconcile'). A backend named `<apex>-primary`
is recognised as the primary side too, so a route written for a Service target's copies works.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Obj,
    ObjectRef,
    RouterError,
    RouteUpdate,
    TargetKind,
    copied_annotations,
    find,
    merge_onto,
    needs_write,
    new_object,
    require,
    service_names,
    split_from_primary,
)
from coalmine.routers.objects import primary_side
from coalmine.routers.split import SplitRouter

API_VERSION = "apisix.apache.org/v2"
KIND = "ApisixRoute"
CAPABILITIES = PROVIDERS["apisix"].capabilities
#: Flagger's priority of the canary route: above any route a user writes for the same match.
CANARY_PRIORITY = 10000

__all__ = ["ROUTER", "ApisixRouter", "canary_route_name"]


def _route_ref_name(canary: Canary) -> str:
    ref = canary.spec.route_ref
    if ref is None or not ref.name:
        raise RouterError("apisix route selector is empty")
    return ref.name


def canary_route_name(canary: Canary) -> str:
    return f"{_route_ref_name(canary)}-{service_names(canary).apex}-canary"


class ApisixRouter(SplitRouter):
    capabilities = CAPABILITIES
    provider = "apisix"

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [
            ObjectRef(API_VERSION, KIND, _route_ref_name(canary), canary.namespace),
            ObjectRef(API_VERSION, KIND, canary_route_name(canary), canary.namespace),
        ]

    # --- the user's route --------------------------------------------------------------------

    def _matched_http(self, canary: Canary, source: Obj) -> Obj:
        """The user's HTTP route that sends traffic to the apex (Flagger: the last such)."""
        name = f"{source['metadata']['name']}.{canary.namespace}"
        wanted = primary_side(canary)
        matched = [
            http
            for http in (source.get("spec") or {}).get("http") or []
            if any(b.get("serviceName") in wanted for b in http.get("backends") or [])
        ]
        if not matched:
            apex = service_names(canary).apex
            raise RouterError(f"backend {apex} not found in ApisixRoute {name}")
        http: Obj = matched[-1]
        backends = http.get("backends") or []
        if len(backends) != 1:
            raise RouterError(
                f"ApisixRoute {name} http route {http.get('name')!r} must have exactly one "
                f"backend to split, it has {len(backends)}"
            )
        return http

    def _source(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        return require(existing, KIND, _route_ref_name(canary), canary.namespace)

    # --- the canary route --------------------------------------------------------------------

    def _canary_spec(self, canary: Canary, source: Obj, weights: Routes) -> Obj:
        names = service_names(canary)
        http = copy.deepcopy(self._matched_http(canary, source))
        original = http["backends"][0]

        def backend(service: str, weight: int) -> Obj:
            result: Obj = {
                "serviceName": service,
                "servicePort": original.get("servicePort"),
                "weight": weight,
            }
            for key in ("resolveGranularity", "subset"):
                if original.get(key):
                    result[key] = original[key]
            return result

        http["priority"] = CANARY_PRIORITY
        http["backends"] = [
            backend(names.primary, weights.primary_weight),
            backend(names.canary, weights.canary_weight),
        ]
        spec: Obj = {"http": [http]}
        ingress_class = (source.get("spec") or {}).get("ingressClassName")
        if ingress_class:
            spec["ingressClassName"] = ingress_class
        return spec

    def _built(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> Obj:
        """The canary route: the user's labels and annotations, the matched route split."""
        source = self._source(canary, existing)
        source_meta = source.get("metadata") or {}
        return new_object(
            canary,
            API_VERSION,
            KIND,
            canary_route_name(canary),
            self._canary_spec(canary, source, weights),
            labels=source_meta.get("labels"),
            annotations=copied_annotations(source_meta.get("annotations")),
        )

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        current = find(existing, KIND, canary_route_name(canary))
        return [merge_onto(current, self._built(canary, existing, weights))]

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Create the canary route, or bring it back in step with the user's route at the
        weights that are live."""
        current = find(existing, KIND, canary_route_name(canary))
        built = self._built(canary, existing, self._live_weights(canary, existing, current))
        return [merge_onto(current, built)] if needs_write(current, built) else []

    def _live_backends(self, canary: Canary, route: Obj) -> list[Obj]:
        http = (route.get("spec") or {}).get("http") or []
        return (http[0].get("backends") or []) if http else []

    def _route_update(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> RouteUpdate:
        """Set the two backend weights of the live canary route (as Flagger, nothing else)."""
        name = canary_route_name(canary)
        if weights.primary_weight == 0 and weights.canary_weight == 0:
            raise RouterError(f"{KIND} {name}.{canary.namespace} update failed: no valid weights")
        route = copy.deepcopy(require(existing, KIND, name, canary.namespace))
        route.pop("status", None)
        names = service_names(canary)
        wanted = {names.primary: weights.primary_weight, names.canary: weights.canary_weight}
        backends = self._live_backends(canary, route)
        if {b.get("serviceName") for b in backends} != set(wanted):
            raise RouterError(
                f"{KIND} {name}.{canary.namespace} has no backends {names.primary} and "
                f"{names.canary} in its first http route"
            )
        for backend in backends:
            backend["weight"] = wanted[backend["serviceName"]]
        return RouteUpdate([route])

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        name = canary_route_name(canary)
        route = require(existing, KIND, name, canary.namespace)
        primary = service_names(canary).primary
        backend = next(
            (b for b in self._live_backends(canary, route) if b.get("serviceName") == primary),
            None,
        )
        if backend is None:
            raise RouterError(f"{KIND} {name}.{canary.namespace} has no backend {primary}")
        return split_from_primary(backend.get("weight"))

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        problems: list[Problem] = []
        if canary.spec.route_ref is None:
            problems.append(Problem("spec.routeRef", "apisix route selector is empty"))
            return problems
        source = find(existing, KIND, canary.spec.route_ref.name)
        if source is not None:
            try:
                self._matched_http(canary, source)
            except RouterError as error:
                problems.append(Problem("spec.routeRef", str(error)))
        return problems


ROUTER = ApisixRouter()
