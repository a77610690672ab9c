"""Builtin and templated PromQL against a real Prometheus backfilled with known traffic."""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
import pytest

from coalmine.analysis import AnalysisOutcome
from coalmine.analysis.builtin import render_builtin
from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.analysis.providers.base import NoValuesFound, ProviderContext
from coalmine.analysis.providers.prometheus import PrometheusProvider
from coalmine.api.models import Canary, MetricTemplateProvider

from .conftest import FakeSources, make_canary

SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}


def analyzer(
    session: aiohttp.ClientSession,
    prometheus_url: str,
    sources: FakeSources | None = None,
    recorded: list[tuple[str, str, float]] | None = None,
    mesh_provider: str = "istio",
) -> MetricAnalyzer:
    def record(canary: Canary, metric: str, value: float) -> None:
        if recorded is not None:
            recorded.append((canary.spec.target_ref.name, metric, value))

    return MetricAnalyzer(
        session,
        sources or FakeSources(),
        AnalysisSettings(metrics_server=prometheus_url, mesh_provider=mesh_provider),
        record=record,
    )


async def test_healthy_canary_passes_builtin_checks(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    recorded: list[tuple[str, str, float]] = []
    canary = make_canary("healthy", [SUCCESS, DURATION])
    outcome = await analyzer(session, prometheus_url, recorded=recorded).analyse(canary)
    assert outcome.ok, outcome.messages
    success, duration = outcome.results
    assert success.value == pytest.approx(100.0)
    # Every request took 40 ms; the P99 interpolates inside the (25, 50] bucket.
    assert duration.value is not None
    assert 25 <= duration.value <= 50
    assert [r[1] for r in recorded] == ["request-success-rate", "request-duration"]
    assert recorded[1][2] == pytest.approx(duration.value / 1000)


async def test_unhealthy_success_rate_halts_with_the_measured_value(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("unhealthy", [SUCCESS, DURATION])
    outcome: AnalysisOutcome = await analyzer(session, prometheus_url).analyse(canary)
    assert not outcome.ok
    assert len(outcome.results) == 1  # the first failure ends the cycle, like Flagger
    assert outcome.messages == ("Halt podinfo.unhealthy advancement success rate 50.00% < 99%",)
    assert outcome.results[0].severity == "warning"


async def test_slow_canary_halts_with_a_go_duration(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("unhealthy", [DURATION])
    outcome = await analyzer(session, prometheus_url).analyse(canary)
    failure = outcome.failure
    assert failure is not None
    assert failure.value is not None
    assert 1000 < failure.value <= 2500
    seconds = f"{int(failure.value) / 1000:g}s"
    assert (
        failure.message == f"Halt podinfo.unhealthy advancement request duration {seconds} > 500ms"
    )


async def test_canary_without_traffic_reads_no_values_found(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("empty", [SUCCESS])
    outcome = await analyzer(session, prometheus_url).analyse(canary)
    failure = outcome.failure
    assert failure is not None
    assert failure.severity == "warning"
    assert failure.message == (
        "Halt advancement no values found for istio metric request-success-rate probably "
        "podinfo.empty is not receiving traffic: running query failed: no values found"
    )


async def test_service_target_measures_the_canary_service_copy(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("svc", [SUCCESS], name="backend", target_kind="Service")
    outcome = await analyzer(session, prometheus_url).analyse(canary)
    assert outcome.failure is not None
    assert outcome.messages == ("Halt backend.svc advancement success rate 90.00% < 99%",)


async def test_kubernetes_provider_converts_seconds_to_milliseconds(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("plain", [DURATION], provider="kubernetes")
    outcome = await analyzer(session, prometheus_url, mesh_provider="").analyse(canary)
    assert outcome.ok, outcome.messages
    assert outcome.results[0].value is not None
    assert 100 < outcome.results[0].value <= 250


async def test_metrics_server_of_the_canary_overrides_the_global_one(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("healthy", [SUCCESS], metrics_server=prometheus_url)
    checks = MetricAnalyzer(
        session, FakeSources(), AnalysisSettings(metrics_server="http://127.0.0.1:9")
    )
    assert (await checks.analyse(canary)).ok
    assert (await checks.check_availability(canary)).ok


async def test_template_metric_renders_and_runs_against_prometheus(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    sources = FakeSources()
    sources.add_template(
        {
            "metadata": {"name": "error-rate", "namespace": "unhealthy"},
            "spec": {
                "provider": {"type": "prometheus", "address": prometheus_url},
                "query": """
                    100 - sum(
                        rate(
                            istio_requests_total{
                              reporter="{{ variables.reporter }}",
                              destination_workload_namespace="{{ namespace }}",
                              destination_workload=~"{{ target }}",
                              response_code!~"5.*"
                            }[{{ interval }}]
                        )
                    )
                    /
                    sum(
                        rate(
                            istio_requests_total{
                              reporter="{{ variables.reporter }}",
                              destination_workload_namespace="{{ namespace }}",
                              destination_workload=~"{{ target }}"
                            }[{{ interval }}]
                        )
                    ) * 100""",
            },
        }
    )
    metric = {
        "name": "error-rate",
        "templateRef": {"name": "error-rate"},
        "templateVariables": {"reporter": "destination"},
        "thresholdRange": {"max": 1},
    }
    outcome = await analyzer(session, prometheus_url, sources).analyse(
        make_canary("unhealthy", [metric])
    )
    assert outcome.messages == ("Halt podinfo.unhealthy advancement error-rate 50.00 > 1",)


async def test_inline_query_without_values_is_a_warning(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    metric = {"name": "absent", "query": 'sum(rate(nothing_here{ns="{{ namespace }}"}[1m]))'}
    outcome = await analyzer(session, prometheus_url).analyse(make_canary("healthy", [metric]))
    assert outcome.messages == ("Halt advancement no values found for metric: absent",)


async def test_builtin_queries_are_valid_promql_for_every_provider(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    """Prometheus parses every builtin query (an empty answer is fine, a parse error is not)."""
    context = ProviderContext(session)
    client = PrometheusProvider.from_spec(
        MetricTemplateProvider(type="prometheus", address=prometheus_url), {}, context
    )
    providers = [
        "istio", "linkerd", "appmesh", "contour", "gloo", "nginx", "kubernetes", "skipper",
        "traefik", "osm", "kuma", "apisix", "knative", "gatewayapi:v1", "smi:v1alpha3",
    ]  # fmt: skip
    for provider in providers:
        for kind in ("Deployment", "Service"):
            if (provider, kind) == ("kubernetes", "Service"):
                continue  # no builtin query isolates it (tests/analysis/test_service_queries_real)
            canary = make_canary("healthy", provider=provider, target_kind=kind)
            for metric in ("request-success-rate", "request-duration"):
                query = render_builtin(canary, metric, "1m")
                with contextlib.suppress(NoValuesFound):
                    await client.run_query(query)


@pytest.mark.parametrize("provider", ["appmesh", "appmesh:v1beta2"])
async def test_app_mesh_builtin_checks_read_the_canary_pods_envoy_metrics(
    session: aiohttp.ClientSession, prometheus_url: str, provider: str
) -> None:
    """Envoy's `envoy_cluster_upstream_rq` (non-5xx by `envoy_response_code`) and the P99 of
    `envoy_cluster_upstream_rq_time_bucket` in ms, of the canary's pods only."""
    canary = make_canary("meshed", [SUCCESS, DURATION], provider=provider)
    outcome = await analyzer(session, prometheus_url).analyse(canary)
    assert outcome.messages == ("Halt podinfo.meshed advancement success rate 90.00% < 99%",)
    passing = {**SUCCESS, "thresholdRange": {"min": 85}}
    outcome = await analyzer(session, prometheus_url).analyse(
        make_canary("meshed", [passing, DURATION], provider=provider)
    )
    assert outcome.ok, outcome.messages
    duration = outcome.results[1].value
    assert duration is not None
    assert 25 <= duration <= 50


async def test_prometheus_is_online_and_unreachable_one_is_not(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    canary = make_canary("healthy", [SUCCESS])
    assert (await analyzer(session, prometheus_url).check_availability(canary)).ok
    down = analyzer(session, "http://127.0.0.1:9")
    outcome = await down.check_availability(canary)
    assert not outcome.ok
    assert outcome.message.startswith("prometheus not avaiable: request to http://127.0.0.1:9")


def knative_canary(metrics: list[dict[str, Any]]) -> Canary:
    target = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "knative"},
            "spec": {
                "provider": "knative",
                "targetRef": target,
                "analysis": {"interval": "1m", "threshold": 5, "metrics": metrics},
            },
        }
    )


async def test_the_knative_observer_measures_the_revision_under_test(
    session: aiohttp.ClientSession, prometheus_url: str
) -> None:
    """`route` is the latest created revision (the scheduler passes the target's); the primary
    revision's healthy series must not leak into the canary's numbers."""
    canary = knative_canary([SUCCESS, DURATION])
    latest = await analyzer(session, prometheus_url).analyse(canary, route="podinfo-00002")
    assert latest.messages == ("Halt podinfo.knative advancement success rate 50.00% < 99%",)
    primary = await analyzer(session, prometheus_url).analyse(canary, route="podinfo-00001")
    assert primary.ok, primary.messages
    success, duration = primary.results
    assert success.value == pytest.approx(100.0)
    assert duration.value is not None
    assert 25 <= duration.value <= 50
