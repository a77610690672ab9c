"""Builtin checks of Service targets measure the `<service>-canary` copy, for every provider that
can route one, against a real Prometheus fed series named as each mesh, gateway and ingress
reports them.

Target `backend` with `spec.service.name: web` in namespace `svc`: the copies are `web-primary`
and `web-canary`. The canary copy answers 9 of 10 requests (90%) in 80 ms; the primary copy answers
all of them in 30 ms at a much higher rate, so a query that also read the primary would not see
exactly 90%. The pods behind both copies are named after their own workloads
(`backend-green-…`, `backend-blue-…`), never after the target.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from coalmine.analysis.builtin import BuiltinQueryError, render_builtin
from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.api.models import Canary
from coalmine.targets.service_coverage import builtin_checks_reason

from .conftest import (
    SPAN_SECONDS,
    STEP_SECONDS,
    FakeSources,
    Traffic,
    _histogram,
    _labels,
    backfilled_prometheus,
    make_canary,
)

NS = "svc"
CONTOUR_ONLY_NS = "gw"
CANARY_TRAFFIC = Traffic({"200": 9.0, "500": 1.0}, latency_ms=80)
PRIMARY_TRAFFIC = Traffic({"200": 40.0}, latency_ms=30)
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}


def _untyped(name: str, series: list[tuple[dict[str, str], float]], times: list[int], t0: int):
    """Counters as Envoy and ingress-nginx expose them (no `_total` suffix): OpenMetrics
    `unknown`, so the name is kept as it is."""
    lines = [f"# TYPE {name} unknown"]
    for labels, rate in series:
        lines += [f"{name}{_labels(labels)} {rate * (t - t0):.3f} {t}" for t in times]
    return lines


COPIES = (("web-canary", CANARY_TRAFFIC), ("web-primary", PRIMARY_TRAFFIC))
PODS = {"web-canary": "backend-green-5d8f7-x2x9q", "web-primary": "backend-blue-7c9b4-k2l8m"}


def _istio(reporter: str) -> Iterator[tuple[Traffic, dict[str, str]]]:
    for copy, traffic in COPIES:
        yield (
            traffic,
            {
                "reporter": reporter,
                "destination_service_namespace": NS,
                "destination_service_name": copy,
                "destination_workload": PODS[copy].rsplit("-", 2)[0],
                "destination_workload_namespace": NS,
            },
        )


def series(now: int) -> str:
    """Every implementation's series for the two copies, on one time grid."""
    t0 = now - SPAN_SECONDS
    times = list(range(t0, now + SPAN_SECONDS + 1, STEP_SECONDS))
    istio_requests, istio_durations = [], []
    for reporter in ("destination", "source"):  # sidecars, and a gateway reporting as source
        for traffic, labels in _istio(reporter):
            for code, rate in traffic.rates.items():
                istio_requests.append(({**labels, "response_code": code}, rate))
            istio_durations.append((labels, sum(traffic.rates.values()), traffic.latency_ms))
    linkerd_requests, linkerd_latency = [], []
    envoy_requests, envoy_time = [], []
    nginx_requests, nginx_duration = [], []
    traefik = []
    for copy, traffic in COPIES:
        total = sum(traffic.rates.values())
        linkerd = {
            "direction": "outbound",
            "dst_namespace": NS,
            "dst_service": copy,
            "authority": f"web.{NS}.svc.cluster.local:9898",
            "dst_pod": PODS[copy],
        }
        for code, rate in traffic.rates.items():
            outcome = "failure" if code.startswith("5") else "success"
            linkerd_requests.append(
                ({**linkerd, "status_code": code, "classification": outcome}, rate)
            )
        linkerd_latency.append((linkerd, total, traffic.latency_ms))
        # OSM sidecars (`ns/svc|port`) and Contour, also as a Gateway API implementation
        # (alt_stat_name `ns_svc_port`).
        # In namespace `gw` only a Contour gateway reports: the query's second branch answers.
        # Gloo's gateway names a cluster `<upstream>_<upstream namespace>` after the generated
        # upstream; Kuma's sidecars label the series with the `kuma.io/service` tag.
        upstream = f"{NS}-{copy}upstream-9898"  # svc-web-canaryupstream-9898
        clusters = [
            {"envoy_cluster_name": f"{NS}/{copy}|9898"},
            {"envoy_cluster_name": f"{NS}_{copy}_9898"},
            {"envoy_cluster_name": f"{CONTOUR_ONLY_NS}_{copy}_9898"},
            {"envoy_cluster_name": f"{upstream}_gloo-system"},
            {"service": f"{copy}_{NS}_svc_9898", "envoy_cluster_name": "localhost_9898"},
        ]
        for cluster in clusters:
            for code, rate in traffic.rates.items():
                envoy_requests.append(({**cluster, "envoy_response_code": code}, rate))
            envoy_time.append((cluster, total, traffic.latency_ms))
        nginx = {"namespace": NS, "ingress": "web", "service": copy, "canary": ""}
        if copy == "web-canary":
            nginx = {**nginx, "ingress": "web-canary", "canary": f"{NS}-{copy}-9898"}
        for code, rate in traffic.rates.items():
            nginx_requests.append(({**nginx, "status": code}, rate))
        nginx_duration.append((nginx, total, traffic.latency_ms))
        for code, rate in traffic.rates.items():
            labels = {"service": f"{NS}-{copy}-9898@kubernetescrd", "code": code}
            traefik.append((labels, rate, traffic.latency_ms))
    lines = [
        *_untyped("istio_requests_total", istio_requests, times, t0),
        *_histogram("istio_request_duration_milliseconds", istio_durations, times, t0, 1.0),
        *_untyped("response_total", linkerd_requests, times, t0),
        *_histogram("response_latency_ms", linkerd_latency, times, t0, 1.0),
        *_untyped("envoy_cluster_upstream_rq", envoy_requests, times, t0),
        *_histogram("envoy_cluster_upstream_rq_time", envoy_time, times, t0, 1.0),
        *_untyped("nginx_ingress_controller_requests", nginx_requests, times, t0),
        *_histogram(
            "nginx_ingress_controller_response_duration_seconds", nginx_duration, times, t0, 0.001
        ),
        *_histogram("traefik_service_request_duration_seconds", traefik, times, t0, 0.001),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("service-queries")
    with backfilled_prometheus(series(int(time.time())), workdir) as url:
        yield url


def service_canary(provider: str, metrics: list[dict[str, object]], namespace: str = NS) -> Canary:
    return make_canary(
        namespace,
        metrics,
        name="backend",
        target_kind="Service",
        provider=provider,
        service_name="web",
    )


ROUTING_PROVIDERS = (
    "istio",
    "linkerd",
    "osm",
    "smi:v1alpha3",
    "gatewayapi:v1",
    "contour",
    "nginx",
    "traefik",
    "gloo",
    "kuma",
)


@pytest.mark.parametrize("provider", ROUTING_PROVIDERS)
async def test_builtin_checks_of_a_service_target_measure_only_the_canary_copy(
    session: aiohttp.ClientSession, prometheus: str, provider: str
) -> None:
    canary = service_canary(provider, [SUCCESS, DURATION])
    assert "web-canary" in render_builtin(canary, "request-success-rate")
    analyzer = MetricAnalyzer(
        session, FakeSources(), AnalysisSettings(metrics_server=prometheus, mesh_provider="")
    )
    outcome = await analyzer.analyse(canary)
    # 90% is the canary copy alone; with the primary's 40 healthy requests a second it would
    # read 98%, and an empty answer would be "no values found".
    assert outcome.messages == (f"Halt backend.{NS} advancement success rate 90.00% < 99%",)
    (success,) = outcome.results
    assert success.value == pytest.approx(90.0)

    duration_only = service_canary(provider, [DURATION])
    outcome = await analyzer.analyse(duration_only)
    assert outcome.ok, outcome.messages
    (duration,) = outcome.results
    # Every canary request took 80 ms (NGINX reports the mean, the others the P99 inside the
    # (50, 100] bucket); the primary's 30 ms would pull a mixed reading under 50.
    assert duration.value is not None
    assert 50 < duration.value <= 100


async def test_gateway_api_reads_a_contour_gateway_where_no_istio_gateway_reports(
    session: aiohttp.ClientSession, prometheus: str
) -> None:
    canary = service_canary("gatewayapi:v1", [SUCCESS], CONTOUR_ONLY_NS)
    analyzer = MetricAnalyzer(
        session, FakeSources(), AnalysisSettings(metrics_server=prometheus, mesh_provider="")
    )
    outcome = await analyzer.analyse(canary)
    assert outcome.messages == (
        f"Halt backend.{CONTOUR_ONLY_NS} advancement success rate 90.00% < 99%",
    )


def test_provider_kubernetes_has_no_builtin_query_for_a_service_target() -> None:
    canary = service_canary("kubernetes", [SUCCESS])
    with pytest.raises(BuiltinQueryError, match=r"templateRef"):
        render_builtin(canary, "request-success-rate")
    assert "templateRef" in builtin_checks_reason(canary, None)
    template = {"name": "request-success-rate", "templateRef": {"name": "mine"}}
    assert builtin_checks_reason(service_canary("kubernetes", [template]), None) == ""
