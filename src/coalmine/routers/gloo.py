"""Gloo Edge: Upstreams for the two copies and a RouteTable `<apex>` splitting between them
(Flagger's `pkg/router/gloo.go`).

Upstreams `<ns>-<apex>-primaryupstream-<port>` and `<ns>-<apex>-canaryupstream-<port>` are kube
upstreams of the `<apex>-primary` / `<apex>-canary` Services (their selector copied), so the
route works without Gloo's discovery; their connection settings (TLS, circuit breakers, load
balancing, HTTP/2, …) are cloned from `spec.upstreamRef`, else from the upstream Gloo's discovery
made for the apex Service in the canary's namespace (`<ns>-<apex>-<port>`), else left to Gloo's
defaults. The RouteTable is included by the user's VirtualService (delegation); its route
inherits the parent's path matchers and carries `service.retries` / `service.timeout`.

Where coalmine differs from Flagger (docs/decisions.md, 'Gloo and Kuma routers'): an A/B run
writes a second, match-less route to the primary (Flagger's single header route left every other
request without a route), each `analysis.match` entry is its own matcher (Flagger ANDed them all
into one), Reconcile keeps the live weights, and the generated Upstreams follow their Service's
selector and the cloned settings (Flagger only re-synced `loadBalancerConfig`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from coalmine.api.models import ABMatch, Canary, StringMatch
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    Obj,
    ObjectRef,
    RouterError,
    find,
    merge_onto,
    needs_write,
    new_object,
    service_names,
    split_from_primary,
)
from coalmine.routers.weighted import WeightedRouter

UPSTREAM_API_VERSION = "gloo.solo.io/v1"
UPSTREAM_KIND = "Upstream"
API_VERSION = "gateway.solo.io/v1"
KIND = "RouteTable"
CAPABILITIES = PROVIDERS["gloo"].capabilities
#: The Upstream settings cloned into the generated upstreams (Flagger's list; `kube` is ours).
CLONED_SETTINGS = (
    "sslConfig",
    "circuitBreakers",
    "connectionConfig",
    "loadBalancerConfig",
    "useHttp2",
    "initialStreamWindowSize",
    "initialConnectionWindowSize",
    "httpProxyHostname",
)

__all__ = ["ROUTER", "GlooRouter", "upstream_names"]


def upstream_names(canary: Canary) -> tuple[str, str]:
    """(primary, canary) names of the generated Upstreams, as Flagger names them."""
    names = service_names(canary)
    prefix = f"{canary.namespace}-{names.apex}"
    port = canary.spec.required_service.port
    return f"{prefix}-primaryupstream-{port}", f"{prefix}-canaryupstream-{port}"


def _settings_source(canary: Canary) -> tuple[str, str]:
    """(name, namespace) of the Upstream whose settings the generated ones clone."""
    ref = canary.spec.upstream_ref
    if ref is not None:
        return ref.name, ref.namespace or canary.namespace
    port = canary.spec.required_service.port
    return f"{canary.namespace}-{service_names(canary).apex}-{port}", canary.namespace


def _header_matcher(name: str, match: StringMatch) -> Obj:
    """Gloo header matchers take an exact value or a regex; prefix/suffix become a regex."""
    if match.regex is not None:
        return {"name": name, "value": match.regex, "regex": True}
    if match.prefix is not None:
        return {"name": name, "value": f"{re.escape(match.prefix)}.*", "regex": True}
    if match.suffix is not None:
        return {"name": name, "value": f".*{re.escape(match.suffix)}", "regex": True}
    return {"name": name, "value": match.exact or ""}


def _matcher(match: ABMatch) -> Obj:
    matcher: Obj = {}
    headers = match.headers or {}
    if headers:
        matcher["headers"] = [_header_matcher(name, headers[name]) for name in sorted(headers)]
    params = match.query_params or {}
    if params:
        matcher["queryParameters"] = [
            _header_matcher(name, params[name]) for name in sorted(params)
        ]
    if match.method is not None and match.method.exact:
        matcher["methods"] = [match.method.exact]
    return matcher


class GlooRouter(WeightedRouter):
    api_version = API_VERSION
    kind = KIND
    capabilities = CAPABILITIES
    provider = "gloo"
    refuses_empty_split = True

    # --- the RouteTable ---------------------------------------------------------------------

    def _options(self, canary: Canary) -> Obj:
        service = canary.spec.required_service
        options: Obj = {}
        if service.retries is not None:
            retries: Obj = {}
            if service.retries.attempts is not None:
                retries["numRetries"] = service.retries.attempts
            if service.retries.per_try_timeout:
                retries["perTryTimeout"] = service.retries.per_try_timeout
            if service.retries.retry_on:
                retries["retryOn"] = service.retries.retry_on
            if retries:
                options["retries"] = retries
        if service.timeout:
            options["timeout"] = service.timeout
        return options

    def _route(self, canary: Canary, matchers: list[Obj], weights: Routes) -> Obj:
        primary, canary_upstream = upstream_names(canary)
        route: Obj = {"inheritablePathMatchers": True}
        if matchers:
            route["matchers"] = matchers
        route["routeAction"] = {
            "multi": {
                "destinations": [
                    {
                        "destination": {"upstream": {"name": name, "namespace": canary.namespace}},
                        "weight": weight,
                    }
                    for name, weight in (
                        (primary, weights.primary_weight),
                        (canary_upstream, weights.canary_weight),
                    )
                ]
            }
        }
        options = self._options(canary)
        if options:
            route["options"] = options
        return route

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        analysis = canary.spec.analysis
        matches = (analysis.match or []) if analysis else []
        matchers = [m for m in (_matcher(match) for match in matches) if m]
        routes = [self._route(canary, matchers, weights)]
        if matchers:
            routes.append(self._route(canary, [], INITIAL_WEIGHTS))
        return self._routing_object(canary, {"routes": routes})

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        name = f"{self._name(canary)}.{canary.namespace}"
        routes = (self._required(canary, existing).get("spec") or {}).get("routes") or []
        action = (routes[0].get("routeAction") or {}) if routes else {}
        destinations = (action.get("multi") or {}).get("destinations") or []
        if len(destinations) < 2:
            raise RouterError(f"RouteTable {name} destinations not found")
        primary = upstream_names(canary)[0]
        for entry in destinations:
            upstream = (entry.get("destination") or {}).get("upstream") or {}
            if upstream.get("name") == primary:
                return split_from_primary(entry.get("weight"))
        raise RouterError(f"RouteTable {name} has no destination {primary}")

    # --- the Upstreams ----------------------------------------------------------------------

    def references(self, canary: Canary) -> list[ObjectRef]:
        names = service_names(canary)
        ns = canary.namespace
        source, source_ns = _settings_source(canary)
        return [
            *(
                ObjectRef(UPSTREAM_API_VERSION, UPSTREAM_KIND, n, ns)
                for n in upstream_names(canary)
            ),
            ObjectRef(UPSTREAM_API_VERSION, UPSTREAM_KIND, source, source_ns),
            ObjectRef("v1", "Service", names.primary, ns),
            ObjectRef("v1", "Service", names.canary, ns),
            *super().references(canary),
        ]

    def _settings(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        """The settings to clone: from `upstreamRef` (which must exist), else the discovered
        upstream of the apex Service when there is one."""
        name, namespace = _settings_source(canary)
        source = next(
            (
                obj
                for obj in existing
                if obj.get("kind") == UPSTREAM_KIND
                and obj["metadata"].get("name") == name
                and obj["metadata"].get("namespace", namespace) == namespace
            ),
            None,
        )
        if source is None:
            if canary.spec.upstream_ref is not None:
                raise RouterError(f"config upstream {name}.{namespace} get query error: not found")
            return {}
        spec = source.get("spec") or {}
        return {key: spec[key] for key in CLONED_SETTINGS if key in spec}

    def _upstreams(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """The two generated Upstreams; a missing copy Service is Flagger's "service … get query
        error" (the copies are made before the router runs)."""
        names = service_names(canary)
        settings = self._settings(canary, existing)
        built = []
        for upstream, service_name in zip(
            upstream_names(canary), (names.primary, names.canary), strict=True
        ):
            service = find(existing, "Service", service_name)
            if service is None:
                raise RouterError(
                    f"service {service_name}.{canary.namespace} get query error: not found"
                )
            kube: Obj = {
                "serviceName": service_name,
                "serviceNamespace": canary.namespace,
                "servicePort": canary.spec.required_service.port,
            }
            selector = (service.get("spec") or {}).get("selector")
            if selector:
                kube["selector"] = dict(selector)
            spec = {**settings, "kube": kube}
            built.append(new_object(canary, UPSTREAM_API_VERSION, UPSTREAM_KIND, upstream, spec))
        return built

    def _upstream_writes(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Upstreams to create or update: ours overwrite their keys, anything else someone put
        in a generated upstream's spec (health checks, say) stays."""
        writes = []
        for obj in self._upstreams(canary, existing):
            found = find(existing, UPSTREAM_KIND, obj["metadata"]["name"])
            if not needs_write(found, obj):
                continue
            merged = merge_onto(found, obj)
            merged["spec"] = {**((found or {}).get("spec") or {}), **obj["spec"]}
            writes.append(merged)
        return writes

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        upstreams = [
            merge_onto(find(existing, UPSTREAM_KIND, o["metadata"]["name"]), o)
            for o in self._upstreams(canary, existing)
        ]
        return upstreams + super()._desired_objects(canary, existing, weights)

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """The Upstreams first (the route refers to them), then the RouteTable."""
        return self._upstream_writes(canary, existing) + super().reconcile(canary, existing)

    # --- compatibility ----------------------------------------------------------------------

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        analysis = canary.spec.analysis
        problems: list[Problem] = []
        for index, match in enumerate((analysis.match or []) if analysis else []):
            for key, field in (("uri", "uri"), ("source_labels", "sourceLabels")):
                if getattr(match, key) is not None:
                    problems.append(
                        Problem(
                            f"spec.analysis.match[{index}]",
                            "the gloo router matches headers, query parameters and methods "
                            f"only (the route inherits its path); {field} would be ignored",
                        )
                    )
            if match.method is not None and not match.method.exact:
                problems.append(
                    Problem(
                        f"spec.analysis.match[{index}].method",
                        "Gloo matches methods exactly; other method matches would be ignored",
                    )
                )
            if not _matcher(match):
                problems.append(
                    Problem(
                        f"spec.analysis.match[{index}]",
                        "nothing the gloo router can match: the A/B route would take every request",
                    )
                )
        return problems

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: a Gloo kube Upstream routes to the endpoints of its "
                "Service, and an ExternalName Service has none (use a static Upstream and "
                "another provider)",
            )
        ]


ROUTER = GlooRouter()
