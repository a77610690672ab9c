"""App Mesh v1beta2 (`provider: appmesh:v1beta2`, Flagger's `pkg/router/appmesh_v1beta2.go`).

Objects, all owned by the Canary and carrying the apex labels/annotations:

* VirtualNodes `<apex>-primary` and `<apex>-canary`: one listener (the pods' port, protocol from
  the port name / `appProtocol`, per-request timeout from `service.timeout`), DNS discovery of
  the Service copy `<name>.<ns>.svc.cluster.local.`, the pods of that Service as `podSelector`,
  `service.backends` (ARNs or virtual service names) and the access log when the Canary asks;
* VirtualRouters `<apex>` (the split: canary 0 / primary 100, A/B routes when `analysis.match`
  is set) and `<apex>-canary` (canary 100), each with the listener and the route prefix, retry
  policy and timeout;
* VirtualServices `<apex>` and `<apex>-canary`, each provided by its router; the apex one carries
  the App Mesh gateway annotations when `service.hosts` is set.

`meshRef` and `awsName` are the App Mesh controller's (its webhook sets them from the Mesh's
namespace selector); writes keep the live values.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.appmesh_common import (
    AppMeshLifecycle,
    access_log,
    container_port,
    gateway_annotations,
    millis,
    node_hosts,
    protocol,
    retry_values,
    route_key,
    route_prefix,
)
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Obj,
    ObjectRef,
    find,
    service_names,
)

API_VERSION = "appmesh.k8s.aws/v1beta2"
NODE = "VirtualNode"
ROUTER = "VirtualRouter"
SERVICE = "VirtualService"
DNS_SUFFIX = ".svc.cluster.local."

__all__ = ["ROUTER_V1BETA2", "AppMeshV1beta2Router"]


def _duration(ms: int) -> Obj:
    return {"unit": "ms", "value": ms}


class AppMeshV1beta2Router(AppMeshLifecycle):
    api_version = API_VERSION
    kind = ROUTER
    provider = "appmesh:v1beta2"
    capabilities = PROVIDERS["appmesh:v1beta2"].capabilities
    system_fields = ("awsName", "meshRef")

    def _name(self, canary: Canary) -> str:
        return service_names(canary).apex

    def references(self, canary: Canary) -> list[ObjectRef]:
        names = service_names(canary)
        ns = canary.namespace
        refs = [ObjectRef(API_VERSION, NODE, n, ns) for n in (names.primary, names.canary)]
        for kind in (ROUTER, SERVICE):
            refs += [ObjectRef(API_VERSION, kind, n, ns) for n in (names.apex, names.canary)]
        # The Service copies: their selectors are the virtual nodes' pod selectors.
        refs += [ObjectRef("v1", "Service", n, ns) for n in (names.primary, names.canary)]
        return refs

    # --- building -------------------------------------------------------------------------------

    def _listener(self, canary: Canary, *, node: bool) -> Obj:
        proto = protocol(canary)
        listener: Obj = {"portMapping": {"port": container_port(canary), "protocol": proto}}
        timeout = millis(canary.spec.required_service.timeout)
        if node and timeout is not None:
            listener["timeout"] = {proto: {"perRequest": _duration(timeout)}}
        return listener

    def _node(self, canary: Canary, existing: Sequence[Obj], name: str, host: str) -> Obj:
        backends: list[Obj] = []
        for backend in canary.spec.required_service.backends or []:
            if backend.startswith("arn:aws"):
                backends.append({"virtualService": {"virtualServiceARN": backend}})
            else:
                backends.append({"virtualService": {"virtualServiceRef": {"name": backend}}})
        service = find(existing, "Service", name)
        selector = ((service or {}).get("spec") or {}).get("selector")
        spec: Obj = {
            "listeners": [self._listener(canary, node=True)],
            "serviceDiscovery": {"dns": {"hostname": host}},
            "podSelector": {"matchLabels": dict(selector)} if selector else None,
            "backends": backends or None,
            "logging": access_log(canary),
        }
        return self._object(canary, NODE, name, spec)

    def _route(
        self, canary: Canary, name: str, targets: list[tuple[str, int]], **match: object
    ) -> Obj:
        proto = protocol(canary)
        body: Obj = {
            "match": {"prefix": route_prefix(canary), **match},
            "action": {
                "weightedTargets": [
                    {"virtualNodeRef": {"name": node}, "weight": weight} for node, weight in targets
                ]
            },
        }
        timeout = millis(canary.spec.required_service.timeout)
        if timeout is not None:
            body["timeout"] = {"perRequest": _duration(timeout)}
        retries = retry_values(canary)
        if retries is not None:
            per_retry, attempts, events = retries
            body["retryPolicy"] = {
                "perRetryTimeout": _duration(per_retry),
                "maxRetries": attempts,
                "httpRetryEvents": events,
            }
        return {"name": name, route_key(proto): body}

    def _router(self, canary: Canary, name: str, weights: Routes) -> Obj:
        spec = {
            "listeners": [self._listener(canary, node=False)],
            "routes": self._routes(canary, name, weights),
        }
        return self._object(canary, ROUTER, name, spec)

    def _service(self, canary: Canary, name: str, gateway: dict[str, str]) -> Obj:
        spec = {"provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}}}
        return self._object(canary, SERVICE, name, spec, **gateway)

    def _objects(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> list[Obj]:
        names = service_names(canary)
        hosts = node_hosts(canary, names, DNS_SUFFIX)
        return [
            self._node(canary, existing, names.primary, hosts[names.primary]),
            self._node(canary, existing, names.canary, hosts[names.canary]),
            self._router(canary, names.apex, weights),
            self._router(canary, names.canary, Routes(0, 100)),
            self._service(canary, names.apex, gateway_annotations(canary)),
            self._service(canary, names.canary, {}),
        ]

    # --- reading --------------------------------------------------------------------------------

    def _first_route_targets(self, routing: Obj) -> list[Obj]:
        routes = (routing.get("spec") or {}).get("routes") or []
        if not routes:
            return []
        first = routes[0]
        body = first.get("httpRoute") or first.get("http2Route") or {}
        return list((body.get("action") or {}).get("weightedTargets") or [])

    def _target_name(self, target: Obj) -> str:
        return str((target.get("virtualNodeRef") or {}).get("name", ""))

    def _extra_problems(self, canary: Canary) -> list[Problem]:
        if not canary.spec.required_service.mesh_name:
            return []
        return [
            Problem(
                "spec.service.meshName",
                "ignored by appmesh:v1beta2: the App Mesh controller sets meshRef from the "
                "Mesh whose namespaceSelector matches the namespace",
                "warning",
            )
        ]


ROUTER_V1BETA2 = AppMeshV1beta2Router()
