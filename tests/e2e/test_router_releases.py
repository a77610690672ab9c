"""End to end through a mesh or an edge router: the API server (devcluster, or the real control
plane) serving the routers' official CRDs, and `coalmine controller` as a process, release a
Service target (selector blue → green); the test watches the routing object the way a mesh would,
recording every split it is given.

With stepWeight 20 and maxWeight 50 the canary weight goes 20, 40, 60 (a step is never clamped to
maxWeight, as Flagger's nextStepWeight), then promotion routes everything back to the primary.

Rollbacks are decided either by a rollout webhook (a local aiohttp server that passes twice, then
fails), or by the builtin `request-success-rate` check against a real Prometheus that scrapes an
exporter reporting the canary copy at 50% success under the metric names the provider's data plane
uses (Gloo's gateway Envoy, Kuma's sidecars), so the check reads the provider's real series.
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
from coalmine.api.providers import PROVIDERS
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import (
    APISIX_ROUTE,
    CANARY,
    INGRESS,
    ROUTE_TABLE,
    SERVICE,
    TRAFFIC_ROUTE,
    Kind,
    kind_for,
)
from routers_io.gateway import HTTP_ROUTE, accepting_gateway
from routers_io.routing import canary_spec, seed, split_of, weighted_object

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    failing_check,
    prometheus_scraping,
    serve_app,
)

pytestmark = pytest.mark.e2e

EXPECTED_SPLITS = [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")
APP_MESH_ROUTER = kind_for("appmesh.k8s.aws/v1beta2", "VirtualRouter")
APP_MESH_NODE = kind_for("appmesh.k8s.aws/v1beta2", "VirtualNode")
#: The kind of the object holding each provider's split (its name: `routing.weighted_object`).
ROUTING_KINDS: dict[str, Kind] = {
    "istio": VIRTUAL_SERVICE,
    "gatewayapi:v1": HTTP_ROUTE,
    "gloo": ROUTE_TABLE,
    "kuma": TRAFFIC_ROUTE,
    "appmesh:v1beta2": APP_MESH_ROUTER,
    "apisix": APISIX_ROUTE,
    "skipper": INGRESS,
}
#: Routers whose split lives in a copy of the user's own object, seeded before the Canary.
EDGE_COPIES = ("apisix", "skipper")


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


def canary(
    provider: str,
    ns: str,
    *,
    metrics: list[dict[str, Any]] | None = None,
    metrics_server: str = "",
    mesh_name: str = "",
    webhooks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    if mesh_name:
        service["meshName"] = mesh_name
    refs = {k: v for k, v in canary_spec(provider).items() if k in ("ingressRef", "routeRef")}
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
        "service": service,
        **refs,
        "analysis": {
            "interval": "1s",
            "threshold": 2,
            "stepWeight": 20,
            "maxWeight": 50,
            "metrics": metrics or [],
            "webhooks": webhooks or [],
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


def failing_rollout_check(url: str) -> list[dict[str, Any]]:
    return [{"name": "acceptance", "type": "rollout", "url": url, "timeout": "5s"}]


def coverage_of(provider: str, ns: str) -> tuple[str, str]:
    """The TrafficCoverage condition (status, sentence) the controller states on init, from the
    provider's scope in the provider table."""
    row = PROVIDERS[provider]
    if row.scope == "mesh":
        return (
            "True",
            "in-mesh clients of podinfo follow the canary weights; clients outside the mesh "
            f"calling podinfo.{ns} move to a new revision as soon as the Service changes",
        )
    return (
        "False",
        f"only traffic through {row.through} follows the canary weights; in-cluster clients "
        f"of podinfo.{ns} move to a new revision as soon as the Service changes",
    )


@contextlib.asynccontextmanager
async def new_revision(
    api: KubeApi,
    canaries: Informer,
    provider: str,
    ns: str,
    *,
    kind: Kind | None = None,
    routing_name: str | None = None,
    **canary_options: Any,
) -> AsyncIterator[tuple[CanaryWatch, SplitWatch]]:
    """The user's objects, the target and the Canary applied and initialised, then the selector
    changed: a new revision is under way, watched (Canary, routing object)."""
    async with AsyncExitStack() as stack:
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        routes = SplitWatch(routing_name or weighted_object(provider)[1])
        kind = kind or ROUTING_KINDS[provider]
        informer = Informer(api, kind, ns if kind.namespaced else None)
        informer.subscribe(routes)
        informer.start()
        stack.push_async_callback(informer.stop)
        await informer.wait_synced()
        if provider.startswith("gatewayapi"):
            await stack.enter_async_context(accepting_gateway(api))
        await seed(ns, api, provider)
        await api.create(SERVICE, target_service("podinfo-blue", ns))
        await api.create(CANARY, canary(provider, ns, **canary_options))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        yield watch, routes


async def deleted_with_its_route(api: KubeApi, provider: str, ns: str) -> None:
    """Kuma: deleting the Canary (revertOnDeletion) deletes its cluster-scoped TrafficRoute."""
    if provider != "kuma":
        return
    await api.delete(CANARY, "podinfo", ns)

    async def route_gone() -> bool:
        return await api.get_or_none(TRAFFIC_ROUTE, "podinfo") is None

    await eventually(route_gone, what="TrafficRoute podinfo deleted by finalization")


async def assert_rolled_back(api: KubeApi, ns: str) -> None:
    primary = await api.get(SERVICE, "podinfo-primary", ns)
    assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
    messages = await event_messages(api, ns)
    failed = f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
    assert any(m.startswith(failed) for m in messages), messages


async def assert_promoted(api: KubeApi, watch: CanaryWatch, provider: str, ns: str) -> None:
    primary = await api.get(SERVICE, "podinfo-primary", ns)
    assert primary["spec"]["selector"] == {"app": "podinfo-green"}
    messages = await event_messages(api, ns)
    # Issue 13, finding 2: which traffic follows the weights, said on init (event, condition)
    status, text = coverage_of(provider, ns)
    sentence = f"provider {provider}: {text}"
    assert sentence in messages
    conditions = {c["type"]: c for c in watch.last["status"]["conditions"]}
    condition = conditions["TrafficCoverage"]
    assert (condition["status"], condition["message"]) == (status, sentence)
    for weight in (20, 40, 60):
        assert f"Advance podinfo.{ns} canary weight {weight}" in messages
    promoted = f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
    assert promoted in messages


async def release(
    api: KubeApi,
    canaries: Informer,
    provider: str,
    ns: str,
    *,
    outcome: str = "Succeeded",
    **options: Any,
) -> SplitWatch:
    """A new revision through to `outcome`: Succeeded, or Failed when `options` carry a failing
    webhook (`new_revision` takes the routing object's kind and name and the Canary's options)."""
    async with new_revision(api, canaries, provider, ns, **options) as (watch, routes):
        await eventually(lambda: watch.phase == outcome, what=outcome, watch=watch)
        if outcome == "Failed":
            await assert_rolled_back(api, ns)
        else:
            await assert_promoted(api, watch, provider, ns)
        await deleted_with_its_route(api, provider, ns)
        return routes


@pytest.mark.parametrize("provider", ["istio", "gatewayapi:v1", "kuma"])
async def test_a_service_target_is_released_through(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, provider, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


async def test_gloo_upstreams_follow_their_copies_through_a_release(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "gloo", ns)
        # The generated upstreams follow their copy: after promotion the primary one selects
        # the new revision's pods, as the primary copy does.
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


async def test_app_mesh_virtual_nodes_follow_their_copies_through_a_release(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "appmesh:v1beta2", ns)
        green = {"matchLabels": {"app": "podinfo-green"}}

        async def primary_node_selects_green() -> bool:
            node = await api.get(APP_MESH_NODE, "podinfo-primary", ns)
            return bool(node["spec"].get("podSelector") == green)

        # The primary virtual node follows the primary copy to the promoted pods.
        await eventually(primary_node_selects_green, what="primary node selects green")
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


@pytest.mark.parametrize("provider", EDGE_COPIES)
async def test_a_service_target_is_released_through_an_edge_router_copy(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    """APISIX's canary ApisixRoute and Skipper's canary Ingress, accepted by the API server
    (the official ApisixRoute CRD validates on both tiers) and stepped to promotion."""
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, provider, ns)
        kind, name = weighted_object(provider)
        stored = await api.get(ROUTING_KINDS[provider], name, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]
    (owner,) = stored["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Canary", "podinfo")
    assert stored["kind"] == kind


# --- rollback through a failing rollout webhook -------------------------------------------------


@pytest.mark.parametrize("provider", ["appmesh:v1beta2", *EDGE_COPIES])
async def test_failed_checks_roll_the_traffic_back_to_the_primary(
    cluster: TestCluster, controller: ControllerProcess, provider: str
) -> None:
    ns = cluster.namespace
    async with (
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
        failing_check(passes=2) as url,
    ):
        routes = await release(
            api, canaries, provider, ns, outcome="Failed", webhooks=failing_rollout_check(url)
        )
        stored = await api.get(ROUTING_KINDS[provider], weighted_object(provider)[1], ns)
    splits = routes.splits
    assert splits[0] == (100, 0), controller.logs()[-3000:]
    assert splits[-1] == (100, 0), splits
    assert (80, 20) in splits
    if provider == "skipper":
        # Weight 0: the canary Ingress' routes are switched off, the user's Ingress routes alone.
        predicate = stored["metadata"]["annotations"]["zalando.org/skipper-predicate"]
        assert predicate.startswith("False()")


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
    ):
        options = {"metrics": [SUCCESS_RATE], "metrics_server": prometheus}
        async with new_revision(api, canaries, provider, ns, **options) as (watch, routes):
            await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)
            await assert_rolled_back(api, ns)
            messages = await event_messages(api, ns)
            halts = [m for m in messages if m.startswith(f"Halt podinfo.{ns} advancement")]
            assert halts == [f"Halt podinfo.{ns} advancement success rate 50.00% < 99%"] * 2
            await deleted_with_its_route(api, provider, ns)
    assert routes.splits == [(100, 0), (80, 20), (100, 0)], controller.logs()[-3000:]
