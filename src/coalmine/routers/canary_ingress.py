"""`CanaryIngressRouter`: the life cycle of the routers that split through a canary Ingress
`<ingressRef>-canary` next to the user's Ingress (NGINX, Skipper).

Both copy the user's Ingress (its labels, annotations and spec), point the copy's primary-side
backends where the provider wants them, and carry the weights in annotations; the user's Ingress
is never modified. Reconcile creates the copy, or rewrites its spec when the user's Ingress
changed and leaves the annotations (the live weights) as they are; Finalize deletes it. A
subclass supplies the provider's part: the backend rewrite (`_split_backends`), the annotations
for a split (`_annotations`), how weights are read back (`get_routes`) and its own compatibility
rules.

Service targets: the user's Ingress must route to `<apex>-primary`, the copy holding the last
good spec, not to the target Service itself (`compatibility` reports that as fatal, with the
provider's consequence); backends named `<apex>-primary` are recognised as the primary side for
that reason.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Iterator, Sequence

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    Capabilities,
    Delete,
    FinalizeAction,
    ObjectRef,
    RouteUpdate,
    TargetKind,
)
from coalmine.routers.objects import (
    Obj,
    RouterError,
    find,
    is_external_name,
    new_object,
    primary_side,
    require,
    service_names,
)
from coalmine.routers.split import SplitRouter

API_VERSION = "networking.k8s.io/v1"
KIND = "Ingress"

__all__ = ["API_VERSION", "KIND", "CanaryIngressRouter", "canary_ingress_name", "ingress_ref_name"]


def ingress_ref_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None or not ref.name:
        raise RouterError("ingress selector is empty")
    return ref.name


def canary_ingress_name(canary: Canary) -> str:
    return naming.canary_name(ingress_ref_name(canary))


class CanaryIngressRouter(SplitRouter):
    """References / Desired / Reconcile / SetRoutes / Finalize / compatibility of a canary
    Ingress router; see the module docstring for what a subclass defines."""

    capabilities: Capabilities
    #: What routing the user's Ingress to the Service target itself would do (compatibility).
    target_consequence: str

    # --- what a subclass defines ----------------------------------------------------------------

    @abstractmethod
    def _backends(self, spec: Obj) -> Iterator[Obj]:
        """Every `backend.service` of an Ingress spec that this provider routes by."""

    @abstractmethod
    def _split_backends(self, canary: Canary, spec: Obj) -> bool:
        """Rewrite the copied spec's primary-side backends; whether there was any."""

    @abstractmethod
    def _annotations(self, canary: Canary, base: dict[str, str], weights: Routes) -> Obj:
        """The copy's annotations at these weights, from `base` (the user's or the live ones)."""

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        """What the provider cannot do with the Canary beyond the shared capability checks."""
        return []

    def _external_name_problems(self) -> list[Problem]:
        """What routing to ExternalName Service copies means for this provider."""
        return []

    # --- the shared life cycle ------------------------------------------------------------------

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [
            ObjectRef(API_VERSION, KIND, ingress_ref_name(canary), canary.namespace),
            ObjectRef(API_VERSION, KIND, canary_ingress_name(canary), canary.namespace),
        ]

    def _source(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        return require(existing, KIND, ingress_ref_name(canary), canary.namespace)

    def _canary_spec(self, canary: Canary, source: Obj) -> Obj:
        spec = copy.deepcopy(source.get("spec") or {})
        if not self._split_backends(canary, spec):
            raise RouterError(
                f"backend {service_names(canary).apex} not found in ingress "
                f"{source['metadata']['name']}"
            )
        return spec

    def _created(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> Obj:
        """The canary Ingress as first written: the user's labels and annotations, the split."""
        source = self._source(canary, existing)
        source_meta = source.get("metadata") or {}
        return new_object(
            canary,
            API_VERSION,
            KIND,
            canary_ingress_name(canary),
            self._canary_spec(canary, source),
            labels=source_meta.get("labels"),
            annotations=self._annotations(
                canary, dict(source_meta.get("annotations") or {}), weights
            ),
        )

    def _reweighted(
        self, canary: Canary, existing: Sequence[Obj], current: Obj, weights: Routes
    ) -> Obj:
        """The live canary Ingress with the annotations of these weights."""
        updated = copy.deepcopy(current)
        updated.pop("status", None)
        metadata = updated["metadata"]
        metadata["annotations"] = self._annotations(
            canary, dict(metadata.get("annotations") or {}), weights
        )
        return updated

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Create the canary Ingress, or update its spec when the user's Ingress changed; the
        annotations (the live weights) are left as they are."""
        current = find(existing, KIND, canary_ingress_name(canary))
        if current is None:
            return [self._created(canary, existing, INITIAL_WEIGHTS)]
        spec = self._canary_spec(canary, self._source(canary, existing))
        if spec == current.get("spec"):
            return []
        updated = copy.deepcopy(current)
        updated.pop("status", None)
        updated["spec"] = spec
        return [updated]

    def _route_update(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> RouteUpdate:
        current = require(existing, KIND, canary_ingress_name(canary), canary.namespace)
        return RouteUpdate([self._reweighted(canary, existing, current, weights)])

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Delete the canary Ingress: the user's Ingress alone routes to the primary again."""
        name = canary_ingress_name(canary)
        if find(existing, KIND, name) is None:
            return []
        return [Delete(ObjectRef(API_VERSION, KIND, name, canary.namespace))]

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        problems: list[Problem] = []
        problems += self._rule_problems(canary)
        ref = canary.spec.ingress_ref
        if ref is None:
            problems.append(Problem("spec.ingressRef", "ingress selector is empty"))
            return problems
        source = find(existing, KIND, ref.name)
        if source is not None:
            problems += self._source_problems(canary, target_kind, source)
        if is_external_name(target_service):
            problems += self._external_name_problems()
        return problems

    def _source_problems(
        self, canary: Canary, target_kind: TargetKind, source: Obj
    ) -> list[Problem]:
        """The user's Ingress must route to the primary side, and not to a Service target."""
        name = source["metadata"]["name"]
        routed = {b.get("name") for b in self._backends(source.get("spec") or {})}
        names = service_names(canary)
        problems: list[Problem] = []
        if not routed & primary_side(canary):
            problems.append(
                Problem("spec.ingressRef", f"backend {names.apex} not found in ingress {name}")
            )
        target = canary.spec.target_ref.name
        if target_kind == "Service" and target in routed and target != names.primary:
            problems.append(
                Problem(
                    "spec.ingressRef",
                    f"Ingress {name} routes to Service {target}, the canary's target: "
                    f"{self.target_consequence}; route the Ingress to {names.primary}",
                )
            )
        return problems
