"""Every traffic provider in one table: canonical form, router, builtin observer, capabilities.

A provider string (`spec.provider` or the controller's `--mesh-provider`) is read the way
Flagger's router factory reads it: exact CRD values, plus the prefix forms the global flag may
carry (`smi:v1alpha1:istio`, `gatewayapi:v1beta1`, `appmesh:v1beta2`, `gloo:<anything>`).
Validation, the routers' registry, the builtin queries, the scheduler, the Service-target
coverage and `coalmine check` all read this table; nothing else names providers. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["mesh", "edge", "copies"]

#: The controller's `--mesh-provider` default (Flagger's chart default too); `coalmine check`
#: uses the same value so both judge a canary without `spec.provider` alike.
DEFAULT_MESH_PROVIDER = "istio"
KUBERNETES = "kubernetes"


@dataclass(frozen=True)
class Capabilities:
    """What a router can express; anything else a Canary asks for is reported, not ignored."""

    ab_testing: bool
    mirroring: bool
    session_affinity: bool
    tcp: bool
    #: Routes primary, canary and a fresh baseline at once (`spec.analysis.baseline`).
    three_way: bool = False


NONE = Capabilities(ab_testing=False, mirroring=False, session_affinity=False, tcp=False)
_WEIGHTS_ONLY_TCP = Capabilities(
    ab_testing=False, mirroring=False, session_affinity=False, tcp=True
)
_HEADERS = Capabilities(ab_testing=True, mirroring=False, session_affinity=False, tcp=False)
_FULL_HTTP = Capabilities(
    ab_testing=True, mirroring=True, session_affinity=True, tcp=False, three_way=True
)


@dataclass(frozen=True)
class ProviderInfo:
    """One row: what coalmine does with a provider.

    `router` is the key of `routers.registry.ROUTERS` (None: `kubernetes`, no mesh router; every
    other provider of Flagger's CRD enum has one). `observer` names the builtin metrics observer. `scope` says which traffic
    follows the weights: `mesh` (in-mesh callers of the apex name), `edge` (only what passes
    `through`, a gateway or ingress) or `copies` (nothing: `kubernetes`). `routes_first`: the
    routing objects must exist before the primary pods (App Mesh's virtual nodes).
    """

    name: str
    router: str | None
    observer: str
    capabilities: Capabilities
    scope: Scope = "mesh"
    through: str = ""
    routes_first: bool = False
    #: Fields the provider needs (validation reports them missing): `spec.ingressRef`, …
    requires: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return self.name.split(":", 1)[0]


_GATEWAYS = "spec.service.gatewayRefs"
_INGRESS = "spec.ingressRef"

_ROWS: tuple[ProviderInfo, ...] = (
    ProviderInfo("istio", "istio", "istio", Capabilities(True, True, True, True, three_way=True)),
    ProviderInfo("linkerd", "linkerd", "linkerd", _WEIGHTS_ONLY_TCP),
    ProviderInfo("osm", "osm", "osm", _WEIGHTS_ONLY_TCP),
    ProviderInfo("smi:v1alpha1", "smi:v1alpha1", "istio", _WEIGHTS_ONLY_TCP),
    ProviderInfo("smi:v1alpha2", "smi:v1alpha2", "istio", _WEIGHTS_ONLY_TCP),
    ProviderInfo("smi:v1alpha3", "smi:v1alpha3", "istio", _WEIGHTS_ONLY_TCP),
    *(
        ProviderInfo(name, name, "http", _FULL_HTTP, "edge", "the Gateway", requires=(_GATEWAYS,))
        for name in ("gatewayapi:v1", "gatewayapi:v1beta1")
    ),
    ProviderInfo(
        "contour", "contour", "contour", _HEADERS, "edge", "the Contour ingress (HTTPProxy)"
    ),
    ProviderInfo(
        "nginx", "nginx", "nginx", _HEADERS, "edge", "the NGINX ingress", requires=(_INGRESS,)
    ),
    ProviderInfo("traefik", "traefik", "traefik", NONE, "edge", "the Traefik ingress"),
    ProviderInfo(KUBERNETES, None, "http", NONE, "copies"),
    # meshName (required by v1beta1) may come from the controller's --mesh-name: the router's
    # compatibility() reports it missing, not validation.
    ProviderInfo("appmesh", "appmesh", "appmesh", _HEADERS, routes_first=True),
    ProviderInfo("appmesh:v1beta2", "appmesh:v1beta2", "appmesh", _HEADERS, routes_first=True),
    ProviderInfo("gloo", "gloo", "gloo", _HEADERS, "edge", "the Gloo gateway"),
    ProviderInfo("kuma", "kuma", "kuma", _WEIGHTS_ONLY_TCP),
    ProviderInfo(
        "apisix",
        "apisix",
        "apisix",
        NONE,
        "edge",
        "the APISIX gateway",
        requires=("spec.routeRef",),
    ),
    ProviderInfo(
        "skipper",
        "skipper",
        "skipper",
        NONE,
        "edge",
        "the Skipper ingress",
        requires=(_INGRESS,),
    ),
    ProviderInfo("knative", "knative", "knative", NONE, "edge", "the Knative ingress"),
)

PROVIDERS: dict[str, ProviderInfo] = {row.name: row for row in _ROWS}

# The factory's prefix forms, most specific first (Flagger's `strings.HasPrefix` order).
_PREFIXES: tuple[str, ...] = (
    "appmesh:v1beta2",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "gloo",
    "gatewayapi:v1beta1",
    "gatewayapi:v1",
)


def canonical(value: str | None) -> str | None:
    """The CRD provider value a provider string stands for; None: not a provider Flagger knows
    (its router factory then falls back to Istio with a warning)."""
    if not value:
        return None
    value = value.strip()
    if value in PROVIDERS:
        return value
    for prefix in _PREFIXES:
        if value.startswith(prefix):
            return prefix
    return None


def lookup(value: str | None) -> ProviderInfo | None:
    """The row of a provider string, None for one Flagger does not know."""
    name = canonical(value)
    return PROVIDERS[name] if name is not None else None


def resolve(value: str | None) -> ProviderInfo:
    """The row the controller routes with: unknown strings mean Istio, as in Flagger."""
    return lookup(value) or PROVIDERS[DEFAULT_MESH_PROVIDER]


def effective(spec_provider: str | None, mesh_provider: str | None) -> str:
    """`spec.provider`, else the controller's `--mesh-provider`, else its default."""
    return spec_provider or mesh_provider or DEFAULT_MESH_PROVIDER


@dataclass(frozen=True)
class ProviderSpec:
    """A parsed provider string: `smi:v1alpha1:istio` → name `smi`, version `v1alpha1`, mesh `istio`."""

    name: str
    version: str | None = None
    mesh: str | None = None


def parse(value: str) -> ProviderSpec:
    parts = [part.strip() for part in value.strip().split(":")]
    name = parts[0]
    version = parts[1] if len(parts) > 1 and parts[1] else None
    mesh = ":".join(parts[2:]) if len(parts) > 2 and any(parts[2:]) else None
    return ProviderSpec(name=name, version=version, mesh=mesh)


def with_capability(capability: str) -> tuple[str, ...]:
    """The providers whose router has `capability` (`ab_testing`, `mirroring`, …), for texts."""
    return tuple(row.name for row in _ROWS if getattr(row.capabilities, capability))
