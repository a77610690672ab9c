"""Shared pieces of the pure routers: weights, errors, provider strings, metadata, comparison,
and `WeightedRouter`, the life cycle of the routers whose split lives in one object `<apex>`.

Every router module is a set of pure functions over plain dicts (the routing objects as the API
server stores them). The I/O layer reads the objects from the watch cache, hands them in as
`existing`, and writes whatever comes back; nothing here talks to Kubernetes.
"""

from __future__ import annotations

import copy
import random
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coalmine.api import naming, providers
from coalmine.api.models import ABMatch, Canary, SessionAffinity
from coalmine.api.validation.problems import Problem
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.targets import kinds as target_kinds
from coalmine.targets import labels

Obj = dict[str, Any]


class RouterError(Exception):
    """A routing object is missing, malformed or not ready; the message names object and reason."""


INITIAL_WEIGHTS = Routes(100, 0, False)


# Provider strings are parsed by the provider table (re-exported here for the routers).
ProviderSpec = providers.ProviderSpec
parse_provider = providers.parse


@dataclass(frozen=True)
class ObjectRef:
    """An object a router reads or writes, so the I/O layer knows what to watch and fetch."""

    api_version: str
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Delete:
    """Finalize action: delete this object."""

    ref: ObjectRef


@dataclass(frozen=True)
class Write:
    """Finalize action: replace the object with this one (it carries resourceVersion when known)."""

    obj: Obj


FinalizeAction = Delete | Write


@dataclass(frozen=True)
class RouteUpdate:
    """What SetRoutes produces: objects to write, and status fields when session affinity is used."""

    objects: list[Obj]
    cookies: SessionAffinityCookies | None = None


# A key of the target-kind table (`coalmine.targets.kinds`).
TargetKind = target_kinds.TargetKind


class PureRouter(Protocol):
    """The pure half of a router; the I/O half (base.py's Router) fetches `existing` and writes."""

    provider: str
    capabilities: Capabilities

    def references(self, canary: Canary) -> list[ObjectRef]: ...

    def desired(
        self,
        canary: Canary,
        *,
        existing: Sequence[Obj] = (),
        primary_weight: int = 100,
        canary_weight: int = 0,
        mirrored: bool = False,
    ) -> list[Obj]: ...

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]: ...

    def set_routes(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
    ) -> RouteUpdate: ...

    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes: ...

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]: ...

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]: ...


# --- names and metadata -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceNames:
    apex: str
    primary: str
    canary: str


def service_names(canary: Canary) -> ServiceNames:
    apex = canary.spec.apex_name
    return ServiceNames(apex, naming.primary_name(apex), naming.canary_name(apex))


def owner_reference(canary: Canary) -> Obj:
    """The Canary as controller owner (targets.labels builds it), refusing a Canary without a
    uid: the API server would reject the reference, and the object would never be collected."""
    if not canary.metadata.uid:
        raise RouterError(f"Canary {canary.key} has no metadata.uid; cannot own routing objects")
    return labels.owner_reference(canary)


def with_toolkit_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """Flagger's router-side filterMetadata: Flux must not fight the operator over this object."""
    result = dict(annotations or {})
    result.update(naming.TOOLKIT_DISABLE_ANNOTATIONS)
    return result


def apex_labels(canary: Canary) -> dict[str, str]:
    apex = canary.spec.required_service.apex
    return dict(apex.labels or {}) if apex else {}


def apex_annotations(canary: Canary) -> dict[str, str]:
    apex = canary.spec.required_service.apex
    return with_toolkit_annotations(apex.annotations if apex else None)


def new_object(
    canary: Canary,
    api_version: str,
    kind: str,
    name: str,
    spec: Obj,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owned: bool = True,
) -> Obj:
    metadata: Obj = {"name": name, "namespace": canary.namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owned:
        metadata["ownerReferences"] = [owner_reference(canary)]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def find(existing: Sequence[Obj], kind: str, name: str) -> Obj | None:
    for obj in existing:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    return None


def require(existing: Sequence[Obj], kind: str, name: str, namespace: str) -> Obj:
    obj = find(existing, kind, name)
    if obj is None:
        raise RouterError(f"{kind} {name}.{namespace} get query error: not found")
    return obj


def is_external_name(service: Obj | None) -> bool:
    return bool(service and (service.get("spec") or {}).get("type") == "ExternalName")


# --- comparison and merging ---------------------------------------------------------------------


def contained_in(wanted: Any, actual: Any) -> bool:
    """True when `actual` already says everything `wanted` says.

    Extra keys in `actual` are allowed (fields the API server defaulted, e.g. a Gateway API
    backendRef's `group`); lists must have the same length and match element by element.
    """
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return False
        return all(contained_in(value, actual.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(wanted) != len(actual):
            return False
        return all(contained_in(w, a) for w, a in zip(wanted, actual, strict=True))
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if isinstance(wanted, int | float) and isinstance(actual, int | float):
        return float(wanted) == float(actual)
    return bool(wanted == actual)


def merge_onto(existing: Obj | None, built: Obj) -> Obj:
    """The object to write: `built`'s spec and metadata, keeping the live object's identity and
    any labels/annotations someone else put there (foreign keys survive our writes)."""
    if existing is None:
        return copy.deepcopy(built)
    result = copy.deepcopy(existing)
    result.pop("status", None)
    result["apiVersion"] = built["apiVersion"]
    result["kind"] = built["kind"]
    metadata = result.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        merged = dict(metadata.get(key) or {})
        merged.update(built["metadata"].get(key) or {})
        if merged:
            metadata[key] = merged
    if "spec" in built:
        result["spec"] = copy.deepcopy(built["spec"])
    return result


def needs_write(existing: Obj | None, built: Obj, *, compare: Sequence[str] = ("spec",)) -> bool:
    if existing is None:
        return True
    for key in compare:
        if not contained_in(built.get(key), existing.get(key)):
            return True
    live_meta = existing.get("metadata", {})
    for key in ("labels", "annotations"):
        if not contained_in(built["metadata"].get(key) or {}, live_meta.get(key) or {}):
            return True
    return False


def check_weights(primary: int, canary: int) -> None:
    if primary < 0 or canary < 0:
        raise RouterError(f"weights must not be negative (primary {primary}, canary {canary})")


def drop_none(value: Any) -> Any:
    """Remove None values and empty containers the builders produce for optional fields."""
    if isinstance(value, dict):
        cleaned = {k: drop_none(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {} and v != []}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


# --- session affinity (Istio and Gateway API) ---------------------------------------------------

COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"

TokenSource = Callable[[], str]


def random_token() -> str:
    """Ten random letters, the cookie value format Flagger uses."""
    return "".join(random.choices(string.ascii_letters, k=10))


def build_cookie(affinity: SessionAffinity, cookie: str, max_age: int | None = None) -> str:
    """The Set-Cookie value for `<name>=<value>` with the attributes the user configured."""
    parts = [cookie, f"Max-Age={affinity.effective_max_age if max_age is None else max_age}"]
    if affinity.domain:
        parts.append(f"Domain={affinity.domain}")
    if affinity.http_only:
        parts.append("HttpOnly")
    if affinity.partitioned:
        parts.append("Partitioned")
    if affinity.path:
        parts.append(f"Path={affinity.path}")
    if affinity.same_site:
        parts.append(f"SameSite={affinity.same_site}")
    if affinity.secure:
        parts.append("Secure")
    return "; ".join(parts)


def cookie_regex(cookie: str) -> str:
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


def next_cookies(
    canary: Canary, canary_weight: int, token: TokenSource, *, primary_cookie: bool = True
) -> SessionAffinityCookies:
    """Flagger's cookie life cycle: generate once per run while the canary gets traffic; when it
    gets none, the run's cookie becomes the previous one (expired on the client)."""
    analysis = canary.spec.analysis
    affinity = analysis.session_affinity if analysis else None
    status = canary.status
    session = status.session_affinity_cookie if status else None
    primary = status.primary_session_affinity_cookie if status else None
    previous = status.previous_session_affinity_cookie if status else None
    if affinity is None:
        return SessionAffinityCookies(session, primary, previous)
    if canary_weight > 0:
        session = session or f"{affinity.cookie_name}={token()}"
        if primary_cookie and affinity.primary_cookie_name:
            primary = primary or f"{affinity.primary_cookie_name}={token()}"
        return SessionAffinityCookies(session, primary, previous)
    if session:
        previous = session
    return SessionAffinityCookies(None, primary, previous)


def status_cookies(canary: Canary) -> SessionAffinityCookies:
    status = canary.status
    if status is None:
        return SessionAffinityCookies()
    return SessionAffinityCookies(
        status.session_affinity_cookie,
        status.primary_session_affinity_cookie,
        status.previous_session_affinity_cookie,
    )


def reconcile_cookies(
    canary: Canary, live_set_cookies: Mapping[str, str]
) -> SessionAffinityCookies:
    """The cookies to rebuild a live object with: the status's, or, when the status lost them
    (a crash between writing the route and the status), the ones the live object sets, so a
    reconcile never swaps the cookie under clients mid-run. Keys: `session`, `primary`."""
    cookies = status_cookies(canary)
    session = live_set_cookies.get("session")
    primary = live_set_cookies.get("primary")
    return SessionAffinityCookies(
        cookies.session_affinity_cookie or (session.split(";")[0].strip() if session else None),
        cookies.primary_session_affinity_cookie
        or (primary.split(";")[0].strip() if primary else None),
        cookies.previous_session_affinity_cookie,
    )


def affinity_of(canary: Canary) -> SessionAffinity | None:
    analysis = canary.spec.analysis
    return analysis.session_affinity if analysis else None


def primary_cookie_max_age(canary: Canary) -> int:
    analysis = canary.spec.analysis
    return int(analysis.interval_seconds()) if analysis else 60


def sticky_set_cookie(
    canary: Canary,
    affinity: SessionAffinity,
    backend: str | None,
    cookies: SessionAffinityCookies,
    *,
    primary_cookie: bool = True,
) -> str | None:
    """The Set-Cookie value the weighted route sends with responses from `backend` while the
    canary gets traffic: the run's cookie from the canary, the primary cookie (when used) from
    the primary, nothing from anything else."""
    names = service_names(canary)
    if backend == names.canary and cookies.session_affinity_cookie:
        return build_cookie(affinity, cookies.session_affinity_cookie)
    if backend == names.primary and primary_cookie and cookies.primary_session_affinity_cookie:
        return build_cookie(
            affinity, cookies.primary_session_affinity_cookie, primary_cookie_max_age(canary)
        )
    return None


# --- field helpers ------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """A pydantic sub-model as it appears on the wire (camelCase, unset fields absent)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [wire(v) for v in value]
    dump = getattr(value, "to_wire", None)
    if dump is not None:
        return dump()
    return value


# --- capability checks shared by compatibility() ------------------------------------------------


Capabilities = providers.Capabilities


def capability_problems(canary: Canary, router: str, capabilities: Capabilities) -> list[Problem]:
    """What the Canary asks of a router that lacks it. Only what cannot work is an error: an A/B
    run on a router without header matching (all traffic would go to the canary) and TCP on an
    HTTP router. Mirroring and session affinity a router lacks are ignored, as Flagger does."""
    analysis = canary.spec.effective_analysis
    problems: list[Problem] = []
    if analysis and analysis.match and not capabilities.ab_testing:
        problems.append(
            Problem(
                "spec.analysis.match",
                f"the {router} router cannot route by header or cookie; an A/B run would send "
                "all traffic to the canary",
            )
        )
    if analysis and analysis.mirror and not capabilities.mirroring:
        problems.append(
            Problem(
                "spec.analysis.mirror",
                f"the {router} router cannot mirror traffic; the setting is ignored (no mirror "
                "step: a canary run shifts real traffic from its first step)",
                "warning",
            )
        )
    if analysis and analysis.session_affinity and not capabilities.session_affinity:
        problems.append(
            Problem(
                "spec.analysis.sessionAffinity",
                f"the {router} router has no session affinity; the setting is ignored",
                "warning",
            )
        )
    if (canary.spec.required_service.app_protocol or "").lower() == "tcp" and not capabilities.tcp:
        problems.append(
            Problem("spec.service.appProtocol", f"tcp: the {router} router routes HTTP only")
        )
    return problems


def ignored_match_fields(index: int, match: ABMatch, router: str, matches: str) -> list[Problem]:
    """A/B match fields a header-matching router would drop: the A/B route would then match
    more than the user asked for."""
    return [
        Problem(
            f"spec.analysis.match[{index}]",
            f"the {router} router matches {matches} only; {key} would be ignored",
        )
        for key in ("query_params", "uri", "method", "source_labels")
        if getattr(match, key) is not None
    ]


def weight_from(value: Any) -> int:
    """A backend weight as written: integer, or (SMI v1alpha1) a resource quantity like `500m`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value or "0").strip()
    try:
        if text.endswith("m"):
            return int(float(text[:-1]) / 1000)
        return int(float(text))
    except ValueError as error:
        raise RouterError(f"weight {text!r} is not a number") from error


def split_from_primary(value: Any) -> Routes:
    """The split of routers that write only the primary's weight: the canary gets the rest."""
    weight = weight_from(value)
    return Routes(weight, 100 - weight, False)


# --- the life cycle of routers whose weights live in one object `<apex>` ------------------------


class WeightedRouter(ABC):
    """Desired / Reconcile / SetRoutes for routers whose split is one object `<apex>` of `kind`
    (Istio VirtualService, Gateway API HTTPRoute, SMI TrafficSplit, Contour HTTPProxy,
    TraefikService).

    The life cycle is the same for all of them: build the objects at the given weights; on Reconcile
    rebuild them at the weights that are live (see docs/decisions.md, 'Live weights on reconcile')
    and write only what differs; on SetRoutes rewrite the routing object. A subclass supplies what
    is its own: the object's shape (`_built`, or `_objects` when it writes more than one object or
    uses session cookies), how weights are read back (`get_routes`), its capabilities and its
    compatibility rules (`_rule_problems`, `_external_name_problems`).
    """

    api_version: str
    kind: str
    provider: str
    capabilities: Capabilities
    #: Refuse SetRoutes(0, 0) with "<Kind> <apex>.<ns> update failed: no valid weights", for the
    #: routers that derive the canary weight as 100 - primary (Contour, Traefik).
    refuses_empty_split: bool = False
    #: Whether the session-affinity cookie life cycle includes the primary cookie.
    sets_primary_cookie: bool = True

    # --- what a subclass defines ----------------------------------------------------------------

    def _built(self, canary: Canary, weights: Routes) -> Obj:
        """The routing object at these weights (routers that override `_objects` need not)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither _built nor _objects")

    def _objects(
        self, canary: Canary, weights: Routes, cookies: SessionAffinityCookies | None
    ) -> list[Obj]:
        """Every object the router writes, the routing object among them. `cookies` are the
        session-affinity cookies to route by; routers without affinity ignore them."""
        return [self._built(canary, weights)]

    @abstractmethod
    def get_routes(self, canary: Canary, existing: Sequence[Obj]) -> Routes:
        """The live split, read from the routing object (RouterError when it holds none)."""

    def _live_weights(self, canary: Canary, existing: Sequence[Obj], current: Obj | None) -> Routes:
        """The weights Reconcile keeps: the live ones, or 100/0 when none can be read."""
        if current is None:
            return INITIAL_WEIGHTS
        try:
            return self.get_routes(canary, existing)
        except RouterError:
            return INITIAL_WEIGHTS

    def _live_set_cookies(self, canary: Canary, current: Obj | None) -> dict[str, str]:
        """The Set-Cookie values the live routing object sends (keys `session`, `primary`)."""
        return {}

    def _taking_over(self, canary: Canary, current: Obj, merged: Obj) -> None:  # noqa: B027
        """Optional hook before Reconcile rewrites a live routing object (Istio keeps the user's
        spec)."""

    def _capabilities_for(self, canary: Canary) -> Capabilities:
        """What the router can do for this Canary (Istio: less for a TCP route)."""
        return self.capabilities

    def _rule_problems(self, canary: Canary) -> list[Problem]:
        """What this router cannot do with the Canary beyond the shared capability checks."""
        return []

    def _external_name_problems(self, canary: Canary) -> list[Problem]:
        """What routing to ExternalName Service copies means for this router."""
        return []

    # --- the shared life cycle ------------------------------------------------------------------

    def _name(self, canary: Canary) -> str:
        return service_names(canary).apex

    def _routing_object(self, canary: Canary, spec: Obj) -> Obj:
        """`<apex>` with this spec, the apex labels and annotations, owned by the Canary."""
        return new_object(
            canary,
            self.api_version,
            self.kind,
            self._name(canary),
            spec,
            labels=apex_labels(canary),
            annotations=apex_annotations(canary),
        )

    def _required(self, canary: Canary, existing: Sequence[Obj]) -> Obj:
        """The live routing object; a missing one is "<Kind> <apex>.<ns> get query error"."""
        return require(existing, self.kind, self._name(canary), canary.namespace)

    def references(self, canary: Canary) -> list[ObjectRef]:
        return [ObjectRef(self.api_version, self.kind, self._name(canary), canary.namespace)]

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
        weights = Routes(primary_weight, canary_weight, mirrored)
        built = self._objects(canary, weights, status_cookies(canary))
        return [merge_onto(find(existing, o["kind"], o["metadata"]["name"]), o) for o in built]

    def reconcile(self, canary: Canary, existing: Sequence[Obj]) -> list[Obj]:
        """Objects to write: missing ones, and drifted ones rebuilt at the weights that are live."""
        current = find(existing, self.kind, self._name(canary))
        live = self._live_weights(canary, existing, current)
        cookies = reconcile_cookies(canary, self._live_set_cookies(canary, current))
        writes = []
        for obj in self._objects(canary, live, cookies):
            found = find(existing, obj["kind"], obj["metadata"]["name"])
            if not needs_write(found, obj):
                continue
            merged = merge_onto(found, obj)
            if obj["kind"] == self.kind and found is not None:
                self._taking_over(canary, found, merged)
            writes.append(merged)
        return writes

    def set_routes(
        self,
        canary: Canary,
        existing: Sequence[Obj],
        primary_weight: int,
        canary_weight: int,
        mirrored: bool = False,
        *,
        token: TokenSource = random_token,
    ) -> RouteUpdate:
        check_weights(primary_weight, canary_weight)
        name = self._name(canary)
        if self.refuses_empty_split and primary_weight == 0 and canary_weight == 0:
            raise RouterError(
                f"{self.kind} {name}.{canary.namespace} update failed: no valid weights"
            )
        current = self._required(canary, existing)
        cookies = None
        if self.capabilities.session_affinity and affinity_of(canary) is not None:
            cookies = next_cookies(
                canary, canary_weight, token, primary_cookie=self.sets_primary_cookie
            )
        weights = Routes(primary_weight, canary_weight, mirrored)
        built = self._objects(canary, weights, cookies)
        routing = next(o for o in built if o["kind"] == self.kind)
        return RouteUpdate([merge_onto(current, routing)], cookies)

    def finalize(self, canary: Canary, existing: Sequence[Obj]) -> list[FinalizeAction]:
        """Nothing to undo: the owner reference garbage-collects the routing object."""
        return []

    def compatibility(
        self,
        canary: Canary,
        target_kind: TargetKind,
        target_service: Obj | None,
        *,
        existing: Sequence[Obj] = (),
    ) -> list[Problem]:
        problems = capability_problems(canary, self.provider, self._capabilities_for(canary))
        problems += self._rule_problems(canary)
        if is_external_name(target_service):
            problems += self._external_name_problems(canary)
        return problems
