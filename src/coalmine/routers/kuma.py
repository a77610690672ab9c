"""Kuma TrafficRoute `<apex>` splitting by `kuma.io/service` tags (Flagger's `pkg/router/kuma.go`).

Kuma tags every dataplane with `kuma.io/service: <service>_<namespace>_svc_<port>` for each
Service selecting it, so the route sends callers of the apex Service to the dataplanes of the
`<apex>-primary` and `<apex>-canary` copies by weight. No A/B, no mirroring.

TrafficRoute is cluster-scoped: it has no namespace and cannot be owned by the namespaced Canary
(Kubernetes does not garbage-collect a cluster-scoped object through a namespaced owner), so,
as Flagger, it carries no owner reference; Finalize (`revertOnDeletion`) deletes it. Because the
name `<apex>` is shared by every namespace, a route whose destination is another namespace's
apex Service is refused instead of taken over (docs/decisions.md, 'Gloo and Kuma routers').
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Delete,
    FinalizeAction,
    Obj,
    ObjectRef,
    RouterError,
    apex_annotations,
    apex_labels,
    find,
    service_names,
    split_from_primary,
)
from coalmine.routers.weighted import WeightedRouter

API_VERSION = "kuma.io/v1alpha1"
KIND = "TrafficRoute"
CAPABILITIES = PROVIDERS["kuma"].capabilities
SERVICE_TAG = "kuma.io/service"
#: The Canary annotation naming the Kuma mesh of the route (Flagger's), else `default`.
MESH_ANNOTATION = "kuma.io/mesh"
DEFAULT_MESH = "default"

__all__ = ["ROUTER", "KumaRouter", "service_tag"]


def service_tag(service: str, canary: Canary) -> str:
    """The `kuma.io/service` tag Kuma gives the dataplanes behind a Service port."""
    return f"{service}_{canary.namespace}_svc_{canary.spec.required_service.port}"


class KumaRouter(WeightedRouter):
    api_version = API_VERSION
    kind = KIND
    capabilities = CAPABILITIES
    provider = "kuma"

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [ObjectRef(API_VERSION, KIND, self._name(canary), "")]

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        names = service_names(canary)
        metadata: Obj = {"name": names.apex}
        labels = apex_labels(canary)
        if labels:
            metadata["labels"] = labels
        metadata["annotations"] = apex_annotations(canary)
        annotations = canary.metadata.annotations or {}
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "mesh": annotations.get(MESH_ANNOTATION) or DEFAULT_MESH,
            "metadata": metadata,
            "spec": {
                "sources": [{"match": {SERVICE_TAG: "*"}}],
                "destinations": [{"match": {SERVICE_TAG: service_tag(names.apex, canary)}}],
                "conf": {
                    "split": [
                        {
                            "weight": weights.primary_weight,
                            "destination": {SERVICE_TAG: service_tag(names.primary, canary)},
                        },
                        {
                            "weight": weights.canary_weight,
                            "destination": {SERVICE_TAG: service_tag(names.canary, canary)},
                        },
                    ]
                },
            },
        }

    def _required(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        name = self._name(canary)
        found = find(existing, KIND, name)
        if found is None:
            raise RouterError(f"TrafficRoute {name} get query error: not found")
        self._check_owner(canary, found)
        return found

    def _check_owner(self, canary: Canary, route: Obj) -> None:
        """The cluster-wide name `<apex>` may be another namespace's route: refuse it."""
        for destination in (route.get("spec") or {}).get("destinations") or []:
            tag = str((destination.get("match") or {}).get(SERVICE_TAG, ""))
            parts = tag.split("_")
            if len(parts) == 4 and parts[0] == self._name(canary) and parts[1] != canary.namespace:
                raise RouterError(
                    f"TrafficRoute {route['metadata']['name']} routes {tag} of namespace "
                    f"{parts[1]}; it is not this canary's (TrafficRoutes are cluster-scoped)"
                )

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """As every weighted router; a created route carries `mesh`, an update keeps the live
        one (Kuma does not move a policy between meshes)."""
        current = find(existing, KIND, self._name(canary))
        if current is not None:
            self._check_owner(canary, current)
        return super().reconcile(canary, existing)

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        route = self._required(canary, existing)
        for split in ((route.get("spec") or {}).get("conf") or {}).get("split") or []:
            tag = str((split.get("destination") or {}).get(SERVICE_TAG, ""))
            if tag.split("_")[0] == names.primary:
                return split_from_primary(split.get("weight"))
        raise RouterError(
            f"TrafficRoute {names.apex} does not contain routes for {names.primary} and "
            f"{names.canary}"
        )

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Delete the route (nothing garbage-collects a cluster-scoped object of a Canary)."""
        current = find(existing, KIND, self._name(canary))
        if current is None:
            return []
        try:
            self._check_owner(canary, current)
        except RouterError:
            return []
        return [Delete(ObjectRef(API_VERSION, KIND, self._name(canary), ""))]

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        if canary.spec.revert_on_deletion:
            return []
        return [
            Problem(
                "spec.revertOnDeletion",
                f"TrafficRoute {self._name(canary)} is cluster-scoped and cannot be owned by "
                "the Canary: without revertOnDeletion it stays after the Canary is deleted "
                "(delete it yourself)",
                "warning",
            )
        ]

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: Kuma tags dataplanes by the Services that select them; "
                "an ExternalName Service selects no pods, so no dataplane carries the canary's "
                "kuma.io/service tag (use a Kuma ExternalService and another provider)",
            )
        ]


ROUTER = KumaRouter()
