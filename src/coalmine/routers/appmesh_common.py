"""What both App Mesh routers share (Flagger's `pkg/router/appmesh.go` and `appmesh_v1beta2.go`):
listener protocol and port, the route prefix, retry policy, A/B header matches, the App Mesh
gateway annotations, and the compatibility rules (what App Mesh's CRDs would refuse or what the
route would silently match differently).

The two API versions differ in shape, not in meaning, so the values are computed here once and
each router puts them where its version wants them.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Sequence

from coalmine.api.models import ABMatch, Canary, StringMatch, parse_go_duration
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Capabilities,
    Obj,
    ObjectRef,
    RouterError,
    RouteUpdate,
    ServiceNames,
    TargetKind,
    apex_annotations,
    apex_labels,
    drop_none,
    find,
    ignored_match_fields,
    is_external_name,
    merge_onto,
    needs_write,
    new_object,
    require,
    service_names,
    weight_from,
)
from coalmine.routers.split import SplitRouter

#: The Canary annotation that turns on the virtual nodes' Envoy access log (Flagger's).
ACCESS_LOG_ANNOTATION = "appmesh.flagger.app/accesslog"
ACCESS_LOG_PATH = "/dev/stdout"
GATEWAY_PREFIX = "gateway.appmesh.k8s.aws"
#: App Mesh's HTTP retry events (the CRD's enum); anything else is refused by the API server.
HTTP_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")
DEFAULT_RETRY_EVENTS = ("gateway-error",)
DEFAULT_PER_RETRY_MS = 250
#: CRD limits of a route's header matches.
MAX_HEADERS = 10
MAX_HEADER_NAME = 50
MAX_HEADER_VALUE = 255
#: A/B routes: matched first (priority 10, 11, …), then the rest to the primary (priority 20).
AB_PRIORITY = 10
DEFAULT_PRIORITY = 20
_HTTP2_PROTOCOLS = ("http2", "h2c", "kubernetes.io/h2c")


def protocol(canary: Canary) -> str:
    """The listener protocol: `grpc` when the port name says so (Flagger), else from
    `appProtocol` (`grpc`, `http2`/`h2c`), else `http`."""
    service = canary.spec.required_service
    if "grpc" in (service.port_name or ""):
        return "grpc"
    app_protocol = (service.app_protocol or "").lower()
    if app_protocol == "grpc":
        return "grpc"
    if app_protocol in _HTTP2_PROTOCOLS:
        return "http2"
    return "http"


def route_key(proto: str) -> str:
    """The v1beta2 route field for a listener protocol (gRPC keeps Flagger's `httpRoute`)."""
    return "http2Route" if proto == "http2" else "httpRoute"


def container_port(canary: Canary) -> int:
    """The port the pods listen on: a numeric `targetPort`, else `port` (Flagger's v1beta2)."""
    service = canary.spec.required_service
    if isinstance(service.target_port, int) and service.target_port > 0:
        return service.target_port
    return service.port


def route_prefix(canary: Canary) -> str:
    """App Mesh matches URI prefixes only: `service.match[0].uri.prefix`, else `/`."""
    matches = canary.spec.required_service.match or []
    if matches and matches[0].uri and matches[0].uri.prefix:
        return matches[0].uri.prefix
    return "/"


def millis(text: str | None) -> int | None:
    """Milliseconds of a Go duration, None when absent or unparsable (Flagger skips those)."""
    seconds = parse_go_duration(text)
    return None if seconds is None else round(seconds * 1000)


def retry_events(canary: Canary) -> list[str]:
    retries = canary.spec.required_service.retries
    if retries is None or not retries.retry_on:
        return list(DEFAULT_RETRY_EVENTS)
    return [event.strip() for event in retries.retry_on.split(",") if event.strip()]


def retry_values(canary: Canary) -> tuple[int, int, list[str]] | None:
    """(per-retry timeout ms, max retries, events) of `service.retries`, Flagger's defaults
    (250 ms, 1 retry, `gateway-error`) filling what is unset; None without retries."""
    retries = canary.spec.required_service.retries
    if retries is None:
        return None
    timeout = millis(retries.per_try_timeout)
    attempts = retries.attempts if retries.attempts and retries.attempts > 0 else 1
    return (
        DEFAULT_PER_RETRY_MS if timeout is None else timeout,
        attempts,
        retry_events(canary),
    )


def ab_matches(canary: Canary) -> list[ABMatch]:
    analysis = canary.spec.effective_analysis
    return list(analysis.match or []) if analysis else []


def header_match(value: StringMatch) -> Obj:
    """An Istio-style string match as App Mesh's header match method (same four forms)."""
    return {kind: getattr(value, kind) for kind in value.kinds if getattr(value, kind)}


def headers(match: ABMatch) -> list[Obj]:
    """The header conditions of one A/B match (sorted by name: a stable spec to compare)."""
    result: list[Obj] = []
    for name in sorted(match.headers or {}):
        entry: Obj = {"name": name}
        method = header_match((match.headers or {})[name])
        if method:
            entry["match"] = method
        result.append(entry)
    return result


def gateway_annotations(canary: Canary) -> dict[str, str]:
    """App Mesh gateway annotations of the apex virtual service when `service.hosts` is set."""
    service = canary.spec.required_service
    if not service.hosts:
        return {}
    result = {
        f"{GATEWAY_PREFIX}/expose": "true",
        f"{GATEWAY_PREFIX}/domain": "".join(f"{host}," for host in service.hosts),
    }
    if service.timeout:
        result[f"{GATEWAY_PREFIX}/timeout"] = service.timeout
    if service.retries and service.retries.attempts and service.retries.attempts > 0:
        result[f"{GATEWAY_PREFIX}/retries"] = str(service.retries.attempts)
    return result


def access_log(canary: Canary) -> Obj | None:
    if (canary.metadata.annotations or {}).get(ACCESS_LOG_ANNOTATION) != "enabled":
        return None
    return {"accessLog": {"file": {"path": ACCESS_LOG_PATH}}}


def node_hosts(canary: Canary, names: ServiceNames, suffix: str) -> dict[str, str]:
    """DNS host of each virtual node: the Kubernetes Service it stands for."""
    return {
        name: f"{name}.{canary.namespace}{suffix}"
        for name in (names.apex, names.primary, names.canary)
    }


# --- compatibility ------------------------------------------------------------------------------


def _retry_problems(canary: Canary) -> list[Problem]:
    retries = canary.spec.required_service.retries
    if retries is None or not retries.retry_on:
        return []
    unknown = [event for event in retry_events(canary) if event not in HTTP_RETRY_EVENTS]
    if not unknown:
        return []
    return [
        Problem(
            "spec.service.retries.retryOn",
            f"App Mesh retries on {', '.join(HTTP_RETRY_EVENTS)} only; "
            f"{', '.join(unknown)} would be refused by the App Mesh CRD",
        )
    ]


def _header_problems(index: int, match: ABMatch) -> list[Problem]:
    path = f"spec.analysis.match[{index}]"
    found = match.headers or {}
    problems: list[Problem] = []
    if len(found) > MAX_HEADERS:
        problems.append(
            Problem(f"{path}.headers", f"App Mesh matches at most {MAX_HEADERS} headers a route")
        )
    for name, value in found.items():
        if len(name) > MAX_HEADER_NAME:
            problems.append(
                Problem(
                    f"{path}.headers.{name}",
                    f"App Mesh header names are at most {MAX_HEADER_NAME} characters",
                )
            )
        if any(len(text) > MAX_HEADER_VALUE for text in header_match(value).values()):
            problems.append(
                Problem(
                    f"{path}.headers.{name}",
                    f"App Mesh header values are at most {MAX_HEADER_VALUE} characters",
                )
            )
    if not found:
        problems.append(Problem(path, "App Mesh A/B routes match headers; this match has none"))
    return problems


def rule_problems(canary: Canary, provider: str) -> list[Problem]:
    """What the App Mesh CRDs would refuse, or an A/B route that would match more than asked."""
    problems = _retry_problems(canary)
    for index, match in enumerate(ab_matches(canary)):
        problems += ignored_match_fields(index, match, provider, "headers")
        problems += _header_problems(index, match)
    return problems


def external_name_problems() -> list[Problem]:
    return [
        Problem(
            "spec.targetRef",
            "ExternalName backends: the virtual nodes resolve the copies by DNS (Envoy follows "
            "the CNAME) but select no pods, so no sidecar serves them inside the mesh",
            "warning",
        )
    ]


def route_names(apex: str, count: int) -> list[str]:
    """Names of the A/B routes: `<apex>-a` for the first match (Flagger's), `<apex>-a<N>` after."""
    return [f"{apex}-a" if index == 0 else f"{apex}-a{index}" for index in range(count)]


# --- the life cycle both versions share ---------------------------------------------------------


class AppMeshLifecycle(SplitRouter):
    """Reconcile / SetRoutes / GetRoutes over the objects an App Mesh version writes.

    Like `WeightedRouter` (rebuild at the live weights, write only what differs, SetRoutes
    rewrites the routing object), but the builder also sees the live objects: the v1beta2 virtual
    nodes select the pods of the `<apex>-primary`/`-canary` Services, and fields the App Mesh
    controller owns (`awsName`, `meshRef`) are kept on every write, as Flagger keeps them.
    """

    api_version: str
    #: The kind of the routing object (`_name` names it); its first route holds the split.
    kind: str
    provider: str
    capabilities: Capabilities
    #: Spec fields the App Mesh controller sets; a write keeps the live values.
    system_fields: tuple[str, ...] = ()

    @abstractmethod
    def _name(self, canary: Canary) -> str:
        """The routing object's name."""

    @abstractmethod
    def _objects(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> list[Obj]:
        """Every object at these weights, the routing object first among its kind."""

    @abstractmethod
    def _target_name(self, target: Obj) -> str:
        """The virtual node a weighted target names."""

    @abstractmethod
    def _first_route_targets(self, routing: Obj) -> list[Obj]:
        """The weighted targets of the routing object's first route."""

    @abstractmethod
    def references(self, canary: Canary) -> list[ObjectRef]: ...

    @abstractmethod
    def _route(
        self, canary: Canary, name: str, targets: list[tuple[str, int]], **match: object
    ) -> Obj:
        """One route to these (virtual node, weight) targets; `match` adds to the prefix."""

    def _extra_problems(self, canary: Canary) -> list[Problem]:
        return []

    def _object(self, canary: Canary, kind: str, name: str, spec: Obj, **extra: str) -> Obj:
        """An object of this API version with the apex labels/annotations (plus `extra`
        annotations), owned by the Canary."""
        return new_object(
            canary,
            self.api_version,
            kind,
            name,
            drop_none(spec),
            labels=apex_labels(canary),
            annotations={**apex_annotations(canary), **extra},
        )

    def _routes(self, canary: Canary, router: str, weights: Routes) -> list[Obj]:
        """The routes of a router: the split, or with `analysis.match` on the apex router one
        A/B route per match (`<apex>-a`, `<apex>-a1`, …) then the rest to the primary."""
        names = service_names(canary)
        targets = weighted_pairs(names, weights)
        matches = ab_matches(canary)
        if router != names.apex or not matches:
            return [self._route(canary, router, targets)]
        routes = []
        for index, (route, match) in enumerate(
            zip(route_names(names.apex, len(matches)), matches, strict=True)
        ):
            built = self._route(canary, route, targets, headers=headers(match))
            routes.append({**built, "priority": AB_PRIORITY + index})
        rest = self._route(canary, f"{names.apex}-b", [(names.primary, 100)])
        return [*routes, {**rest, "priority": DEFAULT_PRIORITY}]

    def _kept(self, live: Obj | None, merged: Obj) -> Obj:
        if live is None:
            return merged
        spec = merged.setdefault("spec", {})
        for key in self.system_fields:
            value = (live.get("spec") or {}).get(key)
            if value is not None:
                spec[key] = copy.deepcopy(value)
        return merged

    def _required(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        return require(existing, self.kind, self._name(canary), canary.namespace)

    def _desired_objects(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> list[Obj]:
        return [self._merged(existing, obj) for obj in self._objects(canary, existing, weights)]

    def _merged(self, existing: Sequence[Obj], obj: Obj) -> Obj:
        live = find(existing, obj["kind"], obj["metadata"]["name"])
        return self._kept(live, merge_onto(live, obj))

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Missing objects, and drifted ones rebuilt at the weights that are live."""
        current = find(existing, self.kind, self._name(canary))
        live = self._live_weights(canary, existing, current)
        writes = []
        for obj in self._objects(canary, existing, live):
            if needs_write(find(existing, obj["kind"], obj["metadata"]["name"]), obj):
                writes.append(self._merged(existing, obj))
        return writes

    def _route_update(
        self, canary: Canary, existing: Sequence[Obj], weights: Routes
    ) -> RouteUpdate:
        self._required(canary, existing)
        built = self._objects(canary, existing, weights)
        name = self._name(canary)
        routing = next(o for o in built if (o["kind"], o["metadata"]["name"]) == (self.kind, name))
        return RouteUpdate([self._merged(existing, routing)])

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        """Flagger's reading: the first route must hold exactly two weighted targets."""
        routing = self._required(canary, existing)
        name = self._name(canary)  # Flagger's messages name the object without the namespace
        targets = self._first_route_targets(routing)
        if len(targets) != 2:
            raise RouterError(f"{self.kind} routes {name} not found")
        names = service_names(canary)
        weights = {self._target_name(t): weight_from(t.get("weight")) for t in targets}
        primary, canary_weight = weights.get(names.primary, 0), weights.get(names.canary, 0)
        if primary == 0 and canary_weight == 0:
            raise RouterError(
                f"{self.kind} {name} does not contain routes for {names.primary} and {names.canary}"
            )
        return Routes(primary, canary_weight)

    def _router_problems(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        existing: Sequence[Obj],
    ) -> list[Problem]:
        problems: list[Problem] = []
        problems += rule_problems(canary, self.provider) + self._extra_problems(canary)
        if is_external_name(target_service):
            problems += external_name_problems()
        return problems


def weighted_pairs(names: ServiceNames, weights: Routes) -> list[tuple[str, int]]:
    """(virtual node, weight), canary first as Flagger writes them."""
    return [(names.canary, weights.canary_weight), (names.primary, weights.primary_weight)]
