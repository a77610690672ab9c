"""The routers on both tiers (they serve the CRDs of clusters.ROUTER_CRDS): canaries and seed objects per provider, and the split
each routing object holds as the API server stores it (read independently of the routers' own
`get_routes`, so a router that writes one thing and reads back another is caught)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from coalmine.api.models import Canary
from coalmine.controller.seams import ControllerSeams, MeshRouter
from coalmine.kube.api import KubeApi, NotFound, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import APISIX_ROUTE, INGRESS, SERVICE, TRAFFIC_ROUTE, kind_for
from coalmine.routers.common import PureRouter
from coalmine.targets.knative import split_of as knative_split

# Every provider with an official CRD devcluster can serve (smi:v1alpha3 is defined by no served
# CRD version; see coalmine/devcluster/crds/SOURCES.md).
PROVIDERS = (
    "istio",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "linkerd",
    "osm",
    "nginx",
    "contour",
    "traefik",
    "gloo",
    "kuma",
    "appmesh:v1beta2",
    "apisix",
    "skipper",
)
AB_PROVIDERS = (
    "istio",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "nginx",
    "contour",
    "gloo",
    "appmesh:v1beta2",
)
MIRROR_PROVIDERS = ("istio", "gatewayapi:v1", "gatewayapi:v1beta1")

PRIMARY = "podinfo-primary"
CANARY = "podinfo-canary"


def service_settings(provider: str) -> dict[str, Any]:
    if provider.startswith("gatewayapi"):
        return {"port": 9898, "gatewayRefs": [{"name": "public", "namespace": "gateways"}]}
    return {"port": 9898}


def canary_spec(provider: str, **analysis: Any) -> dict[str, Any]:
    """Spec fields of `make_canary` for this provider: stepWeight 20 up to maxWeight 60."""
    spec: dict[str, Any] = {
        "provider": provider,
        "service": service_settings(provider),
        "analysis": {
            "interval": "1m",
            "threshold": 1,
            "stepWeight": 20,
            "maxWeight": 60,
            **analysis,
        },
    }
    if provider in ("nginx", "skipper"):
        spec["ingressRef"] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "name": "podinfo",
        }
    if provider == "apisix":
        spec["routeRef"] = {
            "apiVersion": "apisix.apache.org/v2",
            "kind": "ApisixRoute",
            "name": "podinfo",
        }
    return spec


def user_ingress(ns: str, ingress_class: str = "nginx") -> dict[str, Any]:
    """The user's Ingress NGINX and Skipper canaries start from; it routes to the primary copy
    (Service targets: routing to the target itself would send the "primary" share, or with
    Skipper everything at weight 0, to the new version)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": ns,
            "labels": {"app": "podinfo"},
            "annotations": {"kubernetes.io/ingress.class": ingress_class},
        },
        "spec": {
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": PRIMARY, "port": {"number": 9898}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


def user_apisix_route(ns: str) -> dict[str, Any]:
    """The user's ApisixRoute APISIX canaries start from (one HTTP route to the apex)."""
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": {
            "ingressClassName": "apisix",
            "http": [
                {
                    "name": "main",
                    "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                    "backends": [{"serviceName": "podinfo", "servicePort": 9898}],
                }
            ],
        },
    }


async def seed(ns: str, api: KubeApi, provider: str) -> None:
    """What the user has in the cluster before the Canary (NGINX, Skipper: the Ingress; APISIX:
    the ApisixRoute). Kuma: an earlier
    test's TrafficRoute `podinfo` is deleted, as the user of a new namespace would have to (it is
    cluster-scoped, so no namespace deletion removes it, and the router refuses another
    namespace's route)."""
    if provider in ("nginx", "skipper"):
        await api.create(INGRESS, user_ingress(ns, provider))
    if provider == "apisix":
        await api.create(APISIX_ROUTE, user_apisix_route(ns))
    if provider == "kuma":
        with contextlib.suppress(NotFound):
            await api.delete(TRAFFIC_ROUTE, "podinfo")


def copy_service(ns: str, name: str) -> dict[str, Any]:
    """A copy Service as the service router makes it (the Gloo router reads its selector)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9898}]},
    }


async def seed_copies(ns: str, api: KubeApi) -> None:
    """The copies the scheduler would have made, for tests that drive a router alone."""
    for name in (PRIMARY, CANARY):
        await api.create(SERVICE, copy_service(ns, name))


async def routing_object(api: KubeApi, canary: Canary, router: PureRouter) -> Object:
    """The object holding the split, as the server stores it (a GET, not the cache)."""
    kind, name = weighted_object(router.provider)
    ref = next(r for r in router.references(canary) if (r.kind, r.name) == (kind, name))
    return await api.get(kind_for(ref.api_version, ref.kind), ref.name, ref.namespace)


def weighted_object(provider: str) -> tuple[str, str]:
    """(kind, name) of the object that holds the split."""
    if provider == "istio":
        return "VirtualService", "podinfo"
    if provider.startswith("gatewayapi"):
        return "HTTPRoute", "podinfo"
    if provider in ("nginx", "skipper"):
        return "Ingress", "podinfo-canary"
    if provider == "apisix":
        return "ApisixRoute", "podinfo-podinfo-canary"
    if provider == "contour":
        return "HTTPProxy", "podinfo"
    if provider == "traefik":
        return "TraefikService", "podinfo"
    if provider == "gloo":
        return "RouteTable", "podinfo"
    if provider == "kuma":
        return "TrafficRoute", "podinfo"
    if provider == "appmesh:v1beta2":
        return "VirtualRouter", "podinfo"
    return "TrafficSplit", "podinfo"


def split_of(obj: Object) -> tuple[int, int]:
    """(primary, canary) weights of the routed (first weighted) rule of a stored object."""
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    weights: dict[str, int] = {}
    if obj["apiVersion"].startswith("appmesh.k8s.aws/"):
        route = spec["routes"][0]
        body = route.get("httpRoute") or route.get("http2Route") or route.get("http") or {}
        weights = {
            (t.get("virtualNodeRef") or {}).get("name") or t.get("virtualNodeName"): int(
                t["weight"]
            )
            for t in body["action"]["weightedTargets"]
        }
    elif kind == "VirtualService":
        route = next(r for r in spec["http"] if len(r["route"]) == 2)
        weights = {d["destination"]["host"]: int(d.get("weight", 0)) for d in route["route"]}
    elif kind == "HTTPRoute":
        rule = next(r for r in spec["rules"] if len(r["backendRefs"]) == 2)
        weights = {b["name"]: int(b.get("weight", 1)) for b in rule["backendRefs"]}
    elif kind == "TrafficSplit":
        weights = {b["service"]: int(str(b["weight"])) for b in spec["backends"]}
    elif kind == "HTTPProxy":
        weights = {s["name"]: int(s.get("weight", 0)) for s in spec["routes"][0]["services"]}
    elif kind == "TraefikService":
        weights = {s["name"]: int(s["weight"]) for s in spec["weighted"]["services"]}
    elif kind == "RouteTable":
        # Destinations are the generated upstreams `<ns>-<copy>upstream-<port>`.
        destinations = spec["routes"][0]["routeAction"]["multi"]["destinations"]
        for entry in destinations:
            upstream = entry["destination"]["upstream"]["name"]
            copy = upstream.removeprefix(f"{obj['metadata']['namespace']}-").rsplit("upstream-")[0]
            weights[copy] = int(entry.get("weight") or 0)
    elif kind == "TrafficRoute":
        # Destinations are the copies' `kuma.io/service` tags `<copy>_<ns>_svc_<port>`.
        for entry in spec["conf"]["split"]:
            weights[entry["destination"]["kuma.io/service"].split("_")[0]] = int(entry["weight"])
    elif kind == "ApisixRoute":
        weights = {b["serviceName"]: int(b["weight"]) for b in spec["http"][0]["backends"]}
    elif kind == "Ingress" and "zalando.org/backend-weights" in obj["metadata"]["annotations"]:
        weights = json.loads(obj["metadata"]["annotations"]["zalando.org/backend-weights"])
    elif kind == "Service" and obj.get("apiVersion") == "serving.knative.dev/v1":
        # Knative: the latest revision is the canary; no traffic block routes all to it.
        split = knative_split(spec.get("traffic") or [{"latestRevision": True, "percent": 100}])
        assert split is not None, spec
        return split
    elif kind == "Ingress":
        annotations = obj["metadata"]["annotations"]
        canary = int(annotations["nginx.ingress.kubernetes.io/canary-weight"])
        return 100 - canary, canary
    return weights.get(PRIMARY, 0), weights.get(CANARY, 0)


def mesh_router(ctx: ClusterContext, canary: Canary) -> MeshRouter:
    """The router the controller's seams resolve for the canary's provider."""
    router = ControllerSeams(ctx).mesh_router(canary, canary.spec.provider or "")
    assert isinstance(router, MeshRouter)
    return router


# A/B matches per router family.
AB_MATCH: dict[str, list[dict[str, Any]]] = {
    "istio": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
    "gatewayapi": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
    "nginx": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"exact": "canary"}}},
    ],
    "contour": [{"headers": {"x-canary": {"exact": "insider"}}}],
    "gloo": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
    "appmesh": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
}


def ab_match(provider: str) -> list[dict[str, Any]]:
    """`analysis.match` in the forms the provider can express (a header, and a cookie where
    the router can match one)."""
    return AB_MATCH[provider.split(":")[0]]
