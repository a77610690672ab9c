"""Istio: DestinationRules `<apex>-primary`/`<apex>-canary` and the VirtualService `<apex>`.

Layouts of `spec.http` (as Flagger's `pkg/router/istio.go`): one weighted route; A/B =
header-matched weighted route + primary-only route; session affinity = sticky cookie route(s) before
the weighted route; `appProtocol: tcp` = one weighted `spec.tcp` route. Mirroring adds `mirror` (+
`mirrorPercentage`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.routers.common import (
    SET_COOKIE_HEADER,
    Capabilities,
    FinalizeAction,
    Obj,
    ObjectRef,
    RouterError,
    Write,
    affinity_of,
    contained_in,
    cookie_regex,
    drop_none,
    find,
    new_object,
    service_names,
    sticky_set_cookie,
    wire,
)
from coalmine.routers.weighted import WeightedRouter
from coalmine.targets.labels import is_owned_by

API_VERSION = "networking.istio.io/v1beta1"
VIRTUAL_SERVICE = "VirtualService"
DESTINATION_RULE = "DestinationRule"
STICKY_ROUTE = "sticky-route"
STICKY_PRIMARY_ROUTE = "sticky-route-primary"
CAPABILITIES = PROVIDERS["istio"].capabilities
# A TCP route has no headers to match, nothing to mirror and no cookies.
CAPABILITIES_TCP = Capabilities(
    ab_testing=False, mirroring=False, session_affinity=False, tcp=True, three_way=True
)

__all__ = ["ROUTER", "IstioRouter", "merge_match_conditions"]


def _is_tcp(canary: Canary) -> bool:
    return (canary.spec.required_service.app_protocol or "").lower() == "tcp"


def _has_affinity(canary: Canary) -> bool:
    return bool(canary.spec.analysis and canary.spec.analysis.session_affinity)


def _ab_matches(canary: Canary) -> list[Obj]:
    analysis = canary.spec.analysis
    return [m.to_wire() for m in analysis.match] if analysis and analysis.match else []


def _service_matches(canary: Canary) -> list[Obj]:
    return [m.to_wire() for m in canary.spec.required_service.match or []]


def merge_match_conditions(canary_matches: list[Obj], defaults: list[Obj]) -> list[Obj]:
    """Cartesian product: each A/B (or cookie) match on top of each base match of spec.service;
    headers and sourceLabels of the former override the latter's."""
    if not defaults:
        return copy.deepcopy(canary_matches)
    merged: list[Obj] = []
    for overlay in canary_matches:
        for base in defaults:
            item = copy.deepcopy(base)
            if overlay.get("headers") is not None:
                item["headers"] = copy.deepcopy(overlay["headers"])
            if overlay.get("sourceLabels") is not None:
                item["sourceLabels"] = copy.deepcopy(overlay["sourceLabels"])
            merged.append(item)
    return merged


class IstioRouter(WeightedRouter):
    api_version = API_VERSION
    kind = VIRTUAL_SERVICE
    capabilities = CAPABILITIES
    provider = "istio"

    # --- object names -----------------------------------------------------------------------

    def references(self, canary: Canary) -> list[ObjectRef]:
        names = service_names(canary)
        ns = canary.namespace
        return [
            ObjectRef(API_VERSION, DESTINATION_RULE, names.canary, ns),
            ObjectRef(API_VERSION, DESTINATION_RULE, names.primary, ns),
            ObjectRef(API_VERSION, VIRTUAL_SERVICE, names.apex, ns),
        ]

    # --- builders ---------------------------------------------------------------------------

    def _destination(self, canary: Canary, host: str, weight: int) -> Obj:
        service = canary.spec.required_service
        destination: Obj = {"host": host}
        gateways = service.gateways or []
        if service.port_discovery and ((gateways and gateways[0] != "mesh") or service.delegation):
            destination["port"] = {"number": service.port}
        return {"destination": destination, "weight": weight}

    def _http_route(self, canary: Canary, match: list[Obj], route: list[Obj]) -> Obj:
        service = canary.spec.required_service
        rewrite = None
        if service.rewrite and (service.rewrite.uri or service.rewrite.authority):
            rewrite = {"uri": service.rewrite.uri, "authority": service.rewrite.authority}
        result: Obj = drop_none(
            {
                "match": match or None,
                "rewrite": rewrite,
                "timeout": service.timeout,
                "retries": wire(service.retries),
                "corsPolicy": wire(service.cors_policy),
                "headers": wire(service.headers),
            }
        )
        result["route"] = route
        return result

    def _hosts_and_gateways(self, canary: Canary) -> tuple[list[str], list[str]]:
        service = canary.spec.required_service
        names = service_names(canary)
        if service.delegation:
            if service.hosts or service.gateways:
                raise RouterError(
                    f"VirtualService {names.apex}.{canary.namespace} cannot have hosts and "
                    "gateways when delegation enabled"
                )
            return [], []
        hosts = list(service.hosts or [])
        if not any(h == names.apex or h == "*" for h in hosts):
            hosts.append(names.apex)
        gateways = list(service.gateways or []) or ["mesh"]
        return hosts, gateways

    def _vs_spec(
        self,
        canary: Canary,
        weights: Routes,
        cookies: SessionAffinityCookies | None,
    ) -> Obj:
        names = service_names(canary)
        hosts, gateways = self._hosts_and_gateways(canary)
        spec: Obj = {"hosts": hosts, "gateways": gateways}

        def weighted() -> list[Obj]:
            route = [
                self._destination(canary, names.primary, weights.primary_weight),
                self._destination(canary, names.canary, weights.canary_weight),
            ]
            if weights.baseline_weight > 0:
                route.append(self._destination(canary, names.baseline, weights.baseline_weight))
            return route

        if _is_tcp(canary):
            tcp_route: Obj = {"route": weighted()}
            ports = [{"port": m.port} for m in canary.spec.required_service.match or [] if m.port]
            if ports:
                tcp_route = {"match": ports, **tcp_route}
            spec["tcp"] = [tcp_route]
            return spec

        service_match = _service_matches(canary)
        ab = _ab_matches(canary)
        if ab:
            spec["http"] = [
                self._http_route(canary, merge_match_conditions(ab, service_match), weighted()),
                self._http_route(
                    canary,
                    service_match,
                    [self._destination(canary, names.primary, weights.primary_weight)],
                ),
            ]
            return spec

        weighted_route = self._http_route(canary, service_match, weighted())
        if weights.mirrored:
            weighted_route["mirror"] = {"host": names.canary}
            analysis = canary.spec.analysis
            if analysis and analysis.mirror_weight:
                weighted_route["mirrorPercentage"] = {"value": float(analysis.mirror_weight)}
        if _has_affinity(canary) and cookies is not None:
            spec["http"] = self._affinity_routes(canary, weights, cookies, weighted_route)
        else:
            spec["http"] = [weighted_route]
        return spec

    def _affinity_routes(
        self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies, weighted_route: Obj
    ) -> list[Obj]:
        """Sticky routes first (cookie holders keep their backend), the weighted split last."""
        affinity = affinity_of(canary)
        if affinity is None:
            return [weighted_route]
        names = service_names(canary)
        service_match = _service_matches(canary)
        sticky = copy.deepcopy(weighted_route)
        sticky.pop("mirror", None)
        sticky.pop("mirrorPercentage", None)
        sticky = {"name": STICKY_ROUTE, **sticky}
        if weights.canary_weight > 0 and cookies.session_affinity_cookie:
            for destination in weighted_route["route"]:
                value = sticky_set_cookie(canary, affinity, _host(destination), cookies)
                if value is not None:
                    destination["headers"] = {"response": {"add": {SET_COOKIE_HEADER: value}}}
            sticky["match"] = merge_match_conditions(
                [{"headers": {"Cookie": {"regex": cookie_regex(cookies.session_affinity_cookie)}}}],
                service_match,
            )
            sticky["route"] = [
                self._destination(canary, names.primary, 0),
                self._destination(canary, names.canary, 100),
            ]
            routes = [sticky]
            if cookies.primary_session_affinity_cookie:
                primary_sticky = copy.deepcopy(sticky)
                primary_sticky["name"] = STICKY_PRIMARY_ROUTE
                primary_sticky["match"] = merge_match_conditions(
                    [
                        {
                            "headers": {
                                "Cookie": {
                                    "regex": cookie_regex(cookies.primary_session_affinity_cookie)
                                }
                            }
                        }
                    ],
                    service_match,
                )
                primary_sticky["route"] = [
                    self._destination(canary, names.primary, 100),
                    self._destination(canary, names.canary, 0),
                ]
                routes.append(primary_sticky)
            return [*routes, weighted_route]
        if cookies.previous_session_affinity_cookie:
            sticky["match"] = merge_match_conditions(
                [
                    {
                        "headers": {
                            "Cookie": {
                                "regex": cookie_regex(cookies.previous_session_affinity_cookie)
                            }
                        }
                    }
                ],
                service_match,
            )
            headers = sticky.setdefault("headers", {})
            response = headers.setdefault("response", {})
            response.setdefault("add", {})[SET_COOKIE_HEADER] = (
                f"{cookies.previous_session_affinity_cookie}; Max-Age=-1"
            )
        return [sticky, weighted_route]

    def _objects(
        self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies | None
    ) -> list[Obj]:
        names = service_names(canary)
        policy = canary.spec.required_service.traffic_policy
        objects = []
        for host in (names.canary, names.primary):
            spec: Obj = {"host": host}
            if policy:
                spec["trafficPolicy"] = copy.deepcopy(policy)
            objects.append(new_object(canary, API_VERSION, DESTINATION_RULE, host, spec))
        objects.append(self._routing_object(canary, self._vs_spec(canary, weights, cookies)))
        return objects

    def _live_set_cookies(self, canary: Canary, vs: Obj | None) -> dict[str, str]:
        names = service_names(canary)
        found: dict[str, str] = {}
        for route in ((vs or {}).get("spec") or {}).get("http") or []:
            for destination in route.get("route") or []:
                add = ((destination.get("headers") or {}).get("response") or {}).get("add") or {}
                value = add.get(SET_COOKIE_HEADER)
                if value is None:
                    continue
                if _host(destination) == names.canary:
                    found["session"] = str(value)
                elif _host(destination) == names.primary:
                    found["primary"] = str(value)
        return found

    def _taking_over(self, canary: Canary, current: Obj, merged: Obj) -> None:
        """Keep the user's own VirtualService spec so Finalize can put it back.

        Only for a VirtualService someone else created (not controlled by this Canary), only when
        kubectl's annotation does not already hold it, and only once: Flagger overwrote it on every
        drift, which lost the original after the second update.
        """
        annotations = current.get("metadata", {}).get("annotations") or {}
        if naming.KUBECTL_LAST_APPLIED_ANNOTATION in annotations:
            return
        if naming.ORIGINAL_CONFIGURATION_ANNOTATION in annotations:
            return
        if is_owned_by(current, canary.name):
            return
        if contained_in(merged.get("spec"), current.get("spec")):
            return
        merged["metadata"].setdefault("annotations", {})[
            naming.ORIGINAL_CONFIGURATION_ANNOTATION
        ] = json.dumps(current.get("spec") or {}, separators=(",", ":"), sort_keys=True)

    # --- the router interface ---------------------------------------------------------------

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        names = service_names(canary)
        vs = self._required(canary, existing)
        spec = vs.get("spec") or {}
        routes: list[Obj] = spec.get("tcp" if _is_tcp(canary) else "http") or []
        chosen: Obj = {}
        for route in routes:
            if any(_host(d) == names.canary for d in route.get("route") or []):
                chosen = route
        primary = canary_weight = baseline = 0
        for destination in chosen.get("route") or []:
            if _host(destination) == names.primary:
                primary = int(destination.get("weight") or 0)
            elif _host(destination) == names.canary:
                canary_weight = int(destination.get("weight") or 0)
            elif _host(destination) == names.baseline:
                baseline = int(destination.get("weight") or 0)
        mirrored = bool((chosen.get("mirror") or {}).get("host")) and not _is_tcp(canary)
        if _has_affinity(canary) and not _is_tcp(canary):
            for route in routes:
                for destination in route.get("route") or []:
                    if destination.get("headers") is None:
                        continue
                    if _host(destination) == names.primary:
                        primary = int(destination.get("weight") or 0)
                    elif _host(destination) == names.canary:
                        canary_weight = int(destination.get("weight") or 0)
        if primary == 0 and canary_weight == 0:
            raise RouterError(
                f"VirtualService {names.apex}.{canary.namespace} does not contain routes for "
                f"{names.apex}-primary and {names.apex}-canary"
            )
        return Routes(primary, canary_weight, mirrored, baseline)

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Put back the VirtualService spec the user had before the Canary took it over."""
        names = service_names(canary)
        vs = find(existing, VIRTUAL_SERVICE, names.apex)
        if vs is None:
            return []
        annotations = vs.get("metadata", {}).get("annotations") or {}
        stored: Any
        if naming.KUBECTL_LAST_APPLIED_ANNOTATION in annotations:
            source = naming.KUBECTL_LAST_APPLIED_ANNOTATION
            stored = _load(annotations[source], vs, canary, source)
            stored = stored.get("spec") if isinstance(stored, dict) else None
        elif naming.ORIGINAL_CONFIGURATION_ANNOTATION in annotations:
            source = naming.ORIGINAL_CONFIGURATION_ANNOTATION
            stored = _load(annotations[source], vs, canary, source)
        else:
            return []
        if not isinstance(stored, dict):
            return []
        restored = copy.deepcopy(vs)
        restored.pop("status", None)
        restored["spec"] = stored
        return [Write(restored)]

    def _capabilities_for(self, canary: Canary) -> Capabilities:
        return CAPABILITIES_TCP if _is_tcp(canary) else CAPABILITIES

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        service = canary.spec.required_service
        if service.delegation and (service.hosts or service.gateways):
            names = service_names(canary)
            return [
                Problem(
                    "spec.service.delegation",
                    f"VirtualService {names.apex}.{canary.namespace} cannot have hosts and "
                    "gateways when delegation enabled",
                )
            ]
        return []

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        names = service_names(canary)
        policy = canary.spec.required_service.traffic_policy
        if ((policy or {}).get("tls") or {}).get("mode") == "ISTIO_MUTUAL":
            return [
                Problem(
                    "spec.service.trafficPolicy.tls.mode",
                    f"ISTIO_MUTUAL cannot reach the ExternalName backends of {names.primary}/"
                    f"{names.canary}: hosts outside the mesh have no Istio certificates; use "
                    "DISABLE or SIMPLE",
                )
            ]
        return [
            Problem(
                "spec.targetRef",
                "ExternalName backends: Istio routes to the DNS name of each copy; the external "
                "endpoint is outside the mesh (no Istio mTLS, no sidecar metrics on its side) and "
                "the copies must declare the port",
                "warning",
            )
        ]


def _host(destination: Obj) -> str | None:
    host = (destination.get("destination") or {}).get("host")
    return str(host) if host is not None else None


def _load(text: str, vs: Obj, canary: Canary, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        name = vs.get("metadata", {}).get("name")
        raise RouterError(
            f"VirtualService {name}.{canary.namespace} failed to unMarshal annotation {source}"
        ) from error


ROUTER = IstioRouter()
