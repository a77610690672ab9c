"""End to end through a mesh or an edge router: `coalmine devcluster` (or the real control plane)
serving the routers' official CRDs and `coalmine controller` as a process release a Service
target (selector blue → green), and the test watches the routing object the way a mesh would,
recording every split it is given.

With stepWeight 20 and maxWeight 50 the canary weight goes 20, 40, 60 (a step is never clamped to
maxWeight, as Flagger's nextStepWeight), then promotion routes everything back to the primary. A
rollback run has a rollout webhook (a local aiohttp server) that passes twice, then fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from clusters import TestCluster
from coalmine.api.providers import PROVIDERS
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import APISIX_ROUTE, CANARY, INGRESS, SERVICE, Kind, kind_for
from routers_io.gateway import HTTP_ROUTE, accepting_gateway
from routers_io.routing import canary_spec, seed, split_of, weighted_object

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    serve_app,
)

pytestmark = pytest.mark.e2e

EXPECTED_SPLITS = [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")


# Routers whose split lives in an object of their own next to the user's (seeded first).
EDGE_KINDS: dict[str, Kind] = {"apisix": APISIX_ROUTE, "skipper": INGRESS}


class SplitWatch:
    """Every distinct split the routing object `name` was given, in order."""

    def __init__(self, name: str = "podinfo") -> None:
        self.name = name
        self.splits: list[tuple[int, int]] = []

    def __call__(self, event_type: str, obj: Object) -> None:
        if event_type == "DELETED" or obj["metadata"]["name"] != self.name:
            return
        split = split_of(obj)
        if not self.splits or self.splits[-1] != split:
            self.splits.append(split)


def target_service(selector: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"selector": {"app": selector}, "ports": [{"name": "http", "port": 9898}]},
    }


def canary(provider: str, ns: str, webhooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    refs = {k: v for k, v in canary_spec(provider).items() if k in ("ingressRef", "routeRef")}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": provider,
            **refs,
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
            "service": service,
            "analysis": {
                "interval": "1s",
                "threshold": 2,
                "stepWeight": 20,
                "maxWeight": 50,
                "metrics": [],
                **({"webhooks": webhooks} if webhooks else {}),
            },
        },
    }


@asynccontextmanager
async def new_revision(
    api: KubeApi,
    canaries: Informer,
    provider: str,
    kind: Kind,
    ns: str,
    webhooks: list[dict[str, Any]] | None = None,
) -> AsyncIterator[tuple[CanaryWatch, SplitWatch]]:
    """The user's routing objects, the target and the Canary applied, initialised, then the
    selector changed: a new revision is under way."""
    async with AsyncExitStack() as stack:
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        routes = SplitWatch(weighted_object(provider)[1])
        informer = Informer(api, kind, ns)
        informer.subscribe(routes)
        informer.start()
        stack.push_async_callback(informer.stop)
        await informer.wait_synced()
        if provider.startswith("gatewayapi"):
            await stack.enter_async_context(accepting_gateway(api))
        await seed(ns, api, provider)
        await api.create(SERVICE, target_service("podinfo-blue", ns))
        await api.create(CANARY, canary(provider, ns, webhooks))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        yield watch, routes


def coverage_of(provider: str, ns: str) -> tuple[str, str]:
    """The TrafficCoverage condition (status, sentence) the controller states on init."""
    if provider == "istio":
        return (
            "True",
            "in-mesh clients of podinfo follow the canary weights; clients outside the mesh "
            f"calling podinfo.{ns} move to a new revision as soon as the Service changes",
        )
    through = PROVIDERS[provider].through
    return (
        "False",
        f"only traffic through {through} follows the canary weights; in-cluster clients "
        f"of podinfo.{ns} move to a new revision as soon as the Service changes",
    )


async def release(
    api: KubeApi, canaries: Informer, provider: str, kind: Kind, ns: str
) -> SplitWatch:
    """A new revision through to Succeeded."""
    async with new_revision(api, canaries, provider, kind, ns) as (watch, routes):
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-green"}
        messages = await event_messages(api, ns)
        # Issue 13, finding 2: which traffic follows the weights, said on init (event, condition)
        coverage = coverage_of(provider, ns)
        sentence = f"provider {provider}: {coverage[1]}"
        assert sentence in messages
        conditions = {c["type"]: c for c in watch.last["status"]["conditions"]}
        condition = conditions["TrafficCoverage"]
        assert (condition["status"], condition["message"]) == (coverage[0], sentence)
        for weight in (20, 40, 60):
            assert f"Advance podinfo.{ns} canary weight {weight}" in messages
        assert (
            f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
            in messages
        )
        return routes


@asynccontextmanager
async def rollout_gate(passes: int) -> AsyncIterator[str]:
    """A rollout webhook that passes `passes` times, then fails every check."""
    calls = 0

    async def check(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(status=200 if calls <= passes else 500, text=f"call {calls}")

    app = web.Application()
    app.router.add_post("/check", check)
    async with serve_app(app) as url:
        yield f"{url}/check"


async def rollback(
    api: KubeApi, canaries: Informer, provider: str, kind: Kind, ns: str
) -> SplitWatch:
    """A new revision whose checks fail after two steps, through to Failed."""
    async with rollout_gate(passes=2) as url:
        gate = [{"name": "gate", "type": "rollout", "url": url}]
        async with new_revision(api, canaries, provider, kind, ns, gate) as (watch, routes):
            await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)
            primary = await api.get(SERVICE, "podinfo-primary", ns)
            assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
            messages = await event_messages(api, ns)
            assert f"Advance podinfo.{ns} canary weight 20" in messages
            assert any(
                m.startswith(
                    f"Canary failed! Routing all traffic of podinfo.{ns} back to "
                    f"podinfo-primary.{ns}"
                )
                for m in messages
            ), messages
            return routes


async def test_a_service_target_is_released_through_istio(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "istio", VIRTUAL_SERVICE, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


async def test_a_service_target_is_released_through_gateway_api(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "gatewayapi:v1", HTTP_ROUTE, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


@pytest.mark.parametrize("provider", list(EDGE_KINDS))
async def test_a_service_target_is_released_through_an_edge_router_copy(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    """APISIX's canary ApisixRoute and Skipper's canary Ingress, accepted by the API server
    (the official ApisixRoute CRD validates on both tiers) and stepped to promotion."""
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, provider, EDGE_KINDS[provider], ns)
        kind, name = weighted_object(provider)
        stored = await api.get(EDGE_KINDS[provider], name, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]
    (owner,) = stored["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Canary", "podinfo")
    assert stored["kind"] == kind


@pytest.mark.parametrize("provider", list(EDGE_KINDS))
async def test_failed_checks_roll_an_edge_router_copy_back_to_the_primary(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await rollback(api, canaries, provider, EDGE_KINDS[provider], ns)
        stored = await api.get(EDGE_KINDS[provider], weighted_object(provider)[1], ns)
    splits = routes.splits
    assert splits[0] == (100, 0), controller.logs()[-3000:]
    assert splits[-1] == (100, 0), splits
    assert (80, 20) in splits
    if provider == "skipper":
        # Weight 0: the canary Ingress' routes are switched off, the user's Ingress routes alone.
        predicate = stored["metadata"]["annotations"]["zalando.org/skipper-predicate"]
        assert predicate.startswith("False()")
