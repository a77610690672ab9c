"""Gateway API: the HTTPRoute `<apex>` (v1 or v1beta1) splitting between the two Service copies.

Rules (as Flagger's `pkg/router/gateway_api*.go`): one weighted rule; A/B = matched weighted rule +
primary-only rule; session affinity = sticky cookie rule(s) before the weighted rule. Mirroring adds
a RequestMirror filter to the weighted rule, for canary and blue/green runs alike (see
docs/decisions.md, 'Mirroring'), with `percent` = `analysis.mirrorWeight` when set.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

from coalmine.api.models import Canary, HTTPMatchRequest, StringMatch, parse_go_duration
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.routers.common import (
    INITIAL_WEIGHTS,
    SET_COOKIE_HEADER,
    Obj,
    RouterError,
    ServiceNames,
    affinity_of,
    cookie_regex,
    drop_none,
    service_names,
    sticky_set_cookie,
)
from coalmine.routers.weighted import WeightedRouter

GROUP = "gateway.networking.k8s.io"
KIND = "HTTPRoute"
Version = Literal["v1", "v1beta1"]
CAPABILITIES = PROVIDERS["gatewayapi:v1"].capabilities

__all__ = ["ROUTER_V1", "ROUTER_V1BETA1", "GatewayAPIRouter", "map_route_matches"]


def _selector_error(what: str, value: Any) -> RouterError:
    return RouterError(
        "Invalid request matching selectors: Gateway API doesn't support the specified "
        f"{what} matching selector: {value}"
    )


def _header_match(name: str, match: StringMatch, what: str) -> Obj:
    if match.exact:
        return {"name": name, "type": "Exact", "value": match.exact}
    if match.regex:
        return {"name": name, "type": "RegularExpression", "value": match.regex}
    raise _selector_error(what, {name: match.to_wire()})


def map_route_matches(requests: Sequence[HTTPMatchRequest | Any]) -> list[Obj]:
    """Istio-style match requests (spec.service.match, analysis.match) as HTTPRouteMatches."""
    matches: list[Obj] = []
    for request in requests:
        match: Obj = {}
        uri: StringMatch | None = getattr(request, "uri", None)
        if uri is not None:
            if uri.regex:
                match["path"] = {"type": "RegularExpression", "value": uri.regex}
            elif uri.exact:
                match["path"] = {"type": "Exact", "value": uri.exact}
            elif uri.prefix:
                match["path"] = {"type": "PathPrefix", "value": uri.prefix}
            else:
                raise _selector_error("path", uri.to_wire())
        method: StringMatch | None = getattr(request, "method", None)
        if method is not None:
            if not method.exact:
                raise _selector_error("method", method.to_wire())
            match["method"] = method.exact
        headers: dict[str, StringMatch] = getattr(request, "headers", None) or {}
        if headers:
            match["headers"] = [
                _header_match(name, headers[name], "header") for name in sorted(headers)
            ]
        params: dict[str, StringMatch] = getattr(request, "query_params", None) or {}
        if params:
            match["queryParams"] = [
                _header_match(name, params[name], "query") for name in sorted(params)
            ]
        if match:
            matches.append(match)
    return matches


def _merge_matches(overlays: list[Obj], base: list[Obj]) -> list[Obj]:
    if not overlays:
        return copy.deepcopy(base)
    if not base:
        return copy.deepcopy(overlays)
    merged = []
    for overlay in overlays:
        for item in base:
            result = copy.deepcopy(item)
            if overlay.get("headers"):
                result["headers"] = copy.deepcopy(overlay["headers"])
            if overlay.get("queryParams"):
                result["queryParams"] = copy.deepcopy(overlay["queryParams"])
            merged.append(result)
    return merged


def _sorted_headers(values: dict[str, str] | None) -> list[Obj] | None:
    if not values:
        return None
    return [{"name": k, "value": v} for k, v in sorted(values.items(), key=lambda kv: kv)]


class GatewayAPIRouter(WeightedRouter):
    kind = KIND
    capabilities = CAPABILITIES

    def __init__(self, version: Version) -> None:
        self.version: Version = version
        self.provider = f"gatewayapi:{version}"
        self.api_version = f"{GROUP}/{version}"
        # v1beta1 routes have no primary cookie (Flagger sets it on v1 only).
        self.sets_primary_cookie = version == "v1"

    # --- builders ---------------------------------------------------------------------------

    def _require_gateways(self, canary: Canary) -> None:
        if not canary.spec.required_service.gateway_refs:
            raise RouterError("GatewayRefs must be specified when using Gateway API as a provider.")

    def _service_matches(self, canary: Canary) -> list[Obj]:
        return map_route_matches(canary.spec.required_service.match or [])

    def _rule_matches(self, canary: Canary) -> list[Obj]:
        return self._service_matches(canary) or [{"path": {"type": "PathPrefix", "value": "/"}}]

    def _filters(self, canary: Canary) -> list[Obj]:
        service = canary.spec.required_service
        filters: list[Obj] = []
        for direction, operations in (
            ("request", service.headers.request if service.headers else None),
            ("response", service.headers.response if service.headers else None),
        ):
            if operations is None:
                continue
            kind = "RequestHeaderModifier" if direction == "request" else "ResponseHeaderModifier"
            key = "requestHeaderModifier" if direction == "request" else "responseHeaderModifier"
            modifier = drop_none(
                {
                    "add": _sorted_headers(operations.add),
                    "set": _sorted_headers(operations.set),
                    "remove": list(operations.remove) if operations.remove else None,
                }
            )
            filters.append({"type": kind, key: modifier})
        rewrite = service.rewrite
        if rewrite is not None:
            url_rewrite: Obj = {}
            if rewrite.authority:
                url_rewrite["hostname"] = rewrite.authority
            if rewrite.uri:
                if rewrite.type == "ReplacePrefixMatch":
                    url_rewrite["path"] = {
                        "type": "ReplacePrefixMatch",
                        "replacePrefixMatch": rewrite.uri,
                    }
                else:
                    url_rewrite["path"] = {
                        "type": "ReplaceFullPath",
                        "replaceFullPath": rewrite.uri,
                    }
            filters.append({"type": "URLRewrite", "urlRewrite": url_rewrite})
        for mirror in service.mirror or []:
            ref = mirror.backend_ref
            filters.append(
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": drop_none(
                            {
                                "group": ref.group,
                                "kind": ref.kind,
                                "name": ref.name,
                                "namespace": ref.namespace,
                                "port": ref.port,
                            }
                        )
                    },
                }
            )
        if self.version == "v1" and service.cors_policy is not None:
            filters.append({"type": "CORS", "cors": self._cors(canary)})
        return filters

    @staticmethod
    def _cors(canary: Canary) -> Obj:
        """Istio's corsPolicy as the Gateway API CORS filter (exact origins only)."""
        policy = canary.spec.required_service.cors_policy
        assert policy is not None
        origins = list(policy.allow_origin or [])
        origins += [o.exact for o in policy.allow_origins or [] if o.exact]
        max_age = parse_go_duration(policy.max_age)
        cors: Obj = drop_none(
            {
                "allowOrigins": origins or None,
                "allowMethods": list(policy.allow_methods or []) or None,
                "allowHeaders": list(policy.allow_headers or []) or None,
                "exposeHeaders": list(policy.expose_headers or []) or None,
                "maxAge": int(max_age) if max_age else None,
                "allowCredentials": policy.allow_credentials,
            }
        )
        return cors

    @staticmethod
    def _backend(canary: Canary, name: str, weight: int) -> Obj:
        return {
            "group": "",
            "kind": "Service",
            "name": name,
            "port": canary.spec.required_service.port,
            "weight": weight,
        }

    def _rule(self, canary: Canary, matches: list[Obj], backends: list[Obj]) -> Obj:
        rule: Obj = {"matches": matches}
        filters = self._filters(canary)
        if filters:
            rule["filters"] = filters
        rule["backendRefs"] = backends
        service = canary.spec.required_service
        if self.version == "v1" and (service.timeout or service.backend_timeout):
            rule["timeouts"] = drop_none(
                {"request": service.timeout, "backendRequest": service.backend_timeout}
            )
        return rule

    def _spec(self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies | None) -> Obj:
        self._require_gateways(canary)
        names = service_names(canary)
        service = canary.spec.required_service
        spec: Obj = {
            "parentRefs": [drop_none(ref.to_wire()) for ref in service.gateway_refs or []],
        }
        if service.hosts:
            spec["hostnames"] = list(service.hosts)
        matches = self._rule_matches(canary)
        backends = [
            self._backend(canary, names.primary, weights.primary_weight),
            self._backend(canary, names.canary, weights.canary_weight),
        ]
        if weights.baseline_weight > 0:
            backends.append(self._backend(canary, names.baseline, weights.baseline_weight))
        weighted = self._rule(canary, matches, backends)
        analysis = canary.spec.analysis
        ab = map_route_matches(analysis.match) if analysis and analysis.match else []
        if ab:
            weighted["matches"] = _merge_matches(ab, matches)
            spec["rules"] = [
                weighted,
                self._rule(canary, matches, [self._backend(canary, names.primary, 100)]),
            ]
            return spec
        sticky_base = copy.deepcopy(weighted)
        if weights.mirrored:
            mirror: Obj = {
                "backendRef": {
                    "group": "",
                    "kind": "Service",
                    "name": names.canary,
                    "port": service.port,
                }
            }
            if analysis and analysis.mirror_weight:
                mirror["percent"] = analysis.mirror_weight
            weighted.setdefault("filters", []).append(
                {"type": "RequestMirror", "requestMirror": mirror}
            )
        if affinity_of(canary) is not None and cookies is not None:
            spec["rules"] = self._affinity_rules(canary, weights, cookies, weighted, sticky_base)
        else:
            spec["rules"] = [weighted]
        return spec

    def _affinity_rules(
        self,
        canary: Canary,
        weights: Routes,
        cookies: SessionAffinityCookies,
        weighted: Obj,
        sticky: Obj,
    ) -> list[Obj]:
        affinity = affinity_of(canary)
        assert affinity is not None
        names = service_names(canary)
        service_matches = self._service_matches(canary)

        def cookie_match(cookie: str) -> list[Obj]:
            header = {"name": "Cookie", "type": "RegularExpression", "value": cookie_regex(cookie)}
            return _merge_matches([{"headers": [header]}], service_matches)

        if weights.canary_weight > 0 and cookies.session_affinity_cookie:
            for backend in weighted["backendRefs"]:
                value = sticky_set_cookie(
                    canary,
                    affinity,
                    backend["name"],
                    cookies,
                    primary_cookie=self.sets_primary_cookie,
                )
                if value is not None:
                    backend["filters"] = [_set_cookie_filter(value)]
            sticky["matches"] = cookie_match(cookies.session_affinity_cookie)
            sticky["backendRefs"] = [
                self._backend(canary, names.primary, 0),
                self._backend(canary, names.canary, 100),
            ]
            rules = [sticky]
            if cookies.primary_session_affinity_cookie and self.version == "v1":
                primary_sticky = copy.deepcopy(sticky)
                primary_sticky["matches"] = cookie_match(cookies.primary_session_affinity_cookie)
                primary_sticky["backendRefs"] = [
                    self._backend(canary, names.primary, 100),
                    self._backend(canary, names.canary, 0),
                ]
                rules.append(primary_sticky)
            return [*rules, weighted]
        if cookies.previous_session_affinity_cookie:
            sticky["matches"] = cookie_match(cookies.previous_session_affinity_cookie)
            expire = {
                "name": SET_COOKIE_HEADER,
                "value": f"{cookies.previous_session_affinity_cookie}; Max-Age=-1",
            }
            filters = sticky.setdefault("filters", [])
            for item in filters:
                if item["type"] == "ResponseHeaderModifier":
                    item["responseHeaderModifier"].setdefault("add", []).append(expire)
                    break
            else:
                filters.append(_set_cookie_filter(expire["value"]))
        return [sticky, weighted]

    def _objects(
        self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies | None
    ) -> list[Obj]:
        return [self._routing_object(canary, self._spec(canary, weights, cookies))]

    def _live_set_cookies(self, canary: Canary, route: Obj | None) -> dict[str, str]:
        names = service_names(canary)
        found: dict[str, str] = {}
        for rule in ((route or {}).get("spec") or {}).get("rules") or []:
            for backend in rule.get("backendRefs") or []:
                for item in backend.get("filters") or []:
                    modifier = item.get("responseHeaderModifier") or {}
                    for header in modifier.get("add") or []:
                        if header.get("name") != SET_COOKIE_HEADER:
                            continue
                        if backend.get("name") == names.canary:
                            found["session"] = str(header.get("value", ""))
                        elif backend.get("name") == names.primary:
                            found["primary"] = str(header.get("value", ""))
        return found

    # --- the router interface ---------------------------------------------------------------

    def _live_weights(self, canary: Canary, existing: Sequence[Obj], current: Obj | None) -> Routes:
        """The weights and mirroring as written, whether or not the gateways accepted them yet."""
        live = self._read_weights(canary, current) if current is not None else INITIAL_WEIGHTS
        if live.primary_weight == 0 and live.canary_weight == 0:
            return INITIAL_WEIGHTS
        return live

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        route = self._required(canary, existing)
        if self.version == "v1":
            self._check_parents(canary, route)
        return self._read_weights(canary, route)

    def _check_parents(self, canary: Canary, route: Obj) -> None:
        """Weights of a route its gateways have not accepted (or not seen yet) mean nothing."""
        names = service_names(canary)
        generation = int(route.get("metadata", {}).get("generation") or 0)
        for parent in (route.get("status") or {}).get("parents") or []:
            parent_name = (parent.get("parentRef") or {}).get("name", "")
            accepted = next(
                (c for c in parent.get("conditions") or [] if c.get("type") == "Accepted"), None
            )
            prefix = f"HTTPRoute {names.apex}.{canary.namespace} parent {parent_name} is not ready"
            if accepted is None:
                raise RouterError(f"{prefix}: no Accepted condition")
            if accepted.get("status") != "True":
                raise RouterError(
                    f"{prefix}: Accepted is {accepted.get('status')} "
                    f"(reason {accepted.get('reason', '')}: {accepted.get('message', '')})"
                )
            observed = int(accepted.get("observedGeneration") or 0)
            if observed < generation:
                raise RouterError(
                    f"{prefix}: observedGeneration {observed} is behind generation {generation}"
                )

    def _read_weights(self, canary: Canary, route: Obj) -> Routes:
        names = service_names(canary)
        split = (0, 0, 0)
        mirrored = False
        weighted_rule: Obj | None = None
        affinity = affinity_of(canary) is not None
        for rule in (route.get("spec") or {}).get("rules") or []:
            backends = rule.get("backendRefs") or []
            if affinity and any(b.get("filters") for b in backends):
                weighted_rule = rule
            # the weighted rule: primary and canary (and a baseline's third backend)
            if len(backends) in (2, 3):
                split = _split(names, backends)
            for item in rule.get("filters") or []:
                mirror = item.get("requestMirror") or {}
                if (
                    item.get("type") == "RequestMirror"
                    and (mirror.get("backendRef") or {}).get("name") == names.canary
                ):
                    mirrored = True
        if weighted_rule is not None:
            split = _split(names, weighted_rule.get("backendRefs") or [])
        primary, canary_weight, baseline = split
        return Routes(primary, canary_weight, mirrored, baseline)

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        problems: list[Problem] = []
        if not canary.spec.required_service.gateway_refs:
            problems.append(
                Problem(
                    "spec.service.gatewayRefs",
                    "GatewayRefs must be specified when using Gateway API as a provider.",
                )
            )
        try:
            self._service_matches(canary)
            analysis = canary.spec.analysis
            map_route_matches(analysis.match if analysis and analysis.match else [])
        except RouterError as error:
            problems.append(Problem("spec.service.match / spec.analysis.match", str(error)))
        return problems + self._schema_rule_problems(canary)

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends are implementation-specific in Gateway API (the spec says "
                "implementations SHOULD NOT support them): Envoy Gateway, NGINX Gateway Fabric "
                "and Traefik's Gateway provider do not route to them, Istio resolves them as DNS "
                "services; check the HTTPRoute's ResolvedRefs condition",
                "warning",
            )
        ]

    def _schema_rule_problems(self, canary: Canary) -> list[Problem]:
        """The HTTPRoute CRD's CEL rules our settings could break (the API server rejects the
        route; devcluster does not evaluate CEL, so they are checked here)."""
        problems: list[Problem] = []
        service = canary.spec.required_service
        try:
            matches = self._rule_matches(canary)
            analysis = canary.spec.analysis
            ab = map_route_matches(analysis.match) if analysis and analysis.match else []
        except RouterError:
            return problems
        for index, match in enumerate(analysis.match or [] if analysis else []):
            if match.source_labels:
                problems.append(
                    Problem(
                        f"spec.analysis.match[{index}].sourceLabels",
                        "an HTTPRoute cannot match on the client's labels; the A/B rule would "
                        "match every request",
                    )
                )
        rewrite = service.rewrite
        if rewrite and rewrite.uri and rewrite.type == "ReplacePrefixMatch":
            for rule_matches in (_merge_matches(ab, matches) if ab else matches, matches):
                paths = [m.get("path", {}).get("type", "PathPrefix") for m in rule_matches]
                if paths != ["PathPrefix"]:
                    problems.append(
                        Problem(
                            "spec.service.rewrite",
                            "type ReplacePrefixMatch: the HTTPRoute rule needs exactly one "
                            f"PathPrefix match, the Canary produces {len(rule_matches)} match(es) "
                            f"of type {paths}",
                        )
                    )
                    break
        if self.version == "v1" and service.timeout and service.backend_timeout:
            request = parse_go_duration(service.timeout)
            backend = parse_go_duration(service.backend_timeout)
            if request is not None and backend is not None and backend > request > 0:
                problems.append(
                    Problem(
                        "spec.service.backendTimeout",
                        f"{service.backend_timeout} is longer than spec.service.timeout "
                        f"{service.timeout}; the HTTPRoute would be rejected",
                    )
                )
        return problems


def _split(names: ServiceNames, backends: Sequence[Obj]) -> tuple[int, int, int]:
    """Primary, canary and baseline weights of one rule's backends (a missing one weighs 0)."""
    weights = {names.primary: 0, names.canary: 0, names.baseline: 0}
    for backend in backends:
        name = backend.get("name")
        if name in weights:
            weights[name] = int(backend.get("weight", 1))
    return weights[names.primary], weights[names.canary], weights[names.baseline]


def _set_cookie_filter(value: str) -> Obj:
    return {
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [{"name": SET_COOKIE_HEADER, "value": value}]},
    }


ROUTER_V1 = GatewayAPIRouter("v1")
ROUTER_V1BETA1 = GatewayAPIRouter("v1beta1")
