"""The demo's stand-in for a Gateway API implementation: it accepts the routes on its Gateway.

A real implementation (Envoy Gateway, Istio, …) writes `status.parents` on every HTTPRoute attached
to its Gateways; the controller trusts a route's weights only once every parent has accepted its
current generation. Playing that part keeps the demo's route honest: `kubectl get httproute -o
yaml` shows what a real cluster shows, and the controller's parent check runs on every step.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from coalmine.devcluster import ApiError, DevCluster
from coalmine.devcluster.storage import Change

CONTROLLER_NAME = "coalmine.dev/demo-gateway"
ROUTES = "httproutes.gateway.networking.k8s.io"


def accepted_status(route: dict[str, Any], gateway: str, namespace: str) -> dict[str, Any] | None:
    """The status a gateway writes for `route`, or None when the route is not attached to it or
    its status already covers the current generation."""
    metadata = route.get("metadata") or {}
    generation = int(metadata.get("generation") or 0)
    route_namespace = metadata.get("namespace", "")
    attached = [
        ref
        for ref in (route.get("spec") or {}).get("parentRefs") or []
        if ref.get("name") == gateway and ref.get("namespace", route_namespace) == namespace
    ]
    if not attached:
        return None
    for parent in (route.get("status") or {}).get("parents") or []:
        if parent.get("controllerName") != CONTROLLER_NAME:
            continue
        for existing in parent.get("conditions") or []:
            if (
                existing.get("type") == "Accepted"
                and existing.get("observedGeneration") == generation
            ):
                return None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(type_: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": "True",
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }

    return {
        "parents": [
            {
                "parentRef": {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": gateway,
                    "namespace": namespace,
                },
                "controllerName": CONTROLLER_NAME,
                "conditions": [
                    condition("Accepted", "Accepted", "Route is accepted"),
                    condition(
                        "ResolvedRefs", "ResolvedRefs", "Resolved all the backend references"
                    ),
                ],
            }
        ]
    }


class GatewayStandIn:
    """Accepts every HTTPRoute attached to one Gateway, shortly after each change."""

    def __init__(self, cluster: DevCluster, gateway: str, namespace: str) -> None:
        self.cluster = cluster
        self.gateway = gateway
        self.namespace = namespace
        self._storage = cluster.store.resolve(ROUTES).storage_key
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = cluster.store.subscribe(self._on_change)

    def close(self) -> None:
        self._unsubscribe()

    def _on_change(self, change: Change) -> None:
        if change.storage != self._storage or change.type == "DELETED":
            return
        metadata = change.entry.obj.get("metadata") or {}
        # Never write from inside the store's notification: schedule it.
        self._loop.call_soon(self._accept, metadata.get("name", ""), metadata.get("namespace", ""))

    def _accept(self, name: str, namespace: str) -> None:
        store = self.cluster.store
        try:
            route = store.get(ROUTES, name, namespace)
            status = accepted_status(route, self.gateway, self.namespace)
            if status is not None:
                store.patch(ROUTES, name, {"status": status}, namespace, subresource="status")
        except ApiError:
            return  # deleted or changed meanwhile: the next change brings us back
