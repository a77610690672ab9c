"""NGINX Ingress: the canary Ingress `<ingressRef>-canary` next to the user's Ingress.

The copy routes every backend of the user's Ingress that points at the primary side to
`<apex>-canary`; ingress-nginx's canary annotations carry the weight or the header/cookie match
(as Flagger's `pkg/router/ingress.go`). The user's Ingress is never modified.

Service targets (coalmine's headline): the user's Ingress must route to `<apex>-primary`, the copy
holding the last good spec. An Ingress that routes to the Service target itself would send the
"primary" share of traffic to the new version, so `compatibility` reports it as fatal; backends
named `<apex>-primary` are recognised as the primary side for that reason.
"""

from __future__ import annotations

import copy
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
    ignored_match_fields,
    is_external_name,
    owner_reference,
    refuse_baseline,
    require,
    service_names,
    weight_from,
    with_toolkit_annotations,
)

API_VERSION = "networking.k8s.io/v1"
KIND = "Ingress"
DEFAULT_ANNOTATIONS_PREFIX = "nginx.ingress.kubernetes.io"
CAPABILITIES = PROVIDERS["nginx"].capabilities

__all__ = ["ROUTER", "NginxRouter", "canary_ingress_name"]


def canary_ingress_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None:
        raise RouterError("ingress selector is empty")
    return naming.canary_name(ref.name)


def _backends(spec: Obj) -> Iterator[Obj]:
    """Every `backend.service` of an Ingress spec (default backend and rule paths)."""
    default = (spec.get("defaultBackend") or {}).get("service")
    if default is not None:
        yield default
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            service = (path.get("backend") or {}).get("service")
            if service is not None:
                yield service


class NginxRouter:
    capabilities = CAPABILITIES
    provider = "nginx"

    def __init__(self, annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX) -> None:
        self.prefix = annotations_prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _is_canary_key(self, key: str) -> bool:
        return key.startswith(self._key("canary"))

    def references(self, canary: Canary) -> list[ObjectRef]:
        ref = canary.spec.ingress_ref
        if ref is None:
            raise RouterError("ingress selector is empty")
        return [
            ObjectRef(API_VERSION, KIND, ref.name, canary.namespace),
            ObjectRef(API_VERSION, KIND, canary_ingress_name(canary), canary.namespace),
        ]

    def _source(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        ref = canary.spec.ingress_ref
        if ref is None:
            raise RouterError("ingress selector is empty")
        return require(existing, KIND, ref.name, canary.namespace)

    def _primary_backend_names(self, canary: Canary) -> set[str]:
        names = service_names(canary)
        return {names.apex, names.primary}

    def _canary_spec(self, canary: Canary, source: Obj) -> Obj:
        names = service_names(canary)
        spec = copy.deepcopy(source.get("spec") or {})
        found = False
        for backend in _backends(spec):
            if backend.get("name") in self._primary_backend_names(canary):
                backend["name"] = names.canary
                found = True
        if not found:
            raise RouterError(
                f"backend {names.apex} not found in ingress {source['metadata']['name']}"
            )
        return spec

    def _annotations(self, canary: Canary, base: dict[str, str], weights: Routes) -> Obj:
        """Base annotations without ours, plus the canary annotations for these weights."""
        annotations = {
            k: v
            for k, v in base.items()
            if not self._is_canary_key(k) and k != naming.KUBECTL_LAST_APPLIED_ANNOTATION
        }
        annotations = with_toolkit_annotations(annotations)
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

    def _built(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes, current: Obj | None
    ) -> Obj:
        source = self._source(canary, existing)
        source_meta = source.get("metadata") or {}
        name = canary_ingress_name(canary)
        if current is None:
            obj: Obj = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": name,
                    "namespace": canary.namespace,
                    "ownerReferences": [owner_reference(canary)],
                },
            }
            base = dict(source_meta.get("annotations") or {})
            labels = dict(source_meta.get("labels") or {})
        else:
            obj = copy.deepcopy(current)
            obj.pop("status", None)
            base = dict(obj["metadata"].get("annotations") or {})
            labels = dict(obj["metadata"].get("labels") or {})
        if labels:
            obj["metadata"]["labels"] = labels
        obj["metadata"]["annotations"] = self._annotations(canary, base, weights)
        obj["spec"] = self._canary_spec(canary, source)
        return obj

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
        current = find(existing, KIND, canary_ingress_name(canary))
        weights = Routes(primary_weight, canary_weight)
        return [self._built(canary, existing, weights, current)]

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Create the canary Ingress, or update its spec when the user's Ingress changed; the
        annotations (the live weight) are left as they are."""
        current = find(existing, KIND, canary_ingress_name(canary))
        if current is None:
            return [self._built(canary, existing, INITIAL_WEIGHTS, None)]
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
        check_weights(primary_weight, canary_weight)
        refuse_baseline(self.provider, baseline_weight)
        name = canary_ingress_name(canary)
        current = require(existing, KIND, name, canary.namespace)
        weights = Routes(primary_weight, canary_weight)
        return RouteUpdate([self._built(canary, existing, weights, current)])

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

    @staticmethod
    def _ab_problems(canary: Canary) -> list[Problem]:
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

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Remove the canary Ingress: the user's Ingress alone routes to the primary again."""
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
        problems += self._ab_problems(canary)
        ref = canary.spec.ingress_ref
        if ref is None:
            problems.append(Problem("spec.ingressRef", "ingress selector is empty"))
            return problems
        source = find(existing, KIND, ref.name)
        names = service_names(canary)
        if source is not None:
            routed = {b.get("name") for b in _backends(source.get("spec") or {})}
            if not routed & self._primary_backend_names(canary):
                problems.append(
                    Problem(
                        "spec.ingressRef", f"backend {names.apex} not found in ingress {ref.name}"
                    )
                )
            target = canary.spec.target_ref.name
            if target_kind == "Service" and target in routed and target != names.primary:
                problems.append(
                    Problem(
                        "spec.ingressRef",
                        f"Ingress {ref.name} routes to Service {target}, the canary's target: "
                        f"the primary share of traffic would reach the new version; route the "
                        f"Ingress to {names.primary}",
                    )
                )
        if is_external_name(target_service):
            problems.append(
                Problem(
                    "spec.targetRef",
                    "ExternalName backends: ingress-nginx resolves the external name but keeps "
                    "the client's Host header unless the Ingress sets "
                    f"{self._key('upstream-vhost')}, and canary Ingresses whose main backend is "
                    "an ExternalName Service are reported not to split (ingress-nginx#9635)",
                    "warning",
                )
            )
        return problems


ROUTER = NginxRouter()
