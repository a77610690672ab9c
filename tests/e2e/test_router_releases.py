"""End to end through a mesh: `coalmine devcluster` serving Istio's, Gateway API's or App Mesh's
official CRDs and `coalmine controller` as processes release a Service target (selector blue →
green), and the test watches the routing object the way a mesh would, recording every split it is
given. `release(..., outcome="Failed")` runs the same release against a failing check: a rollback.

With stepWeight 20 and maxWeight 50 the canary weight goes 20, 40, 60 (a step is never clamped to
maxWeight, as Flagger's nextStepWeight), then promotion routes everything back to the primary.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest

import polling
from clusters import TestCluster
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, SERVICE, Kind, kind_for
from routers_io.gateway import HTTP_ROUTE, accepting_gateway
from routers_io.routing import split_of

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    failing_check,
)

pytestmark = pytest.mark.e2e

EXPECTED_SPLITS = [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")


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
    provider: str, ns: str, *, mesh_name: str = "", webhooks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    if mesh_name:
        service["meshName"] = mesh_name
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
            "service": service,
            "analysis": {
                "interval": "1s",
                "threshold": 2,
                "stepWeight": 20,
                "maxWeight": 50,
                "metrics": [],
                "webhooks": webhooks or [],
            },
        },
    }


MESH_COVERAGE = (
    "True",
    "in-mesh clients of podinfo follow the canary weights; clients outside the mesh calling "
    "podinfo.{ns} move to a new revision as soon as the Service changes",
)


async def release(
    api: KubeApi,
    canaries: Informer,
    provider: str,
    kind: Kind,
    ns: str,
    *,
    outcome: str = "Succeeded",
    routing_name: str = "podinfo",
    **canary_options: Any,
) -> SplitWatch:
    """Apply the target and the Canary, change the selector, wait for `outcome` (Succeeded, or
    Failed when `canary_options` carry a failing webhook)."""
    async with AsyncExitStack() as stack:
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        routes = SplitWatch(routing_name)
        informer = Informer(api, kind, ns)
        informer.subscribe(routes)
        informer.start()
        stack.push_async_callback(informer.stop)
        await informer.wait_synced()
        if provider.startswith("gatewayapi"):
            await stack.enter_async_context(accepting_gateway(api))
        await api.create(SERVICE, target_service("podinfo-blue", ns))
        await api.create(CANARY, canary(provider, ns, **canary_options))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        await eventually(lambda: watch.phase == outcome, what=outcome, watch=watch)
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        messages = await event_messages(api, ns)
        if outcome == "Failed":
            assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
            assert any(
                m.startswith(
                    f"Canary failed! Routing all traffic of podinfo.{ns} back to "
                    f"podinfo-primary.{ns}"
                )
                for m in messages
            ), messages
            return routes
        assert primary["spec"]["selector"] == {"app": "podinfo-green"}
        # Issue 13, finding 2: which traffic follows the weights, said on init (event, condition)
        mesh = (MESH_COVERAGE[0], MESH_COVERAGE[1].format(ns=ns))
        coverage = {
            "istio": mesh,
            "appmesh": mesh,
            "appmesh:v1beta2": mesh,
            "gatewayapi:v1": (
                "False",
                "only traffic through the Gateway follows the canary weights; in-cluster clients "
                f"of podinfo.{ns} move to a new revision as soon as the Service changes",
            ),
        }[provider]
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


async def test_a_service_target_is_released_through_istio(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "istio", VIRTUAL_SERVICE, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


async def test_a_service_target_is_released_through_gateway_api(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "gatewayapi:v1", HTTP_ROUTE, ns)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


APP_MESH_ROUTER = kind_for("appmesh.k8s.aws/v1beta2", "VirtualRouter")
APP_MESH_NODE = kind_for("appmesh.k8s.aws/v1beta2", "VirtualNode")


def failing_rollout_check(url: str) -> list[dict[str, Any]]:
    return [{"name": "acceptance", "type": "rollout", "url": url, "timeout": "5s"}]


async def test_a_service_target_is_released_through_app_mesh(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        routes = await release(api, canaries, "appmesh:v1beta2", APP_MESH_ROUTER, ns)

        green = {"matchLabels": {"app": "podinfo-green"}}

        async def primary_node_selects_green() -> bool:
            node = await api.get(APP_MESH_NODE, "podinfo-primary", ns)
            return bool(node["spec"].get("podSelector") == green)

        # The primary virtual node follows the primary copy to the promoted pods.
        await polling.eventually(primary_node_selects_green, what="primary node selects green")
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]


async def test_a_failing_check_rolls_app_mesh_back_to_the_primary(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with (
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
        failing_check() as url,
    ):
        routes = await release(
            api,
            canaries,
            "appmesh:v1beta2",
            APP_MESH_ROUTER,
            ns,
            outcome="Failed",
            webhooks=failing_rollout_check(url),
        )
    assert routes.splits[0] == (100, 0), routes.splits
    assert routes.splits[-1] == (100, 0), routes.splits
