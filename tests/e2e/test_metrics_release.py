"""End to end with a real Prometheus: metric checks decide a Service-target release.

`coalmine devcluster` and `coalmine controller` run as processes; a real Prometheus scrapes an
exporter in the test process every second. The exporter's counters grow at fixed rates from the
moment it starts, so every `rate()` the controller asks for reads exactly the success rate the
test chose, and the primary copy fails loudly so that a query leaking onto it would be seen.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from clusters import TestCluster
from coalmine.cli.check import check_stream
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, METRIC_TEMPLATE, SERVICE
from routers_io.gateway import accepting_gateway

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    controller_metric,
    event_messages,
    eventually,
    http_post_json,
    prometheus_scraping,
    serve_app,
    start_controller,
)

# One Prometheus (and its exporter) serves the whole module: it needs ~5 s before its first scrape
# (its scrape manager applies targets on a 5 s tick), too long to pay for every test.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

METRIC_INTERVAL = "10s"
LATENCY_SECONDS = 0.04
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Traffic:
    """Requests per second by response code."""

    rates: Mapping[str, float]


HALF_FAILING = Traffic({"200": 5.0, "500": 5.0})
HEALTHY = Traffic({"200": 10.0})


class TrafficCollector(Collector):
    """Counters computed from the time since start: a constant rate, whenever Prometheus scrapes.

    `services` feed `http_requests_total{service,code}` (what a MetricTemplate of ours reads) and,
    in each namespace a test asked for, what an Istio gateway reports for the Services an
    HTTPRoute sends to (`istio_requests_total` and `istio_request_duration_milliseconds` with
    `reporter="source"`); `pods` feed `http_request_duration_seconds{kubernetes_namespace,
    kubernetes_pod_name,status}`, named after their own workloads as the pods behind a Service
    target are.
    """

    def __init__(self, services: Mapping[str, Traffic], pods: Mapping[str, Traffic]) -> None:
        self.services = dict(services)
        self.pods = dict(pods)
        # Pods are exported in each namespace a test asked for (each test has its own on the
        # real control plane).
        self.namespaces: set[str] = set()
        self.started = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        elapsed = time.monotonic() - self.started
        requests = CounterMetricFamily(
            "http_requests", "Requests by service and code.", labels=["service", "code"]
        )
        for service, traffic in self.services.items():
            for code, rate in traffic.rates.items():
                requests.add_metric([service, code], rate * elapsed)
        durations = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Request latency.",
            labels=["kubernetes_namespace", "kubernetes_pod_name", "status"],
        )
        pods = [(ns, pod, traffic) for ns in self.namespaces for pod, traffic in self.pods.items()]
        for namespace, pod, traffic in pods:
            for code, rate in traffic.rates.items():
                count = rate * elapsed
                buckets = [
                    (f"{bound:g}", count if bound >= LATENCY_SECONDS else 0.0) for bound in BUCKETS
                ]
                durations.add_metric(
                    [namespace, pod, code],
                    [*buckets, ("+Inf", count)],
                    sum_value=count * LATENCY_SECONDS,
                )
        return [requests, durations, *self._gateway(elapsed)]

    def _gateway(self, elapsed: float) -> list[Metric]:
        labels = ["reporter", "destination_service_namespace", "destination_service_name"]
        requests = CounterMetricFamily(
            "istio_requests", "Gateway requests.", labels=[*labels, "response_code"]
        )
        durations = HistogramMetricFamily(
            "istio_request_duration_milliseconds", "Gateway latency.", labels=labels
        )
        for ns in self.namespaces:
            for service, traffic in self.services.items():
                for code, rate in traffic.rates.items():
                    requests.add_metric(["source", ns, service, code], rate * elapsed)
                count = sum(traffic.rates.values()) * elapsed
                buckets = [
                    (f"{bound * 1000:g}", count if bound >= LATENCY_SECONDS else 0.0)
                    for bound in BUCKETS
                ]
                durations.add_metric(
                    ["source", ns, service],
                    [*buckets, ("+Inf", count)],
                    sum_value=count * LATENCY_SECONDS * 1000,
                )
        return [requests, durations]


# Each test releases its own Service; the primary copies fail, so a leaking query reads < 100%.
TRAFFIC_BY_SERVICE = {
    "podinfo-canary": HALF_FAILING,
    "podinfo-primary": HEALTHY,
    "frontend-canary": HEALTHY,
    "frontend-primary": HALF_FAILING,
    "backend-canary": HEALTHY,
    "backend-primary": HALF_FAILING,
}
# The pods behind a Service target are named after their own workloads, never after the target.
TRAFFIC_BY_POD = {
    "backend-green-7b9d8c-x2k4z": HEALTHY,
    "backend-blue-5f7c9-abcde": HALF_FAILING,
}

SUCCESS_RATE_QUERY = """
sum(rate(http_requests_total{service="{{ service }}-canary", code!~"5.."}[{{ interval }}]))
/
sum(rate(http_requests_total{service="{{ service }}-canary"}[{{ interval }}]))
* 100
"""


TRAFFIC = TrafficCollector(TRAFFIC_BY_SERVICE, TRAFFIC_BY_POD)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real Prometheus scraping the exporter of `TRAFFIC_BY_SERVICE` / `TRAFFIC_BY_POD`."""
    registry = CollectorRegistry()
    registry.register(TRAFFIC)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    async with serve_app(app) as exporter:
        target = exporter.removeprefix("http://")
        workdir = tmp_path_factory.mktemp("prometheus")
        async with prometheus_scraping([target], workdir) as url:
            yield url


def service(name: str, ns: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898}]},
    }


def success_rate_template(ns: str, prometheus: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "success-rate", "namespace": ns},
        "spec": {
            "provider": {"type": "prometheus", "address": prometheus},
            "query": SUCCESS_RATE_QUERY,
        },
    }


def canary(
    name: str,
    ns: str,
    metrics: list[dict[str, Any]],
    *,
    metrics_server: str | None = None,
    provider: str = "kubernetes",
) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
        "service": service,
        "analysis": {"interval": "1s", "threshold": 2, "iterations": 2, "metrics": metrics},
    }
    if metrics_server:
        spec["metricsServer"] = metrics_server
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


TEMPLATE_METRIC = {
    "name": "success-rate",
    "templateRef": {"name": "success-rate"},
    "thresholdRange": {"min": 99},
    "interval": METRIC_INTERVAL,
}


async def eventually_scraped(prometheus: str, query: str) -> None:
    """Until `query` has a result: the series a check reads have enough samples for `rate()`."""

    async def has_result() -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{prometheus}/api/v1/query", params={"query": query}) as response,
        ):
            return bool((await response.json())["data"]["result"])

    await eventually(has_result, 30, f"samples of {query}")


async def release(api: KubeApi, watch: CanaryWatch, name: str) -> None:
    """Wait for initialization, then move the target Service from blue to green."""
    ns = watch.namespace
    await eventually(lambda: watch.phase == "Initialized", what=f"{name} Initialized", watch=watch)
    await api.patch(SERVICE, name, {"spec": {"selector": {"app": f"{name}-green"}}}, ns)


async def test_a_canary_copy_at_half_success_is_rolled_back_after_threshold_failed_checks(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(METRIC_TEMPLATE, success_rate_template(ns, prometheus_url))
        await api.create(SERVICE, service("podinfo", ns, "podinfo-blue"))
        await api.create(CANARY, canary("podinfo", ns, [TEMPLATE_METRIC]))
        await release(api, watch, "podinfo")
        await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)

        assert watch.phases[-2:] == ["Progressing", "Failed"], watch.phases
        assert "Promoting" not in watch.phases
        failed_checks = [failed for phase, _, _, failed in watch.history if phase == "Progressing"]
        assert max(failed_checks) == 2, watch.history
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
        messages = await event_messages(api, ns)
        halts = [m for m in messages if m.startswith(f"Halt podinfo.{ns} advancement")]
        assert halts == [f"Halt podinfo.{ns} advancement success-rate 50.00 < 99"] * 2, messages
        assert f"Rolling back podinfo.{ns} failed checks threshold reached 2" in messages
        assert (
            f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
            in messages
        )
        measured = await controller_metric(
            controller,
            "flagger_canary_metric_analysis",
            {"name": "podinfo", "namespace": ns, "metric": "success-rate"},
        )
        assert measured == pytest.approx(50.0)


async def test_a_healthy_canary_copy_passes_the_template_check_and_is_promoted(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("frontend", ns)
        canaries.subscribe(watch)
        await api.create(METRIC_TEMPLATE, success_rate_template(ns, prometheus_url))
        await api.create(SERVICE, service("frontend", ns, "frontend-blue"))
        await api.create(CANARY, canary("frontend", ns, [TEMPLATE_METRIC]))
        await release(api, watch, "frontend")
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)

        assert "Failed" not in watch.phases
        assert all(failed == 0 for _, _, _, failed in watch.history), watch.history
        primary = await api.get(SERVICE, "frontend-primary", ns)
        assert primary["spec"]["selector"] == {"app": "frontend-green"}
        messages = await event_messages(api, ns)
        assert not [m for m in messages if m.startswith("Halt")], messages
        assert (
            f"Promotion completed! frontend-primary.{ns} now serves the revision of frontend.{ns}"
            in messages
        )
        measured = await controller_metric(
            controller,
            "flagger_canary_metric_analysis",
            {"name": "frontend", "namespace": ns, "metric": "success-rate"},
        )
        assert measured == pytest.approx(100.0)


async def test_a_canary_copy_without_traffic_is_never_read_as_zero_and_is_rolled_back(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    """`idle-canary` has no series at all: "no values found" halts, it is never a value of 0."""
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("idle", ns)
        canaries.subscribe(watch)
        await api.create(METRIC_TEMPLATE, success_rate_template(ns, prometheus_url))
        await api.create(SERVICE, service("idle", ns, "idle-blue"))
        await api.create(CANARY, canary("idle", ns, [TEMPLATE_METRIC]))
        await release(api, watch, "idle")
        await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)

        messages = await event_messages(api, ns)
        halts = [m for m in messages if m.startswith("Halt")]
        assert (
            halts
            == ["Halt advancement no values found for custom metric: success-rate: no values found"]
            * 2
        ), messages
        assert f"Rolling back idle.{ns} failed checks threshold reached 2" in messages
        measured = await controller_metric(
            controller,
            "flagger_canary_metric_analysis",
            {"name": "idle", "namespace": ns, "metric": "success-rate"},
        )
        assert measured is None


BUILTIN = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"},
    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "10s"},
]


async def test_builtin_checks_of_a_service_target_with_provider_kubernetes_are_refused(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    """Issue 13, finding 4: nothing isolates the canary copy's pods, so the controller refuses
    instead of halting on "no values" or measuring both versions together; `coalmine check`
    reaches the same verdict."""
    ns = cluster.namespace
    manifest = canary("backend", ns, BUILTIN, metrics_server=prometheus_url)
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("backend", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service("backend", ns, "backend-blue"))
        await api.create(CANARY, manifest)

        def refusal() -> str:
            for condition in (watch.last.get("status") or {}).get("conditions") or []:
                if condition.get("type") == "Valid" and condition.get("status") == "False":
                    return str(condition.get("message"))
            return ""

        await eventually(lambda: bool(refusal()), what="refused", watch=watch)
        assert refusal().startswith("spec.analysis.metrics[0]: the builtin check")
        assert "templateRef" in refusal()
        assert any("templateRef" in m for m in await event_messages(api, ns))
        services = {s["metadata"]["name"] for s in (await api.list(SERVICE, ns)).items}
        assert "backend-canary" not in services
    checked = check_stream(yaml.safe_dump(manifest), "canary.yaml")
    # the same verdict, word for word
    errors = [f"{f.path}: {f.message}" for f in checked.findings if f.severity == "error"]
    assert errors == [refusal()]


async def test_builtin_checks_through_gateway_api_measure_the_canary_copy(
    cluster: TestCluster, controller: ControllerProcess, prometheus_url: str
) -> None:
    """Issue 13, finding 4: the gateway reports the backend Service; the healthy canary copy is
    promoted although the primary copy fails half its requests."""
    ns = cluster.namespace
    TRAFFIC.namespaces.add(ns)
    series = f'istio_requests_total{{destination_service_namespace="{ns}"}}'
    await eventually_scraped(prometheus_url, f"count_over_time({series}[1m]) >= 3")
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("backend", ns)
        canaries.subscribe(watch)
        async with accepting_gateway(api):
            await api.create(SERVICE, service("backend", ns, "backend-blue"))
            manifest = canary(
                "backend", ns, BUILTIN, metrics_server=prometheus_url, provider="gatewayapi:v1"
            )
            await api.create(CANARY, manifest)
            await release(api, watch, "backend")
            await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)

        assert all(failed == 0 for _, _, _, failed in watch.history), watch.history
        primary = await api.get(SERVICE, "backend-primary", ns)
        assert primary["spec"]["selector"] == {"app": "backend-green"}
        labels = {"name": "backend", "namespace": ns}
        success = await controller_metric(
            controller,
            "flagger_canary_metric_analysis",
            {**labels, "metric": "request-success-rate"},
        )
        assert success == pytest.approx(100.0)
        # Every request took 40 ms: the P99 lies in the (25 ms, 50 ms] bucket, exported in seconds.
        duration = await controller_metric(
            controller, "flagger_canary_metric_analysis", {**labels, "metric": "request-duration"}
        )
        assert duration is not None
        assert 0.025 <= duration <= 0.05


@pytest.mark.devcluster_only("slow MetricTemplate lists are injected with devcluster's faults API")
async def test_a_controller_restarted_mid_analysis_waits_for_its_templates_before_checking(
    cluster: TestCluster, prometheus_url: str, tmp_path: Path
) -> None:
    ns = cluster.namespace
    first = start_controller(cluster, tmp_path)
    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            watch = CanaryWatch("frontend", ns)
            canaries.subscribe(watch)
            await api.create(METRIC_TEMPLATE, success_rate_template(ns, prometheus_url))
            await api.create(SERVICE, service("frontend", ns, "frontend-blue"))
            manifest = canary("frontend", ns, [TEMPLATE_METRIC])
            manifest["spec"]["analysis"]["iterations"] = 5
            await api.create(CANARY, manifest)
            await release(api, watch, "frontend")
            await eventually(
                lambda: watch.phase == "Progressing" and watch.history[-1][2] >= 2,
                what="analysis under way",
                watch=watch,
            )
            first.kill()
            before = len(await event_messages(api, ns))
            # A large cluster lists MetricTemplates slowly; every list of them takes 3 s now.
            slow_list = {"type": "latency", "seconds": 3, "verb": "list"}
            added = await http_post_json(
                f"{cluster.url}/devcluster/faults",
                {**slow_list, "resource": "metrictemplates", "count": None},
            )
            assert added[0] == 201, added
            second = start_controller(cluster, tmp_path)
            try:
                await eventually(
                    lambda: watch.phase in ("Succeeded", "Failed"), limit=60, watch=watch
                )
            finally:
                second.terminate()
            after_restart = (await event_messages(api, ns))[before:]
            assert not [m for m in after_restart if m.startswith("Metric template")], after_restart
            assert watch.phase == "Succeeded"
    finally:
        if first.process.poll() is None:
            first.kill()
