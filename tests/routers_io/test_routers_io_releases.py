"""Whole releases of a Service target through the real Scheduler and every router, on devcluster
serving the routers' official CRDs: the split observed on the API server after every cycle."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.controller.seams import MeshRouter
from coalmine.kube.api import NotFound, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import INGRESS, SERVICE, kind_for
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from targets_io.io_helpers import (
    POLL_SECONDS,
    WAIT_SECONDS,
    make_canary,
    owner_uid,
    patch,
    service,
    write,
)
from targets_io.scheduler_rig import ClusterRig, FailingAfter

from .gateway import AcceptingGateway
from .routing import (
    AB_PROVIDERS,
    MIRROR_PROVIDERS,
    PROVIDERS,
    ab_match,
    canary_spec,
    mesh_router,
    routing_object,
    seed,
    split_of,
)

CANARY_RUN = [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]


class Recorder:
    """Cycles the rig and records each new split the routing object holds."""

    def __init__(self, ctx: ClusterContext, rig: ClusterRig, canary: Canary) -> None:
        self.ctx = ctx
        self.rig = rig
        self.router: MeshRouter = mesh_router(ctx, canary)
        self.canary = canary
        self.splits: list[tuple[int, int]] = []
        self.routes: list[Routes] = []

    async def _record(self) -> None:
        try:
            obj = await routing_object(self.ctx.api, self.canary, self.router.pure)
        except NotFound:
            return
        if not (self.canary.spec.analysis and self.canary.spec.analysis.match):
            split = split_of(obj)
            if not self.splits or self.splits[-1] != split:
                self.splits.append(split)
        routes = await self._accepted_routes()
        if routes is not None and (not self.routes or self.routes[-1] != routes):
            self.routes.append(routes)

    async def _accepted_routes(self) -> Routes | None:
        """The router's reading once the gateway stand-in has accepted the route's current
        generation (it reacts to a watch event: later on a real API server than in-process)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            try:
                return await self.router.get_routes(self.canary)
            except RouterError:
                if loop.time() > deadline:
                    return None  # a route its gateway never accepted
            await asyncio.sleep(POLL_SECONDS)

    async def step(self) -> None:
        await self.rig.cycle()
        await self._record()

    async def until(self, phase: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while self.rig.phase != phase:
            if loop.time() > deadline:
                raise AssertionError(
                    f"stuck in {self.rig.phase!r} waiting for {phase!r}: {self.rig.events.seen[-5:]}"
                )
            await self.step()
            await asyncio.sleep(POLL_SECONDS)


async def start(
    ns: str, ctx: ClusterContext, provider: str, rig_analyzer: Any = None, **analysis: Any
) -> tuple[ClusterRig, Recorder]:
    """The target Service (blue), the user's objects, a rig initialised, then a new revision."""
    await write(ctx, SERVICE, service(ns))
    await seed(ns, ctx.api, provider)
    canary = make_canary(ns, "Service", **canary_spec(provider, **analysis))
    rig = ClusterRig(ctx, canary, rig_analyzer)
    recorder = Recorder(ctx, rig, canary)
    await recorder.until("Initialized")
    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}})
    return rig, recorder


async def primary_selector(ns: str, ctx: ClusterContext) -> Any:
    return (await ctx.api.get(SERVICE, "podinfo-primary", ns))["spec"]["selector"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_release_steps_the_weights_up_to_max_weight_and_promotes(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    rig, recorder = await start(ns, ctx, provider)

    await recorder.until("Succeeded")

    assert recorder.splits == CANARY_RUN
    assert [(r.primary_weight, r.canary_weight) for r in recorder.routes] == CANARY_RUN
    assert await primary_selector(ns, ctx) == {"app": "podinfo-green"}
    messages = rig.events.messages
    for weight in (20, 40, 60):
        assert f"Advance podinfo.{ns} canary weight {weight}" in messages
    assert "Routing all traffic to primary" in messages
    assert (
        f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
        in messages
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_failed_checks_roll_the_traffic_back_to_the_primary(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    rig, recorder = await start(ns, ctx, provider, FailingAfter(passes=2))

    await recorder.until("Failed")

    assert recorder.splits == CANARY_RUN
    assert recorder.routes[-1] == Routes(100, 0, False)
    assert await primary_selector(ns, ctx) == {"app": "podinfo-blue"}
    assert "Halt advancement error-rate 100 > 1" in rig.events.messages
    assert any(
        m.startswith(
            f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
        )
        for m in rig.events.messages
    )


@pytest.mark.parametrize("provider", AB_PROVIDERS)
async def test_an_ab_release_sends_matched_requests_to_the_canary_then_promotes(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    rig, recorder = await start(ns, ctx, provider, iterations=2, match=ab_match(provider))

    await recorder.until("Succeeded")

    assert recorder.routes == [Routes(100, 0), Routes(0, 100), Routes(100, 0)]
    assert f"Advance podinfo.{ns} canary iteration 2/2" in rig.events.messages
    assert await primary_selector(ns, ctx) == {"app": "podinfo-green"}


@pytest.mark.parametrize("provider", MIRROR_PROVIDERS)
async def test_a_mirrored_release_mirrors_first_then_shifts_traffic(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    _, recorder = await start(ns, ctx, provider, mirror=True, mirrorWeight=50)

    await recorder.until("Succeeded")

    assert recorder.routes == [
        Routes(100, 0),
        Routes(100, 0, mirrored=True),
        Routes(80, 20),
        Routes(60, 40),
        Routes(40, 60),
        Routes(100, 0),
    ]


USER_VIRTUAL_SERVICE_SPEC = {
    "hosts": ["podinfo"],
    "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
}


async def user_virtual_service(ns: str, ctx: ClusterContext) -> None:
    """A VirtualService the user applied with kubectl before the Canary took it over."""
    body = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": USER_VIRTUAL_SERVICE_SPEC,
    }
    body["metadata"]["annotations"] = {  # type: ignore[index]
        naming.KUBECTL_LAST_APPLIED_ANNOTATION: json.dumps(body)
    }
    await ctx.api.create(kind_for("networking.istio.io/v1beta1", "VirtualService"), body)


def owned(obj: Object) -> bool:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or []] == [
        owner_uid(obj["metadata"]["namespace"])
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_deleting_a_canary_with_revert_on_deletion_reverts_the_routing(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    if provider == "istio":
        await user_virtual_service(ns, ctx)
    rig, recorder = await start(ns, ctx, provider)
    await recorder.until("Progressing")
    await recorder.step()
    assert recorder.splits[-1] == (80, 20)
    rig.store.canary.spec.revert_on_deletion = True

    assert await rig.scheduler.finalize(rig.store.canary.model_copy(deep=True))

    if provider == "kuma":
        # Cluster-scoped: no owner could collect it, so finalization deletes it.
        with pytest.raises(NotFound):
            await routing_object(ctx.api, rig.store.canary, recorder.router.pure)
        return
    if provider in ("nginx", "skipper"):
        with pytest.raises(NotFound):
            await ctx.api.get(INGRESS, "podinfo-canary", ns)
        user = await ctx.api.get(INGRESS, "podinfo", ns)
        assert "nginx.ingress.kubernetes.io/canary" not in user["metadata"]["annotations"]
        assert "zalando.org/backend-weights" not in user["metadata"]["annotations"]
        return
    routing = await routing_object(ctx.api, rig.store.canary, recorder.router.pure)
    if provider == "istio":
        assert routing["spec"] == USER_VIRTUAL_SERVICE_SPEC
        assert not owned(routing)
    else:
        # Left to garbage collection with the Canary (its controller owner).
        assert owned(routing)
