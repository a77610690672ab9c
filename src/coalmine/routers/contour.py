"""Contour HTTPProxy `<apex>`: one weighted route (A/B: header route + primary route).

The proxy has no virtualhost (as Flagger's `pkg/router/contour.go`): a root HTTPProxy of the user
includes it. Canary weight is derived as 100 - primary; SetRoutes(0, 0) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    Obj,
    RouterError,
    ignored_match_fields,
    service_names,
    split_from_primary,
)
from coalmine.routers.weighted import WeightedRouter

API_VERSION = "projectcontour.io/v1"
KIND = "HTTPProxy"
CAPABILITIES = PROVIDERS["contour"].capabilities
DESTINATION_OVERRIDE_HEADER = "l5d-dst-override"

__all__ = ["ROUTER", "ContourRouter"]


class ContourRouter(WeightedRouter):
    api_version = API_VERSION
    kind = KIND
    capabilities = CAPABILITIES
    provider = "contour"
    refuses_empty_split = True

    def __init__(self, ingress_class: str | None = None) -> None:
        self.ingress_class = ingress_class

    def _prefix(self, canary: Canary) -> str:
        matches = canary.spec.required_service.match or []
        if matches and matches[0].uri and matches[0].uri.prefix:
            return matches[0].uri.prefix
        return "/"

    def _header_conditions(self, canary: Canary) -> list[Obj]:
        conditions: list[Obj] = [{"prefix": self._prefix(canary)}]
        analysis = canary.spec.analysis
        for match in analysis.match or [] if analysis else []:
            for name in sorted(match.headers or {}):
                value = (match.headers or {})[name]
                if value.exact:
                    conditions.append({"header": {"name": name, "exact": value.exact}})
                elif value.prefix or value.suffix:
                    conditions.append(
                        {"header": {"name": name, "contains": value.prefix or value.suffix}}
                    )
        return conditions

    def _service(self, canary: Canary, name: str, weight: int) -> Obj:
        port = canary.spec.required_service.port
        override = f"{name}.{canary.namespace}.svc.cluster.local:{port}"
        return {
            "name": name,
            "port": port,
            "weight": weight,
            "requestHeadersPolicy": {
                "set": [{"name": DESTINATION_OVERRIDE_HEADER, "value": override}]
            },
        }

    def _route(self, canary: Canary, conditions: list[Obj], weights: Routes) -> Obj:
        names = service_names(canary)
        service = canary.spec.required_service
        route: Obj = {"conditions": conditions}
        if service.timeout:
            route["timeoutPolicy"] = {"response": service.timeout, "idle": "5m"}
        if service.retries:
            retry: Obj = {"count": service.retries.attempts or 0}
            if service.retries.per_try_timeout:
                retry["perTryTimeout"] = service.retries.per_try_timeout
            if service.retries.retry_on:
                retry["retryOn"] = [
                    part.strip() for part in service.retries.retry_on.split(",") if part.strip()
                ]
            route["retryPolicy"] = retry
        route["services"] = [
            self._service(canary, names.primary, weights.primary_weight),
            self._service(canary, names.canary, weights.canary_weight),
        ]
        return route

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        analysis = canary.spec.analysis
        prefix_only = [{"prefix": self._prefix(canary)}]
        if analysis and analysis.match:
            routes = [
                self._route(canary, self._header_conditions(canary), weights),
                self._route(canary, prefix_only, INITIAL_WEIGHTS),
            ]
        else:
            routes = [self._route(canary, prefix_only, weights)]
        spec: Obj = {"routes": routes}
        if self.ingress_class:
            spec["ingressClassName"] = self.ingress_class
        return self._routing_object(canary, spec)

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        routes = (self._required(canary, existing).get("spec") or {}).get("routes") or []
        services = (routes[0].get("services") or []) if routes else []
        primary = next((s for s in services if s.get("name") == names.primary), None)
        if len(services) < 2 or primary is None:
            raise RouterError(f"HTTPProxy {names.apex}.{canary.namespace} services not found")
        return split_from_primary(primary.get("weight"))

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        problems: list[Problem] = []
        analysis = canary.spec.analysis
        for index, match in enumerate(analysis.match or [] if analysis else []):
            for name, value in (match.headers or {}).items():
                if not (value.exact or value.prefix or value.suffix):
                    problems.append(
                        Problem(
                            f"spec.analysis.match[{index}].headers.{name}",
                            "HTTPProxy header conditions take exact, prefix or suffix values "
                            "only; without it the A/B route would match every request",
                        )
                    )
            problems += ignored_match_fields(index, match, self.provider, "headers")
        return problems

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: Contour routes to them only when started with "
                "enableExternalNameService (off by default since CVE-2021-25740) and sends the "
                "client's Host header unless the HTTPProxy rewrites it",
                "warning",
            )
        ]


ROUTER = ContourRouter()
