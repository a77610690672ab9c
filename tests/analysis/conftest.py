"""A real Prometheus, backfilled with `promtool`, shared by the analysis tests.

The series are written as OpenMetrics with timestamps from 15 minutes ago to 15 minutes ahead, so
an instant query "now" (as the controller sends it) finds a full `[1m]` window for the whole run.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from binaries import require_binary
from coalmine.analysis.providers.base import ProviderContext
from coalmine.api.models import Canary, MetricTemplate, MetricTemplateProvider

STEP_SECONDS = 5
SPAN_SECONDS = 15 * 60
DURATION_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500)


@dataclass(frozen=True)
class Traffic:
    """Requests per second by response code, and where every request's latency falls (ms)."""

    rates: Mapping[str, float]
    latency_ms: float


# namespace -> workload -> traffic
ISTIO_TRAFFIC: dict[str, dict[str, Traffic]] = {
    "healthy": {
        "podinfo": Traffic({"200": 10.0}, latency_ms=40),
        # The primary fails loudly: a query that leaked onto it would not read 100%.
        "podinfo-primary": Traffic({"200": 5.0, "503": 5.0}, latency_ms=2000),
    },
    "unhealthy": {"podinfo": Traffic({"200": 5.0, "500": 5.0}, latency_ms=1200)},
}
# Service targets: traffic to the `<service>-canary` copy, labelled by destination service.
ISTIO_SERVICE_TRAFFIC: dict[str, dict[str, Traffic]] = {
    "svc": {
        "backend-canary": Traffic({"200": 9.0, "500": 1.0}, latency_ms=80),
        "backend-primary": Traffic({"200": 10.0}, latency_ms=30),
    }
}
# Knative: Envoy's series per revision cluster `<namespace>/<revision>` (Flagger's observer); the
# primary revision is healthy, the latest one fails half of its requests.
KNATIVE_TRAFFIC: dict[str, Traffic] = {
    "knative/podinfo-00001": Traffic({"200": 10.0}, latency_ms=30),
    "knative/podinfo-00002": Traffic({"200": 5.0, "503": 5.0}, latency_ms=400),
}
# The `kubernetes` provider reads app histograms in seconds from pods named after the target.
HTTP_TRAFFIC: dict[str, dict[str, Traffic]] = {
    "plain": {"podinfo-7b9d8c-x2k4z": Traffic({"200": 4.0}, latency_ms=180)},
}
# App Mesh: the Envoy sidecars' upstream counters, by pod (the primary's pod fails loudly: the
# builtin pod pattern must not match it).
APPMESH_TRAFFIC: dict[str, dict[str, Traffic]] = {
    "meshed": {
        "podinfo-7b9d8c-x2k4z": Traffic({"200": 9.0, "503": 1.0}, latency_ms=40),
        "podinfo-primary-6c8f7d-q8z2m": Traffic({"500": 10.0}, latency_ms=2000),
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _counter(
    name: str, series: list[tuple[dict[str, str], float]], times: list[int], t0: int
) -> list[str]:
    lines = [f"# TYPE {name} counter"]
    for labels, rate in series:
        for t in times:
            lines.append(f"{name}_total{_labels(labels)} {rate * (t - t0):.3f} {t}")
    return lines


def _histogram(
    name: str,
    series: list[tuple[dict[str, str], float, float]],
    times: list[int],
    t0: int,
    scale: float,
) -> list[str]:
    """Every observation of a series has the same latency; `scale` converts ms to the unit."""
    lines = [f"# TYPE {name} histogram"]
    for labels, rate, latency_ms in series:
        for t in times:
            count = rate * (t - t0)
            for bound in DURATION_BUCKETS_MS:
                le = f"{bound * scale:g}"
                in_bucket = count if latency_ms <= bound else 0.0
                lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {in_bucket:.3f} {t}")
            lines.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {count:.3f} {t}")
            lines.append(f"{name}_count{_labels(labels)} {count:.3f} {t}")
            lines.append(f"{name}_sum{_labels(labels)} {count * latency_ms * scale:.3f} {t}")
    return lines


def _unknown(
    name: str, series: list[tuple[dict[str, str], float]], times: list[int], t0: int
) -> list[str]:
    """A monotonic series without the `_total` suffix OpenMetrics counters carry (Envoy's
    `envoy_cluster_upstream_rq` as Prometheus scrapes it from the sidecars)."""
    lines = [f"# TYPE {name} unknown"]
    for labels, rate in series:
        for t in times:
            lines.append(f"{name}{_labels(labels)} {rate * (t - t0):.3f} {t}")
    return lines


def _envoy(times: list[int], t0: int) -> list[str]:
    """Envoy's series, one metric family each: App Mesh's sidecars (by pod) and Knative's
    ingress (by revision cluster `<namespace>/<revision>`)."""
    requests: list[tuple[dict[str, str], float]] = []
    durations: list[tuple[dict[str, str], float, float]] = []
    sources: list[tuple[dict[str, str], Traffic]] = [
        ({"kubernetes_namespace": namespace, "kubernetes_pod_name": pod}, traffic)
        for namespace, pods in APPMESH_TRAFFIC.items()
        for pod, traffic in pods.items()
    ]
    sources += [({"envoy_cluster_name": c}, traffic) for c, traffic in KNATIVE_TRAFFIC.items()]
    for labels, traffic in sources:
        for code, rate in traffic.rates.items():
            requests.append(({**labels, "envoy_response_code": code}, rate))
        durations.append((labels, sum(traffic.rates.values()), traffic.latency_ms))
    return [
        *_unknown("envoy_cluster_upstream_rq", requests, times, t0),
        *_histogram("envoy_cluster_upstream_rq_time", durations, times, t0, 1.0),
    ]


def openmetrics(now: int) -> str:
    t0 = now - SPAN_SECONDS
    times = list(range(t0, now + SPAN_SECONDS + 1, STEP_SECONDS))
    requests: list[tuple[dict[str, str], float]] = []
    durations: list[tuple[dict[str, str], float, float]] = []
    for namespace, workloads in ISTIO_TRAFFIC.items():
        for workload, traffic in workloads.items():
            base = {
                "reporter": "destination",
                "destination_workload_namespace": namespace,
                "destination_workload": workload,
            }
            for code, rate in traffic.rates.items():
                requests.append(({**base, "response_code": code}, rate))
            durations.append((base, sum(traffic.rates.values()), traffic.latency_ms))
    for namespace, services in ISTIO_SERVICE_TRAFFIC.items():
        for service, traffic in services.items():
            base = {
                "reporter": "destination",
                "destination_service_namespace": namespace,
                "destination_service_name": service,
                "destination_workload_namespace": namespace,
                "destination_workload": "backend-green",
            }
            for code, rate in traffic.rates.items():
                requests.append(({**base, "response_code": code}, rate))
            durations.append((base, sum(traffic.rates.values()), traffic.latency_ms))
    http_counts: list[tuple[dict[str, str], float, float]] = []
    for namespace, pods in HTTP_TRAFFIC.items():
        for pod, traffic in pods.items():
            labels = {"kubernetes_namespace": namespace, "kubernetes_pod_name": pod}
            http_counts.append((labels, sum(traffic.rates.values()), traffic.latency_ms))
    lines = [
        *_counter("istio_requests", requests, times, t0),
        *_histogram("istio_request_duration_milliseconds", durations, times, t0, 1.0),
        *_histogram("http_request_duration_seconds", http_counts, times, t0, 0.001),
        *_envoy(times, t0),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    with backfilled_prometheus(openmetrics(int(time.time())), workdir) as url:
        yield url


@contextlib.contextmanager
def backfilled_prometheus(series: str, workdir: Path) -> Iterator[str]:
    """A real Prometheus whose TSDB `promtool` built from the OpenMetrics text `series`."""
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool")
    data = workdir / "data"
    data.mkdir()
    source = workdir / "series.om"
    source.write_text(series)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = _free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 30s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class FakeSources:
    """The controller's cache as the analysis sees it (our own MetricSources Protocol)."""

    templates: dict[tuple[str, str], MetricTemplate] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)

    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        return self.templates.get((namespace, name))

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes | str] | None:
        return self.secrets.get((namespace, name))

    def add_template(self, manifest: dict[str, object]) -> MetricTemplate:
        template = MetricTemplate.model_validate(manifest)
        self.templates[(template.metadata.namespace or "default", template.metadata.name or "")] = (
            template
        )
        return template


def make_canary(
    namespace: str = "test",
    metrics: Sequence[Mapping[str, Any]] | None = None,
    *,
    name: str = "podinfo",
    target_kind: str = "Deployment",
    provider: str | None = None,
    metrics_server: str | None = None,
    service_name: str | None = None,
) -> Canary:
    spec: dict[str, object] = {
        "targetRef": {
            "apiVersion": "v1" if target_kind == "Service" else "apps/v1",
            "kind": target_kind,
            "name": name,
        },
        "service": {"port": 9898, **({"name": service_name} if service_name else {})},
        "analysis": {"interval": "1m", "threshold": 5, "metrics": [dict(m) for m in metrics or []]},
    }
    if provider:
        spec["provider"] = provider
    if metrics_server:
        spec["metricsServer"] = metrics_server
    return Canary.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Start local aiohttp apps on free loopback ports; all are stopped after the test."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def fixed_clock(now: float = 1_700_000_000.0) -> Callable[[], float]:
    return lambda: now


# --- shared by the backend tests --------------------------------------------------------------

Serve = Callable[[web.Application], Awaitable[str]]
NOW = 1_700_000_000.0


def spec(**fields: Any) -> MetricTemplateProvider:
    """A MetricTemplate provider section from snake_case fields (`secret_ref` is a name)."""
    if "secret_ref" in fields:
        fields["secret_ref"] = {"name": fields["secret_ref"]}
    return MetricTemplateProvider.model_validate(fields)


def context(session: aiohttp.ClientSession, **extra: Any) -> ProviderContext:
    """Providers' shared context with the clock frozen at `NOW`."""
    return ProviderContext(session, clock=fixed_clock(NOW), **extra)
