"""Knative router (Flagger's `pkg/router/knative.go`): the split between two revisions of the
target Knative Service, written in the Service's own `spec.traffic`.

* Reconcile records the latest created revision as the primary when no primary is recorded, and
  puts back Flagger's traffic block (at 100/0) when something else replaced it — a GitOps
  re-apply without `traffic` would otherwise send everything to an unanalysed revision;
* SetRoutes: `[{latestRevision: true, percent: canary}, {revisionName: <primary>,
  latestRevision: false, percent: primary}]`;
* GetRoutes reads what Knative routes (`status.traffic`): the latest revision is the canary,
  revisions pinned by name the primary side (right after a promotion the recorded primary is the
  new revision while the old one still holds its share);
* Finalize removes the annotations; the traffic stays on the primary revision.

No owner reference, no apex metadata: the object is the user's target, not one we create.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import KNATIVE_API_VERSION, Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    FinalizeAction,
    ObjectRef,
    RouteUpdate,
    TargetKind,
    Write,
)
from coalmine.routers.objects import Obj, RouterError
from coalmine.routers.split import SplitRouter
from coalmine.targets import knative

KIND = "Service"
CAPABILITIES = PROVIDERS["knative"].capabilities

__all__ = ["ROUTER", "KnativeRouter"]


class KnativeRouter(SplitRouter):
    provider = "knative"
    capabilities = CAPABILITIES

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [ObjectRef(KNATIVE_API_VERSION, KIND, canary.spec.target_ref.name, canary.namespace)]

    def _service(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        name = canary.spec.target_ref.name
        for obj in existing:
            metadata = obj.get("metadata") or {}
            if obj.get("apiVersion") == KNATIVE_API_VERSION and metadata.get("name") == name:
                return obj
        raise RouterError(f"Knative Service {name}.{canary.namespace} get query error: not found")

    def _primary(self, canary: Canary, service: Obj) -> str:
        primary = knative.primary_revision(service)
        if primary is None:
            raise RouterError(
                f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} has no "
                f"{knative.PRIMARY_REVISION} annotation"
            )
        return primary

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        return [self._with_traffic(canary, existing, weights)]

    def _with_traffic(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> Obj:
        """The target Knative Service with Flagger's traffic block at these weights."""
        service = self._service(canary, existing)
        primary = self._primary(canary, service)
        return knative.with_traffic(service, primary, weights.primary_weight, weights.canary_weight)

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        service = self._service(canary, existing)
        primary = knative.primary_revision(service)
        if primary is None:
            if not knative.knative_revision(service):
                raise RouterError(
                    f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} has no "
                    "revision yet: waiting for Knative"
                )
            return [knative.initialized(service) or dict(service)]
        if knative.has_split(service, primary):
            return []
        return [knative.with_traffic(service, primary, 100, 0)]

    def _route_update(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> RouteUpdate:
        wanted = self._with_traffic(canary, existing, weights)
        return RouteUpdate([] if wanted == dict(self._service(canary, existing)) else [wanted])

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        service = self._service(canary, existing)
        self._primary(canary, service)
        split = knative.split_of((service.get("status") or {}).get("traffic") or [])
        if split is None:
            raise RouterError(
                f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} routes no "
                "traffic to its latest revision (status.traffic): waiting for Knative"
            )
        return Routes(split[0], split[1])

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        try:
            service = self._service(canary, existing)
        except RouterError:
            return []
        changed = knative.without_primary(service)
        return [] if changed is None else [Write(changed)]

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        problems: list[Problem] = []
        if canary.spec.strategy == "blue-green":
            problems.append(
                Problem(
                    "spec.analysis.iterations",
                    "Blue/Green on knative: the latest revision gets no traffic while it is "
                    "analysed (Knative splits by weight only), so only checks that send their "
                    "own requests to the revision can measure it",
                    "warning",
                )
            )
        return problems


ROUTER = KnativeRouter()
