"""NGINX Ingress: the canary Ingress `<ingressRef>-canary` next to the user's Ingress.

The copy routes every backend of the user's Ingress that points at the primary side to
`<apex>-canary`; ingress-nginx's canary annotations carry the weight or the header/cookie match
(as Flagger's `pkg/router/ingress.go`). The life cycle shared with Skipper (the copy, Reconcile,
Finalize, the Service-target rule) is `CanaryIngressRouter`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.canary_ingress import (
    KIND,
    CanaryIngressRouter,
    canary_ingress_name,
)
from coalmine.routers.common import (
    Obj,
    RouterError,
    copied_annotations,
    find,
    ignored_match_fields,
    require,
    service_names,
    weight_from,
)
from coalmine.routers.objects import primary_side

DEFAULT_ANNOTATIONS_PREFIX = "nginx.ingress.kubernetes.io"
CAPABILITIES = PROVIDERS["nginx"].capabilities

__all__ = ["ROUTER", "NginxRouter", "canary_ingress_name"]


class NginxRouter(CanaryIngressRouter):
    capabilities = CAPABILITIES
    provider = "nginx"
    target_consequence = "the primary share of traffic would reach the new version"

    def __init__(self, annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX) -> None:
        self.prefix = annotations_prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _is_canary_key(self, key: str) -> bool:
        return key.startswith(self._key("canary"))

    def _backends(self, spec: Obj) -> Iterator[Obj]:
        """Every `backend.service` of an Ingress spec (default backend and rule paths)."""
        default = (spec.get("defaultBackend") or {}).get("service")
        if default is not None:
            yield default
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service")
                if service is not None:
                    yield service

    def _split_backends(self, canary: Canary, spec: Obj) -> bool:
        """Every primary-side backend → `<apex>-canary`."""
        found = False
        for backend in self._backends(spec):
            if backend.get("name") in primary_side(canary):
                backend["name"] = service_names(canary).canary
                found = True
        return found

    def _annotations(self, canary: Canary, base: dict[str, str], weights: Routes) -> Obj:
        """Base annotations without ours, plus the canary annotations for these weights."""
        annotations = copied_annotations(base, drop=self._is_canary_key)
        annotations[self._key("canary")] = "true"
        analysis = canary.spec.analysis
        if weights.canary_weight > 0 and analysis and analysis.match:
            for match in analysis.match:
                for name, value in (match.headers or {}).items():
                    if name.lower() == "cookie":
                        if value.exact:
                            annotations[self._key("canary-by-cookie")] = value.exact
                        continue
                    annotations[self._key("canary-by-header")] = name
                    if value.exact:
                        annotations[self._key("canary-by-header-value")] = value.exact
                    if value.regex:
                        annotations[self._key("canary-by-header-pattern")] = value.regex
            return annotations
        annotations[self._key("canary-weight")] = str(weights.canary_weight)
        return annotations

    def _reweighted(
        self, canary: Canary, existing: Sequence[Obj], current: Obj, weights: Routes
    ) -> Obj:
        """The annotations of these weights, and the spec rebuilt from the user's Ingress."""
        updated = super()._reweighted(canary, existing, current, weights)
        updated["spec"] = self._canary_spec(canary, self._source(canary, existing))
        return updated

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        current = find(existing, KIND, canary_ingress_name(canary))
        if current is None:
            return [self._created(canary, existing, weights)]
        return [self._reweighted(canary, existing, current, weights)]

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        name = canary_ingress_name(canary)
        ingress = require(existing, KIND, name, canary.namespace)
        annotations = ingress.get("metadata", {}).get("annotations") or {}
        analysis = canary.spec.analysis
        if analysis and analysis.match:
            for key in ("canary-by-cookie", "canary-by-header"):
                if self._key(key) in annotations:
                    return Routes(0, 100, False)
        raw = annotations.get(self._key("canary-weight"))
        if raw is None:
            raise RouterError(
                f"Ingress {name}.{canary.namespace} has no {self._key('canary-weight')} annotation"
            )
        weight = weight_from(raw)
        return Routes(100 - weight, weight, False)

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        """ingress-nginx matches one header (exact or regex) and one cookie (by name) per canary
        Ingress; anything else in analysis.match would be dropped and the A/B run would send all
        traffic to the canary."""
        analysis = canary.spec.analysis
        problems: list[Problem] = []
        headers: list[str] = []
        for index, match in enumerate(analysis.match or [] if analysis else []):
            for name, value in (match.headers or {}).items():
                field = f"spec.analysis.match[{index}].headers.{name}"
                if name.lower() == "cookie":
                    if not value.exact:
                        problems.append(
                            Problem(field, "canary-by-cookie takes a cookie name (exact) only")
                        )
                    continue
                headers.append(name)
                if not (value.exact or value.regex):
                    problems.append(
                        Problem(field, "canary-by-header takes exact or regex values only")
                    )
            problems += ignored_match_fields(index, match, "nginx", "a header or a cookie")
        if len(set(headers)) > 1:
            problems.append(
                Problem(
                    "spec.analysis.match",
                    "ingress-nginx matches a single header per canary Ingress, the Canary names "
                    f"{sorted(set(headers))}",
                )
            )
        return problems

    def _external_name_problems(self) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: ingress-nginx resolves the external name but keeps "
                "the client's Host header unless the Ingress sets "
                f"{self._key('upstream-vhost')}, and canary Ingresses whose main backend is "
                "an ExternalName Service are reported not to split (ingress-nginx#9635)",
                "warning",
            )
        ]


ROUTER = NginxRouter()
