"""SMI TrafficSplit `<apex>` (v1alpha1 for Linkerd, v1alpha2 for OSM, v1alpha3): weights only.

No A/B, no mirroring (as Flagger's `pkg/router/smi*.go`). v1alpha1 writes weights as resource
quantities (strings, as Flagger's typed client serialises them); later versions write integers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Obj,
    RouterError,
    new_object,
    service_names,
    weight_from,
)
from coalmine.routers.weighted import WeightedRouter

GROUP = "split.smi-spec.io"
KIND = "TrafficSplit"
ISTIO_GATEWAYS_ANNOTATION = "VirtualService.v1alpha3.networking.istio.io/spec.gateways"
CAPABILITIES = PROVIDERS["linkerd"].capabilities
Version = Literal["v1alpha1", "v1alpha2", "v1alpha3"]

__all__ = ["LINKERD", "OSM", "ROUTER_V1ALPHA1", "ROUTER_V1ALPHA2", "ROUTER_V1ALPHA3", "SMIRouter"]


class SMIRouter(WeightedRouter):
    kind = KIND
    capabilities = CAPABILITIES

    def __init__(self, version: Version, mesh: str | None = None, provider: str | None = None):
        self.version: Version = version
        self.mesh = mesh
        self.provider = provider or f"smi:{version}" + (f":{mesh}" if mesh else "")
        self.api_version = f"{GROUP}/{version}"

    def _weight(self, value: int) -> Any:
        return str(value) if self.version == "v1alpha1" else value

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        names = service_names(canary)
        service = canary.spec.required_service
        annotations = {}
        if self.mesh == "istio" and service.gateways:
            annotations[ISTIO_GATEWAYS_ANNOTATION] = json.dumps(service.gateways)
        spec = {
            "service": (service.hosts or [names.apex])[0],
            "backends": [
                {"service": names.canary, "weight": self._weight(weights.canary_weight)},
                {"service": names.primary, "weight": self._weight(weights.primary_weight)},
            ],
        }
        return new_object(canary, self.api_version, KIND, names.apex, spec, annotations=annotations)

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        primary = canary_weight = 0
        for backend in (self._required(canary, existing).get("spec") or {}).get("backends") or []:
            if backend.get("service") == names.primary:
                primary = weight_from(backend.get("weight"))
            elif backend.get("service") == names.canary:
                canary_weight = weight_from(backend.get("weight"))
        if primary == 0 and canary_weight == 0:
            raise RouterError(
                f"TrafficSplit {names.apex}.{canary.namespace} does not contain routes for "
                f"{names.primary} and {names.canary}"
            )
        return Routes(primary, canary_weight, False)

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        if self.mesh in (None, "linkerd", "osm"):
            return [
                Problem(
                    "spec.targetRef",
                    "ExternalName backends cannot be split by a TrafficSplit: the mesh resolves "
                    "backends to pod endpoints and an ExternalName Service has none (Linkerd "
                    "falls back to the original destination, so the split is silently not "
                    "applied)",
                )
            ]
        return [
            Problem(
                "spec.targetRef",
                f"ExternalName backends depend on how {self.mesh} implements SMI",
                "warning",
            )
        ]


ROUTER_V1ALPHA1 = SMIRouter("v1alpha1")
ROUTER_V1ALPHA2 = SMIRouter("v1alpha2")
ROUTER_V1ALPHA3 = SMIRouter("v1alpha3")
LINKERD = SMIRouter("v1alpha1", provider="linkerd")
OSM = SMIRouter("v1alpha2", provider="osm")
