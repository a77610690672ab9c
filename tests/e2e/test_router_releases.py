"""End to end through a mesh: the API server (devcluster, or the real control plane) serving the
official CRDs of Istio, Gateway API, Gloo and Kuma, and `coalmine controller` as a process release a
Service target (selector blue → green), and the test watches the routing object the way a mesh
would, recording every split it is given.

With stepWeight 20 and maxWeight 50 the canary weight goes 20, 40, 60 (a step is never clamped to
maxWeight, as Flagger's nextStepWeight), then promotion routes everything back to the primary.

Rollbacks are decided by the builtin `request-success-rate` check against a real Prometheus that
scrapes an exporter reporting the canary copy at 50% success under the metric names the
provider's data plane uses (Gloo's gateway Envoy, Kuma's sidecars), so the check reads the
provider's real series, fails twice and the traffic goes back to the primary.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from clusters import TestCluster
from coalmine.kube.api import KubeApi, NotFound, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, ROUTE_TABLE, SERVICE, TRAFFIC_ROUTE, kind_for
from routers_io.gateway import HTTP_ROUTE, accepting_gateway
from routers_io.routing import split_of

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    prometheus_scraping,
    serve_app,
)

pytestmark = pytest.mark.e2e

EXPECTED_SPLITS = [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")


class SplitWatch:
    """Every distinct split the routing object `podinfo` was given, in order."""

    def __init__(self) -> None:
        self.splits: list[tuple[int, int]] = []

    def __call__(self, event_type: str, obj: Object) -> None:
        if event_type == "DELETED" or obj["metadata"]["name"] != "podinfo":
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


def canary(
    provider: str, ns: str, metrics: list[dict[str, Any]] | None = None, metrics_server: str = ""
) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
        "service": service,
        "analysis": {
            "interval": "1s",
            "threshold": 2,
            "stepWeight": 20,
            "maxWeight": 50,
            "metrics": metrics or [],
        },
    }
    if provider == "kuma":
        # TrafficRoutes are cluster-scoped: nothing garbage-collects them, finalization does.
        spec["revertOnDeletion"] = True
    if metrics_server:
        spec["metricsServer"] = metrics_server
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": spec,
    }


COVERAGE = {
    "istio": (
        "True",
        "in-mesh clients of podinfo follow the canary weights; clients outside the mesh "
        "calling podinfo.{ns} move to a new revision as soon as the Service changes",
    ),
    "kuma": (
        "True",
        "in-mesh clients of podinfo follow the canary weights; clients outside the mesh "
        "calling podinfo.{ns} move to a new revision as soon as the Service changes",
    ),
    "gatewayapi:v1": (
        "False",
        "only traffic through the Gateway follows the canary weights; in-cluster clients "
        "of podinfo.{ns} move to a new revision as soon as the Service changes",
    ),
    "gloo": (
        "False",
        "only traffic through the Gloo gateway follows the canary weights; in-cluster clients "
        "of podinfo.{ns} move to a new revision as soon as the Service changes",
    ),
}
ROUTING_KINDS = {
    "istio": VIRTUAL_SERVICE,
    "gatewayapi:v1": HTTP_ROUTE,
    "gloo": ROUTE_TABLE,
    "kuma": TRAFFIC_ROUTE,
}


async def started(
    api: KubeApi, canaries: Informer, provider: str, ns: str, stack: AsyncExitStack
) -> tuple[CanaryWatch, SplitWatch]:
    """The Canary's and the routing object's watches, and the provider's stand-ins, running."""
    watch = CanaryWatch("podinfo", ns)
    canaries.subscribe(watch)
    routes = SplitWatch()
    kind = ROUTING_KINDS[provider]
    informer = Informer(api, kind, ns if kind.namespaced else None)
    informer.subscribe(routes)
    informer.start()
    stack.push_async_callback(informer.stop)
    await informer.wait_synced()
    if provider.startswith("gatewayapi"):
        await stack.enter_async_context(accepting_gateway(api))
    if provider == "kuma":
        # The real control plane serves every test: a route a failed earlier test left.
        with contextlib.suppress(NotFound):
            await api.delete(TRAFFIC_ROUTE, "podinfo")
    return watch, routes


async def deleted_with_its_route(api: KubeApi, provider: str, ns: str) -> None:
    """Kuma: deleting the Canary (revertOnDeletion) deletes its cluster-scoped TrafficRoute."""
    if provider != "kuma":
        return
    await api.delete(CANARY, "podinfo", ns)

    async def route_gone() -> bool:
        return await api.get_or_none(TRAFFIC_ROUTE, "podinfo") is None

    await eventually(route_gone, what="TrafficRoute podinfo deleted by finalization")


async def release(api: KubeApi, canaries: Informer, provider: str, ns: str) -> SplitWatch:
    """Apply the target and the Canary, change the selector, wait for Succeeded."""
    async with AsyncExitStack() as stack:
        watch, routes = await started(api, canaries, provider, ns, stack)
        await api.create(SERVICE, target_service("podinfo-blue", ns))
        await api.create(CANARY, canary(provider, ns))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-green"}
        messages = await event_messages(api, ns)
        # Issue 13, finding 2: which traffic follows the weights, said on init (event, condition)
        coverage = COVERAGE[provider]
        sentence = f"provider {provider}: {coverage[1].format(ns=ns)}"
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
        await deleted_with_its_route(api, provider, ns)
        return routes


async def test_a_service_target_is_released_through_istio(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "istio", ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


async def test_a_service_target_is_released_through_gateway_api(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "gatewayapi:v1", ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


@pytest.mark.parametrize("provider", ["gloo", "kuma"])
async def test_a_service_target_is_released_through(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, provider, ns)
        if provider == "gloo":
            # The generated upstreams follow their copy: after promotion the primary one
            # selects the new revision's pods, as the primary copy does.
            name = f"{ns}-podinfo-primaryupstream-9898"

            async def primary_upstream_selects_green() -> bool:
                upstream = await api.get(kind_for("gloo.solo.io/v1", "Upstream"), name, ns)
                kube = upstream["spec"]["kube"]
                return bool(
                    kube["serviceName"] == "podinfo-primary"
                    and kube.get("selector") == {"app": "podinfo-green"}
                )

            await eventually(primary_upstream_selects_green, what=f"Upstream {name} follows")
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


# --- rollback through the builtin check, on the provider's own metric names -----------------------

#: What each data plane reports for the two copies of Service target `podinfo` in `ns`: Gloo's
#: gateway names an Envoy cluster `<upstream>_<upstream namespace>`, Kuma's sidecars label
#: the series with the `kuma.io/service` tag of the destination.
SERIES = {
    "gloo": lambda ns, copy: {"envoy_cluster_name": f"{ns}-podinfo-{copy}upstream-9898_{ns}"},
    "kuma": lambda ns, copy: {
        "envoy_cluster_name": "localhost_9898",
        "service": f"podinfo-{copy}_{ns}_svc_9898",
    },
}
#: Requests per second by (copy, response code): the canary copy answers half, the primary all.
RATES = {("canary", "200"): 5.0, ("canary", "503"): 5.0, ("primary", "200"): 50.0}


def exposition(provider: str, ns: str, elapsed: float) -> str:
    """Envoy's request counter for both copies, grown at `RATES` since the exporter started."""
    lines = ["# TYPE envoy_cluster_upstream_rq untyped"]
    for (copy, code), rate in RATES.items():
        labels = {**SERIES[provider](ns, copy), "envoy_response_code": code}
        text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        lines.append(f"envoy_cluster_upstream_rq{{{text}}} {rate * elapsed:.3f}")
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def scraped_data_plane(provider: str, ns: str, workdir: Path) -> AsyncIterator[str]:
    """A real Prometheus scraping the provider's series; yields its URL."""
    start = time.monotonic()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=exposition(provider, ns, time.monotonic() - start))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    async with (
        serve_app(app) as exporter,
        prometheus_scraping([exporter.removeprefix("http://")], workdir) as url,
    ):
        yield url


SUCCESS_RATE = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"}


@pytest.mark.parametrize("provider", ["gloo", "kuma"])
async def test_a_failing_canary_is_rolled_back_through(
    cluster: TestCluster, controller: ControllerProcess, provider: str, tmp_path: Path
) -> None:
    ns = cluster.namespace
    async with (
        scraped_data_plane(provider, ns, tmp_path) as prometheus,
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
        AsyncExitStack() as stack,
    ):
        watch, routes = await started(api, canaries, provider, ns, stack)
        await api.create(SERVICE, target_service("podinfo-blue", ns))
        await api.create(CANARY, canary(provider, ns, [SUCCESS_RATE], prometheus))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)

        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
        messages = await event_messages(api, ns)
        halts = [m for m in messages if m.startswith(f"Halt podinfo.{ns} advancement")]
        assert halts == [f"Halt podinfo.{ns} advancement success rate 50.00% < 99%"] * 2
        assert (
            f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
            in messages
        )
        await deleted_with_its_route(api, provider, ns)
    assert routes.splits == [(100, 0), (80, 20), (100, 0)], controller.logs()[-3000:]
