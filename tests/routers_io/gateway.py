"""A stand-in for a Gateway API implementation: it accepts every HTTPRoute it sees.

The Gateway API router reads weights only from a route its gateways accepted at the route's
current generation (`status.parents[].conditions` Accepted=True with `observedGeneration`), as a
real Gateway controller reports them. `accepting_gateway` plays that controller against any
API server (the in-process devcluster or a devcluster process): on every change of an HTTPRoute
it writes the Accepted condition through the status subresource, one parent per `parentRef`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from coalmine.kube.api import KubeApi, NotFound, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import Kind, kind_for

HTTP_ROUTE = kind_for("gateway.networking.k8s.io/v1", "HTTPRoute")
CONTROLLER_NAME = "example.com/gateway-stand-in"


def accepted_at_generation(route: Object) -> bool:
    """Whether every parentRef has an Accepted=True parent status for the current generation."""
    generation = int(route["metadata"].get("generation") or 0)
    parents = (route.get("status") or {}).get("parents") or []
    wanted = len((route.get("spec") or {}).get("parentRefs") or [])
    current = 0
    for parent in parents:
        for condition in parent.get("conditions") or []:
            if (
                condition.get("type") == "Accepted"
                and condition.get("status") == "True"
                and int(condition.get("observedGeneration") or 0) == generation
            ):
                current += 1
    return current >= wanted


def parent_statuses(route: Object) -> list[dict[str, Any]]:
    generation = int(route["metadata"].get("generation") or 0)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {
            "parentRef": dict(ref),
            "controllerName": CONTROLLER_NAME,
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "True",
                    "reason": "Accepted",
                    "message": "accepted by the test's gateway stand-in",
                    "observedGeneration": generation,
                    "lastTransitionTime": now,
                }
            ],
        }
        for ref in (route.get("spec") or {}).get("parentRefs") or []
    ]


class AcceptingGateway:
    """Counts the acceptances it wrote (a test can wait for a route to be accepted)."""

    def __init__(self, api: KubeApi, kind: Kind = HTTP_ROUTE) -> None:
        self.api = api
        self.kind = kind
        self.informer = Informer(api, kind)
        self.accepted = 0
        self.informer.subscribe(self._on_route)

    async def _on_route(self, event_type: str, route: Object) -> None:
        if event_type == "DELETED" or accepted_at_generation(route):
            return
        metadata = route["metadata"]
        with contextlib.suppress(NotFound):
            await self.api.patch(
                self.kind,
                metadata["name"],
                {"status": {"parents": parent_statuses(route)}},
                metadata["namespace"],
                status=True,
            )
            self.accepted += 1


@contextlib.asynccontextmanager
async def accepting_gateway(api: KubeApi) -> AsyncIterator[AcceptingGateway]:
    """Run the stand-in for the duration of the block."""
    gateway = AcceptingGateway(api)
    gateway.informer.start()
    await gateway.informer.wait_synced()
    try:
        yield gateway
    finally:
        await gateway.informer.stop()
