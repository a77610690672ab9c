"""Skipper: the canary Ingress `<ingressRef>-canary` with Zalando's backend-weight annotations.

As Flagger's `pkg/router/skipper.go`: the canary Ingress is a copy of the user's Ingress in which
every path to `<apex>` is pointed at `<apex>-primary` and a duplicate path to `<apex>-canary` is
appended; `zalando.org/backend-weights` holds both weights as JSON and
`zalando.org/skipper-predicate` gets `Weight(100)` first, so the canary Ingress' routes win over
the user's Ingress for the same host and path. At canary weight 0 SetRoutes also puts `False()`
first, which switches the canary Ingress' routes off: the user's Ingress routes alone. Skipper
needs the canary Ingress for any split; the user's Ingress is never modified.

Service targets: at weight 0 the user's Ingress routes alone, so it must route to
`<apex>-primary` (the copy holding the last good spec), not to the target Service itself;
`compatibility` reports that as fatal, and backends named `<apex>-primary` are recognised as the
primary side for that reason. Unlike Flagger, Reconcile keeps the live weights (it rewrites the
spec only, see docs/decisions.md, 'Live weights on reconcile').
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.routers.base import Routes
from coalmine.routers.canary_ingress import (
    KIND,
    CanaryIngressRouter,
    canary_ingress_name,
)
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    Obj,
    RouterError,
    copied_annotations,
    require,
    service_names,
    weight_from,
)
from coalmine.routers.objects import primary_side

CAPABILITIES = PROVIDERS["skipper"].capabilities
BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
ROUTE_WEIGHT = "Weight(100)"
ROUTE_DISABLE = "False()"

__all__ = ["ROUTER", "SkipperRouter", "insert_predicate"]


def insert_predicate(raw: str | None, insert: str) -> str:
    """`insert` first, then the user's predicates without ours (Flagger's insertPredicate)."""
    predicates = [insert]
    for part in (raw or "").split("&&"):
        predicate = part.strip()
        if predicate and predicate not in (ROUTE_WEIGHT, ROUTE_DISABLE):
            predicates.append(predicate)
    return " && ".join(predicates)


def _weights_json(weights: dict[str, int]) -> str:
    """As Go's json.Marshal of a map writes it: keys sorted, compact."""
    return json.dumps(weights, sort_keys=True, separators=(",", ":"))


def _paths(spec: Obj) -> Iterator[list[Obj]]:
    for rule in spec.get("rules") or []:
        paths = (rule.get("http") or {}).get("paths")
        if paths:
            yield paths


def _service_of(path: Obj) -> Obj | None:
    service = (path.get("backend") or {}).get("service")
    return service if isinstance(service, dict) else None


class SkipperRouter(CanaryIngressRouter):
    capabilities = CAPABILITIES
    provider = "skipper"
    target_consequence = (
        "at canary weight 0 Skipper routes through it alone and the new version would get all "
        "traffic"
    )

    def _backends(self, spec: Obj) -> Iterator[Obj]:
        for paths in _paths(spec):
            for path in paths:
                service = _service_of(path)
                if service is not None:
                    yield service

    def _split_backends(self, canary: Canary, spec: Obj) -> bool:
        """Every path to the primary side → `<apex>-primary`, plus a copy to `<apex>-canary`."""
        names = service_names(canary)
        found = False
        for paths in _paths(spec):
            for path in list(paths):
                service = _service_of(path)
                if service is None or service.get("name") not in primary_side(canary):
                    continue
                service["name"] = names.primary
                duplicate = copy.deepcopy(path)
                duplicate["backend"]["service"]["name"] = names.canary
                paths.append(duplicate)
                found = True
        return found

    def _annotations(self, canary: Canary, base: dict[str, str], weights: Routes) -> Obj:
        names = service_names(canary)
        annotations = copied_annotations(base)
        annotations[BACKEND_WEIGHTS] = _weights_json(
            {names.primary: weights.primary_weight, names.canary: weights.canary_weight}
        )
        annotations[PREDICATE] = insert_predicate(annotations.get(PREDICATE), ROUTE_WEIGHT)
        return annotations

    def _reweighted(
        self, canary: Canary, existing: Sequence[Obj], current: Obj, weights: Routes
    ) -> Obj:
        """The live canary Ingress with these weights; at canary weight 0 its routes are off."""
        updated = super()._reweighted(canary, existing, current, weights)
        annotations = updated["metadata"]["annotations"]
        if weights.canary_weight == 0:
            annotations[PREDICATE] = insert_predicate(annotations[PREDICATE], ROUTE_DISABLE)
        return updated

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        """As Flagger creates it at 100/0, else reweighted as SetRoutes would."""
        created = self._created(canary, existing, INITIAL_WEIGHTS)
        if (weights.primary_weight, weights.canary_weight) == (100, 0):
            return [created]
        return [self._reweighted(canary, existing, created, weights)]

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        name = f"{canary_ingress_name(canary)}.{canary.namespace}"
        ingress = require(existing, KIND, canary_ingress_name(canary), canary.namespace)
        raw = (ingress.get("metadata", {}).get("annotations") or {}).get(BACKEND_WEIGHTS)
        if raw is None:
            raise RouterError(f"Ingress {name} has no {BACKEND_WEIGHTS} annotation")
        try:
            weights = json.loads(raw)
        except json.JSONDecodeError as error:
            raise RouterError(f"Ingress {name} {BACKEND_WEIGHTS} is not JSON: {error}") from error
        if not isinstance(weights, dict):
            raise RouterError(f"Ingress {name} {BACKEND_WEIGHTS} is not a JSON object")
        names = service_names(canary)
        for side, service in (("primary", names.primary), ("canary", names.canary)):
            if service not in weights:
                raise RouterError(f"Ingress {name}: {side} weight not found for {service}")
        return Routes(weight_from(weights[names.primary]), weight_from(weights[names.canary]))


ROUTER = SkipperRouter()
