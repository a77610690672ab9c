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

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    Delete,
    FinalizeAction,
    Obj,
    ObjectRef,
    RouterError,
    RouteUpdate,
    TargetKind,
    capability_problems,
    check_weights,
    find,
    owner_reference,
    refuse_baseline,
    require,
    service_names,
    weight_from,
    with_toolkit_annotations,
)

API_VERSION = "networking.k8s.io/v1"
KIND = "Ingress"
CAPABILITIES = PROVIDERS["skipper"].capabilities
BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
ROUTE_WEIGHT = "Weight(100)"
ROUTE_DISABLE = "False()"

__all__ = ["ROUTER", "SkipperRouter", "insert_predicate"]


def _ingress_ref_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None or not ref.name:
        raise RouterError("ingress selector is empty")
    return ref.name


def canary_ingress_name(canary: Canary) -> str:
    return naming.canary_name(_ingress_ref_name(canary))


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


class SkipperRouter:
    capabilities = CAPABILITIES
    provider = "skipper"

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [
            ObjectRef(API_VERSION, KIND, _ingress_ref_name(canary), canary.namespace),
            ObjectRef(API_VERSION, KIND, canary_ingress_name(canary), canary.namespace),
        ]

    @staticmethod
    def _primary_side(canary: Canary) -> set[str]:
        names = service_names(canary)
        return {names.apex, names.primary}

    def _canary_spec(self, canary: Canary, source: Obj) -> Obj:
        """Every path to the primary side → `<apex>-primary`, plus a copy to `<apex>-canary`."""
        names = service_names(canary)
        spec = copy.deepcopy(source.get("spec") or {})
        found = False
        for paths in _paths(spec):
            for path in list(paths):
                service = _service_of(path)
                if service is None or service.get("name") not in self._primary_side(canary):
                    continue
                service["name"] = names.primary
                duplicate = copy.deepcopy(path)
                duplicate["backend"]["service"]["name"] = names.canary
                paths.append(duplicate)
                found = True
        if not found:
            raise RouterError(
                f"backend {names.apex} not found in ingress {source['metadata']['name']}"
            )
        return spec

    def _annotations(self, canary: Canary, base: dict[str, str], weights: Routes) -> Obj:
        names = service_names(canary)
        annotations = with_toolkit_annotations(
            {k: v for k, v in base.items() if k != naming.KUBECTL_LAST_APPLIED_ANNOTATION}
        )
        annotations[BACKEND_WEIGHTS] = _weights_json(
            {names.primary: weights.primary_weight, names.canary: weights.canary_weight}
        )
        annotations[PREDICATE] = insert_predicate(annotations.get(PREDICATE), ROUTE_WEIGHT)
        return annotations

    def _source(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        return require(existing, KIND, _ingress_ref_name(canary), canary.namespace)

    def _created(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        """The canary Ingress as Flagger creates it: the user's labels and annotations, 100/0."""
        source = self._source(canary, existing)
        source_meta = source.get("metadata") or {}
        metadata: Obj = {
            "name": canary_ingress_name(canary),
            "namespace": canary.namespace,
            "annotations": self._annotations(
                canary, dict(source_meta.get("annotations") or {}), INITIAL_WEIGHTS
            ),
            "ownerReferences": [owner_reference(canary)],
        }
        if source_meta.get("labels"):
            metadata["labels"] = dict(source_meta["labels"])
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": self._canary_spec(canary, source),
        }

    def _weighted(self, canary: Canary, current: Obj, weights: Routes) -> Obj:
        """The live canary Ingress with these weights (SetRoutes)."""
        updated = copy.deepcopy(current)
        updated.pop("status", None)
        metadata = updated["metadata"]
        annotations = self._annotations(canary, dict(metadata.get("annotations") or {}), weights)
        if weights.canary_weight == 0:
            annotations[PREDICATE] = insert_predicate(annotations[PREDICATE], ROUTE_DISABLE)
        metadata["annotations"] = annotations
        return updated

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
        created = self._created(canary, existing)
        if (primary_weight, canary_weight) == (100, 0):
            return [created]
        return [self._weighted(canary, created, Routes(primary_weight, canary_weight))]

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Create the canary Ingress, or update its spec when the user's Ingress changed; the
        annotations (the live weights) are left as they are."""
        current = find(existing, KIND, canary_ingress_name(canary))
        if current is None:
            return [self._created(canary, existing)]
        spec = self._canary_spec(canary, self._source(canary, existing))
        if spec == current.get("spec"):
            return []
        updated = copy.deepcopy(current)
        updated.pop("status", None)
        updated["spec"] = spec
        return [updated]

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
        refuse_baseline(self.provider, baseline_weight)
        check_weights(primary_weight, canary_weight)
        current = require(existing, KIND, canary_ingress_name(canary), canary.namespace)
        return RouteUpdate([self._weighted(canary, current, Routes(primary_weight, canary_weight))])

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

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Delete the canary Ingress (as Flagger): the user's Ingress routes alone again."""
        name = canary_ingress_name(canary)
        if find(existing, KIND, name) is None:
            return []
        return [Delete(ObjectRef(API_VERSION, KIND, name, canary.namespace))]

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]:
        problems = capability_problems(canary, self.provider, CAPABILITIES)
        ref = canary.spec.ingress_ref
        if ref is None:
            problems.append(Problem("spec.ingressRef", "ingress selector is empty"))
            return problems
        source = find(existing, KIND, ref.name)
        if source is None:
            return problems
        routed = {
            (_service_of(path) or {}).get("name")
            for paths in _paths(source.get("spec") or {})
            for path in paths
        } - {None}
        names = service_names(canary)
        if not routed & self._primary_side(canary):
            problems.append(
                Problem("spec.ingressRef", f"backend {names.apex} not found in ingress {ref.name}")
            )
        target = canary.spec.target_ref.name
        if target_kind == "Service" and target in routed and target != names.primary:
            problems.append(
                Problem(
                    "spec.ingressRef",
                    f"Ingress {ref.name} routes to Service {target}, the canary's target: at "
                    f"canary weight 0 Skipper routes through it alone and the new version would "
                    f"get all traffic; route the Ingress to {names.primary}",
                )
            )
        return problems


ROUTER = SkipperRouter()
