"""Provider string → router, as Flagger's router factory decides (`pkg/router/factory.go`).

Kept out of common.py because every router module imports common.py; a registry there would be
a circular import. Adding a router = one module + one line in ROUTERS.
"""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.routers import contour, gatewayapi, istio, nginx, smi, traefik
from coalmine.routers.common import PureRouter, RouterError, parse_provider

ROUTERS: dict[str, PureRouter] = {
    "istio": istio.ROUTER,
    "gatewayapi:v1": gatewayapi.ROUTER_V1,
    "gatewayapi:v1beta1": gatewayapi.ROUTER_V1BETA1,
    "linkerd": smi.LINKERD,
    "osm": smi.OSM,
    "smi:v1alpha1": smi.ROUTER_V1ALPHA1,
    "smi:v1alpha2": smi.ROUTER_V1ALPHA2,
    "smi:v1alpha3": smi.ROUTER_V1ALPHA3,
    "contour": contour.ROUTER,
    "nginx": nginx.ROUTER,
    "traefik": traefik.ROUTER,
}

# Providers Flagger knows that have no pure router here; "kubernetes" means no mesh router at all.
NOT_IMPLEMENTED = frozenset({"appmesh", "gloo", "knative", "skipper", "apisix", "kuma"})


@dataclass(frozen=True)
class Selection:
    """The router for a provider string, or None for `kubernetes`, plus a warning to log."""

    router: PureRouter | None
    warning: str | None = None


def router_for(
    provider: str,
    *,
    ingress_class: str | None = None,
    ingress_annotations_prefix: str | None = None,
) -> Selection:
    """Flagger's factory order: prefixes first, unknown names fall back to Istio with a warning.

    `ingress_class` is the controller's `--ingress-class` (Contour's ingressClassName);
    `ingress_annotations_prefix` its `--ingress-annotations-prefix` (NGINX).
    """
    spec = parse_provider(provider)
    if spec.name == "kubernetes":
        return Selection(None)
    smi_versions: dict[str | None, smi.Version] = {
        "v1alpha1": "v1alpha1",
        "v1alpha2": "v1alpha2",
        "v1alpha3": "v1alpha3",
    }
    if spec.name == "smi" and spec.version in smi_versions:
        if spec.mesh:
            version = smi_versions[spec.version]
            return Selection(smi.SMIRouter(version, mesh=spec.mesh, provider=provider))
        return Selection(ROUTERS[f"smi:{spec.version}"])
    if spec.name == "gatewayapi":
        if spec.version and spec.version.startswith("v1beta1"):
            return Selection(ROUTERS["gatewayapi:v1beta1"])
        if spec.version and spec.version.startswith("v1"):
            return Selection(ROUTERS["gatewayapi:v1"])
    if spec.name == "contour" and ingress_class:
        return Selection(contour.ContourRouter(ingress_class=ingress_class))
    if spec.name == "nginx" and ingress_annotations_prefix:
        return Selection(nginx.NginxRouter(annotations_prefix=ingress_annotations_prefix))
    if spec.name in ROUTERS and spec.version is None:
        return Selection(ROUTERS[spec.name])
    if spec.name in NOT_IMPLEMENTED or spec.name.startswith("gloo"):
        raise RouterError(f"provider {provider} is not supported by coalmine")
    return Selection(ROUTERS["istio"], warning=f"Unknown provider {provider}, defaulting to istio")
