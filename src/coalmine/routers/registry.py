"""Provider string → router, as Flagger's router factory decides (`pkg/router/factory.go`): the
provider table (`coalmine.api.providers`) names the router key, ROUTERS holds the routers.

Kept out of common.py because every router module imports common.py; a registry there would be
a circular import. Adding a router = one module, one line in ROUTERS and its row's `router` key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from coalmine.api import providers
from coalmine.routers import (
    apisix,
    appmesh,
    appmesh_v1beta1,
    contour,
    gatewayapi,
    gloo,
    istio,
    knative,
    kuma,
    nginx,
    skipper,
    smi,
    traefik,
)
from coalmine.routers.common import PureRouter, parse_provider

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
    "gloo": gloo.ROUTER,
    "kuma": kuma.ROUTER,
    "appmesh": appmesh_v1beta1.ROUTER_V1BETA1,
    "appmesh:v1beta2": appmesh.ROUTER_V1BETA2,
    "apisix": apisix.ROUTER,
    "skipper": skipper.ROUTER,
    "knative": knative.ROUTER,
}


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
    mesh_name: str = "",
) -> Selection:
    """Flagger's factory order: prefixes first, unknown names fall back to Istio with a warning.

    `ingress_class` is the controller's `--ingress-class` (Contour's ingressClassName);
    `ingress_annotations_prefix` its `--ingress-annotations-prefix` (NGINX); `mesh_name` its
    `--mesh-name` (the mesh of App Mesh v1beta1 canaries without `service.meshName`).
    """
    info = providers.lookup(provider)
    if info is None:
        warning = f"Unknown provider {provider}, defaulting to istio"
        return Selection(ROUTERS["istio"], warning=warning)
    if info.router is None:
        return Selection(None)  # kubernetes: no mesh router at all
    spec = parse_provider(provider)
    if info.family == "smi" and spec.mesh:
        version = cast(smi.Version, info.name.split(":", 1)[1])
        return Selection(smi.SMIRouter(version, mesh=spec.mesh, provider=provider))
    if info.name == "contour" and ingress_class:
        return Selection(contour.ContourRouter(ingress_class=ingress_class))
    if info.name == "nginx" and ingress_annotations_prefix:
        return Selection(nginx.NginxRouter(annotations_prefix=ingress_annotations_prefix))
    if info.name == "appmesh" and mesh_name:
        return Selection(appmesh_v1beta1.AppMeshV1beta1Router(mesh_name=mesh_name))
    return Selection(ROUTERS[info.router])
