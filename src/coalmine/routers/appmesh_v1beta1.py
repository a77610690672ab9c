"""App Mesh v1beta1 (`provider: appmesh`, Flagger's `pkg/router/appmesh.go`), the API of the
App Mesh controller before v1.0, which Flagger still supports.

Objects, all owned by the Canary and carrying the apex labels/annotations, each with `meshName`
(`spec.service.meshName`, else the controller's `--mesh-name`):

* VirtualNodes `<apex>` (DNS `<apex>-primary.<ns>`), `<apex>-primary` and `<apex>-canary` (DNS
  of their Service copy): one listener on `service.port` (grpc when the port name says so, else
  http), `service.backends` as virtual service names, the access log when the Canary asks;
* VirtualServices `<apex>.<ns>` and `<apex>-canary.<ns>`, each with its embedded virtual router
  (`<apex>` / `<apex>-canary`) and routes: the split (A/B routes when `analysis.match` is set) and
  canary 100. The apex one carries the App Mesh gateway annotations when `service.hosts` is set.

v1beta1 has no route timeouts: `service.timeout` only reaches the gateway annotation.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.api.validation.problems import Problem
from coalmine.routers.appmesh_common import (
    AppMeshLifecycle,
    access_log,
    gateway_annotations,
    node_hosts,
    retry_values,
    route_prefix,
)
from coalmine.routers.base import Routes
from coalmine.routers.common import (
    Obj,
    ObjectRef,
    RouterError,
    service_names,
)

API_VERSION = "appmesh.k8s.aws/v1beta1"
NODE = "VirtualNode"
SERVICE = "VirtualService"

__all__ = ["ROUTER_V1BETA1", "AppMeshV1beta1Router"]


class AppMeshV1beta1Router(AppMeshLifecycle):
    api_version = API_VERSION
    kind = SERVICE
    provider = "appmesh"
    capabilities = PROVIDERS["appmesh"].capabilities

    def __init__(self, mesh_name: str = "") -> None:
        #: The controller's `--mesh-name`: the mesh of canaries without `service.meshName`.
        self.mesh_name = mesh_name

    def _mesh(self, canary: Canary) -> str:
        mesh = canary.spec.required_service.mesh_name or self.mesh_name
        if not mesh:
            raise RouterError("mesh name cannot be empty")
        return mesh

    def _name(self, canary: Canary) -> str:
        return f"{service_names(canary).apex}.{canary.namespace}"

    def references(self, canary: Canary) -> list[ObjectRef]:
        names = service_names(canary)
        ns = canary.namespace
        refs = [
            ObjectRef(API_VERSION, NODE, n, ns) for n in (names.apex, names.primary, names.canary)
        ]
        refs += [
            ObjectRef(API_VERSION, SERVICE, f"{n}.{ns}", ns) for n in (names.apex, names.canary)
        ]
        return refs

    # --- building -------------------------------------------------------------------------------

    def _port_mapping(self, canary: Canary) -> Obj:
        proto = "grpc" if "grpc" in (canary.spec.required_service.port_name or "") else "http"
        return {"port": canary.spec.required_service.port, "protocol": proto}

    def _node(self, canary: Canary, name: str, host: str) -> Obj:
        backends = [
            {"virtualService": {"virtualServiceName": backend}}
            for backend in canary.spec.required_service.backends or []
        ]
        spec: Obj = {
            "meshName": self._mesh(canary),
            "listeners": [{"portMapping": self._port_mapping(canary)}],
            "serviceDiscovery": {"dns": {"hostName": host}},
            "backends": backends or None,
            "logging": access_log(canary),
        }
        return self._object(canary, NODE, name, spec)

    def _route(
        self, canary: Canary, name: str, targets: list[tuple[str, int]], **match: object
    ) -> Obj:
        http: Obj = {
            "match": {"prefix": route_prefix(canary), **match},
            "action": {
                "weightedTargets": [
                    {"virtualNodeName": node, "weight": weight} for node, weight in targets
                ]
            },
        }
        retries = retry_values(canary)
        if retries is not None:
            per_retry, attempts, events = retries
            http["retryPolicy"] = {
                "perRetryTimeoutMillis": per_retry,
                "maxRetries": attempts,
                "httpRetryEvents": events,
            }
        return {"name": name, "http": http}

    def _service(
        self, canary: Canary, router: str, weights: Routes, gateway: dict[str, str]
    ) -> Obj:
        spec = {
            "meshName": self._mesh(canary),
            "virtualRouter": {
                "name": router,
                "listeners": [{"portMapping": self._port_mapping(canary)}],
            },
            "routes": self._routes(canary, router, weights),
        }
        return self._object(canary, SERVICE, f"{router}.{canary.namespace}", spec, **gateway)

    def _objects(self, canary: Canary, existing: Sequence[Obj], weights: Routes) -> list[Obj]:
        names = service_names(canary)
        hosts = node_hosts(canary, names, "")
        return [
            self._node(canary, names.apex, hosts[names.primary]),
            self._node(canary, names.primary, hosts[names.primary]),
            self._node(canary, names.canary, hosts[names.canary]),
            self._service(canary, names.apex, weights, gateway_annotations(canary)),
            self._service(canary, names.canary, Routes(0, 100), {}),
        ]

    # --- reading --------------------------------------------------------------------------------

    def _first_route_targets(self, routing: Obj) -> list[Obj]:
        routes = (routing.get("spec") or {}).get("routes") or []
        if not routes:
            return []
        return list(
            ((routes[0].get("http") or {}).get("action") or {}).get("weightedTargets") or []
        )

    def _target_name(self, target: Obj) -> str:
        return str(target.get("virtualNodeName", ""))

    def _extra_problems(self, canary: Canary) -> list[Problem]:
        service = canary.spec.required_service
        problems: list[Problem] = []
        if not (service.mesh_name or self.mesh_name):
            problems.append(
                Problem(
                    "spec.service.meshName",
                    "required by the appmesh (v1beta1) provider (or the controller's --mesh-name)",
                )
            )
        if service.timeout and not service.hosts:
            problems.append(
                Problem(
                    "spec.service.timeout",
                    "App Mesh v1beta1 routes have no timeout; the setting is ignored",
                    "warning",
                )
            )
        proto = (service.app_protocol or "").lower()
        if proto and proto not in ("http", "grpc", "tcp"):
            problems.append(
                Problem(
                    "spec.service.appProtocol",
                    f"{proto}: App Mesh v1beta1 listeners are http, or grpc when the port "
                    "name contains grpc; the setting is ignored",
                    "warning",
                )
            )
        for backend in service.backends or []:
            if backend.startswith("arn:aws"):
                problems.append(
                    Problem(
                        "spec.service.backends",
                        f"{backend}: App Mesh v1beta1 backends are virtual service names; an "
                        "ARN needs appmesh:v1beta2",
                    )
                )
        return problems


ROUTER_V1BETA1 = AppMeshV1beta1Router()
