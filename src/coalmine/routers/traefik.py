"""Traefik TraefikService `<apex>` with a weighted service list (flagger-behaviour §4.9).

The canary entry exists only while it has weight; canary weight is derived as 100 - primary;
SetRoutes(0, 0) is refused. Unlike Flagger, Reconcile keeps the live weights (DESIGN 12).
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.validation import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Capabilities,
    Obj,
    RouterError,
    TargetKind,
    WeightedRouter,
    apex_annotations,
    apex_labels,
    capability_problems,
    is_external_name,
    new_object,
    require,
    service_names,
    weight_from,
)

API_VERSION = "traefik.io/v1alpha1"
KIND = "TraefikService"
CAPABILITIES = Capabilities(ab_testing=False, mirroring=False, session_affinity=False, tcp=False)

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
        return new_object(
            canary,
            API_VERSION,
            KIND,
            names.apex,
            {"weighted": {"services": services}},
            labels=apex_labels(canary),
            annotations=apex_annotations(canary),
        )

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        service = require(existing, KIND, names.apex, canary.namespace)
        entries = ((service.get("spec") or {}).get("weighted") or {}).get("services") or []
        primary = next((e for e in entries if e.get("name") == names.primary), None)
        if primary is None:
            raise RouterError(
                f"TraefikService {names.apex}.{canary.namespace} has no service {names.primary}"
            )
        weight = weight_from(primary.get("weight"))
        return Routes(weight, 100 - weight, False)

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]:
        problems = capability_problems(canary, self.provider, CAPABILITIES)
        if is_external_name(target_service):
            problems.append(
                Problem(
                    "spec.targetRef",
                    "ExternalName backends: Traefik's Kubernetes CRD provider ignores them unless "
                    "started with allowExternalNameServices (off by default)",
                    "warning",
                )
            )
        return problems


ROUTER = TraefikRouter()
