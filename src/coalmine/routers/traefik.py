"""Traefik TraefikService `<apex>` with a weighted service list (Flagger's `pkg/router/traefik.go`).

The canary entry exists only while it has weight; canary weight is derived as 100 - primary;
SetRoutes(0, 0) is refused. Unlike Flagger, Reconcile keeps the live weights (see docs/decisions.md,
'Live weights on reconcile').
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Obj,
    RouterError,
    service_names,
    split_from_primary,
)
from coalmine.routers.weighted import WeightedRouter

API_VERSION = "traefik.io/v1alpha1"
KIND = "TraefikService"
CAPABILITIES = PROVIDERS["traefik"].capabilities

__all__ = ["ROUTER", "TraefikRouter"]


class TraefikRouter(WeightedRouter):
    api_version = API_VERSION
    kind = KIND
    capabilities = CAPABILITIES
    provider = "traefik"
    refuses_empty_split = True

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        names = service_names(canary)
        port = canary.spec.required_service.port
        services = [
            {
                "name": names.primary,
                "namespace": canary.namespace,
                "port": port,
                "weight": weights.primary_weight,
            },
        ]
        if weights.canary_weight > 0:
            services.append(
                {
                    "name": names.canary,
                    "namespace": canary.namespace,
                    "port": port,
                    "weight": weights.canary_weight,
                }
            )
        return self._routing_object(canary, {"weighted": {"services": services}})

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        entries = ((self._required(canary, existing).get("spec") or {}).get("weighted") or {}).get(
            "services"
        ) or []
        primary = next((e for e in entries if e.get("name") == names.primary), None)
        if primary is None:
            raise RouterError(
                f"TraefikService {names.apex}.{canary.namespace} has no service {names.primary}"
            )
        return split_from_primary(primary.get("weight"))

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: Traefik's Kubernetes CRD provider ignores them unless "
                "started with allowExternalNameServices (off by default)",
                "warning",
            )
        ]


ROUTER = TraefikRouter()
