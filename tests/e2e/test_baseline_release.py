"""End to end: a canary judged against a fresh baseline (issue 19), through Istio and Gateway API.

`coalmine devcluster` (or the real control plane) and `coalmine controller` run as processes; a
real Prometheus scrapes an exporter in the test process every second. The exporter draws each
scrape's latency per workload: the primary is warm (80 ms), the baseline and a good canary start
cold (100 ms), a regressed canary is 10 % slower (110 ms), sd 5 ms. Compared with the primary a
good canary would look slower; compared with the fresh baseline it is promoted, and the
regressed one is rolled back. Each run must create `<name>-baseline` (its own app, the canary's
replicas, ready), give it the canary's share (primary 100 - 2w), and leave nothing behind.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clusters import TestCluster
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, DEPLOYMENT, SERVICE, Kind, kind_for
from routers_io.gateway import HTTP_ROUTE, accepting_gateway

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    prometheus_of,
    start_controller,
    until_prometheus_answers,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")
# workload -> mean latency (seconds)
LATENCY = {
    "steady-primary": 0.080,
    "steady-baseline": 0.100,
    "steady": 0.100,
    "regressed-primary": 0.080,
    "regressed-baseline": 0.100,
    "regressed": 0.110,
}
SPREAD = 0.005
WINDOW = "20s"
QUERY = 'app_latency_seconds{workload="{{ workload }}"}'
REPLICAS = 2


class LatencyCollector(Collector):
    def __init__(self) -> None:
        self.random = random.Random(19)

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("app_latency_seconds", "Mean latency", labels=["workload"])
        for workload, mean in LATENCY.items():
            gauge.add_metric([workload], self.random.gauss(mean, SPREAD))
        return [gauge]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    async with prometheus_of(LatencyCollector(), workdir) as url:
        yield url


async def enough_samples(prometheus: str) -> None:
    query = f"min(count_over_time(app_latency_seconds[{WINDOW}])) >= 18"
    await until_prometheus_answers(prometheus, query)


def deployment(name: str, ns: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "app",
        "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
        "ports": [{"name": "http", "containerPort": 9898}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def canary(name: str, ns: str, provider: str, prometheus: str) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    judged = {
        "name": "latency",
        "query": QUERY,
        "interval": WINDOW,
        # control unset: with a baseline the judge compares against it
        "judge": {"direction": "increase", "step": "1s", "confidence": 0.99, "tolerance": 0.02},
    }
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": provider,
            "metricsServer": prometheus,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": service,
            "analysis": {
                "interval": "2s",
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 20,
                "baseline": {"enabled": True},
                "metrics": [judged],
                "judge": {"passScore": 95, "marginalScore": 75},
            },
        },
    }


def split_of(obj: Object) -> dict[str, int]:
    """host/backend -> weight of the weighted route, as the API server stores it."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "VirtualService":
        route = (spec.get("http") or [{}])[-1].get("route") or []
        return {d["destination"]["host"]: int(d.get("weight") or 0) for d in route}
    backends = (spec.get("rules") or [{}])[-1].get("backendRefs") or []
    return {b["name"]: int(b.get("weight") or 0) for b in backends}


class Recorder:
    """Every distinct split of the routing object and every state of `<name>-baseline`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.splits: list[dict[str, int]] = []
        self.baselines: list[Object] = []

    def route(self, event_type: str, obj: Object) -> None:
        if event_type == "DELETED" or obj["metadata"]["name"] != self.name:
            return
        split = split_of(obj)
        if not self.splits or self.splits[-1] != split:
            self.splits.append(split)

    def deployment(self, event_type: str, obj: Object) -> None:
        if obj["metadata"]["name"] == f"{self.name}-baseline" and event_type != "DELETED":
            self.baselines.append(obj)


async def watching(stack: AsyncExitStack, api: KubeApi, kind: Kind, ns: str, handler: Any) -> None:
    informer = Informer(api, kind, ns)
    informer.subscribe(handler)
    informer.start()
    stack.push_async_callback(informer.stop)
    await informer.wait_synced()


async def run_release(
    api: KubeApi,
    canaries: Informer,
    name: str,
    provider: str,
    ns: str,
    prometheus: str,
    mid_run: Callable[[], Awaitable[None]] | None = None,
) -> tuple[CanaryWatch, Recorder]:
    """Release a new revision; `mid_run` is awaited once the baseline is ready and routed."""
    async with AsyncExitStack() as stack:
        watch = CanaryWatch(name, ns)
        canaries.subscribe(watch)
        seen = Recorder(name)
        routing = HTTP_ROUTE if provider.startswith("gatewayapi") else VIRTUAL_SERVICE
        await watching(stack, api, routing, ns, seen.route)
        await watching(stack, api, DEPLOYMENT, ns, seen.deployment)
        if provider.startswith("gatewayapi"):
            await stack.enter_async_context(accepting_gateway(api))
        await api.create(DEPLOYMENT, deployment(name, ns))
        await api.create(CANARY, canary(name, ns, provider, prometheus))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        assert await api.get_or_none(DEPLOYMENT, f"{name}-baseline", ns) is None
        await enough_samples(prometheus)
        revision = {"spec": {"template": {"metadata": {"annotations": {"revision": "2"}}}}}
        await api.patch(DEPLOYMENT, name, revision, ns)
        if mid_run is not None:
            await eventually(
                lambda: any(s.get(f"{name}-baseline", 0) > 0 for s in seen.splits),
                what="the baseline routed",
                watch=watch,
            )
            await mid_run()
        await eventually(
            lambda: watch.phase in ("Succeeded", "Failed"), what="a verdict", watch=watch
        )
        return watch, seen


def assert_baseline_ran_and_is_gone(seen: Recorder, name: str) -> None:
    assert seen.baselines, "no baseline Deployment was created"
    last = seen.baselines[-1]
    assert last["spec"]["replicas"] == REPLICAS
    assert last["spec"]["selector"]["matchLabels"] == {"app": f"{name}-baseline"}
    assert last["spec"]["template"]["metadata"]["labels"]["app"] == f"{name}-baseline"
    assert last["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert any((b.get("status") or {}).get("readyReplicas") == REPLICAS for b in seen.baselines)
    primary, canary_host, baseline = f"{name}-primary", f"{name}-canary", f"{name}-baseline"
    assert {primary: 80, canary_host: 10, baseline: 10} in seen.splits, seen.splits
    assert seen.splits[-1] == {primary: 100, canary_host: 0}, seen.splits


async def assert_nothing_left(api: KubeApi, name: str, ns: str) -> None:
    assert await api.get_or_none(DEPLOYMENT, f"{name}-baseline", ns) is None
    assert await api.get_or_none(SERVICE, f"{name}-baseline", ns) is None


def judge_threshold(stored: dict[str, Any]) -> str:
    records = {r["name"]: r for r in stored["status"].get("metrics") or []}
    return str(records["latency"]["measurements"][-1]["threshold"])


async def test_a_canary_as_fast_as_its_fresh_baseline_is_promoted_through_istio(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str, tmp_path: Path
) -> None:
    """The controller is restarted while the baseline runs: the new one carries on from the
    live three-way split and still removes the baseline at the end."""
    ns = cluster.namespace
    successors: list[ControllerProcess] = []

    async def restart() -> None:
        controller.terminate()
        successors.append(start_controller(cluster, tmp_path))

    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            watch, seen = await run_release(
                api, canaries, "steady", "istio", ns, prometheus_url, restart
            )
            await steady_promoted(api, watch, seen, ns)
    finally:
        for process in successors:
            process.terminate()
            print(f"--- restarted controller log\n{process.logs()[-6000:]}")


async def steady_promoted(api: KubeApi, watch: CanaryWatch, seen: Recorder, ns: str) -> None:
    stored = await api.get(CANARY, "steady", ns)
    assert watch.phase == "Succeeded", json.dumps(stored["status"])
    # compared with the fresh baseline (both cold), not with the warm primary
    assert judge_threshold(stored).startswith("judge vs baseline"), judge_threshold(stored)
    assert {"steady-primary": 60, "steady-canary": 20, "steady-baseline": 20} in seen.splits
    assert_baseline_ran_and_is_gone(seen, "steady")
    await assert_nothing_left(api, "steady", ns)


async def test_a_canary_slower_than_its_fresh_baseline_is_rolled_back_through_gateway_api(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch, seen = await run_release(
            api, canaries, "regressed", "gatewayapi:v1", ns, prometheus_url
        )
        stored = await api.get(CANARY, "regressed", ns)
        assert watch.phase == "Failed", json.dumps(stored["status"])
        assert "Promoting" not in watch.phases
        assert judge_threshold(stored).startswith("judge vs baseline")
        messages = await event_messages(api, ns)
        halt = f"Halt regressed.{ns} advancement judge score 0 <= marginal 75"
        assert halt in messages, messages
        records = {r["name"]: r for r in stored["status"]["metrics"]}
        assert records["latency"]["measurements"][-1]["verdict"] == "High"
        assert_baseline_ran_and_is_gone(seen, "regressed")
        await assert_nothing_left(api, "regressed", ns)


async def test_a_router_that_cannot_split_three_ways_is_refused_with_checks_words(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    """The controller's refusal (the `Valid` condition) carries the problem `coalmine check`
    reports for the same manifest."""
    import yaml

    from coalmine.cli.check import Options, check_stream

    ns = cluster.namespace
    manifest = canary("meshless", ns, "kubernetes", prometheus_url)
    result = check_stream(yaml.safe_dump(manifest), "canary.yaml", Options())
    errors = [f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"]
    assert len(errors) == 1
    assert errors[0].startswith(
        "spec.analysis.baseline.enabled: the kubernetes router cannot split traffic three ways"
    )
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("meshless", ns)
        canaries.subscribe(watch)
        await api.create(DEPLOYMENT, deployment("meshless", ns))
        await api.create(CANARY, manifest)

        def refused() -> bool:
            conditions = (watch.last.get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Valid" and c.get("status") == "False" for c in conditions)

        await eventually(refused, what="the Canary refused", watch=watch)
        conditions = {c["type"]: c for c in watch.last["status"]["conditions"]}
        assert conditions["Valid"]["reason"] == "UnsupportedRouting"
        assert errors[0] in conditions["Valid"]["message"]
        assert await api.get_or_none(DEPLOYMENT, "meshless-primary", ns) is None
