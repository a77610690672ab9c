"""The check runner: Flagger's thresholds, messages, order, template resolution and availability,
against a scripted Prometheus-compatible server (PromQL itself is covered with a real Prometheus)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coalmine.analysis import Analyzer
from coalmine.analysis.builtin import observer_key, render_builtin
from coalmine.analysis.checks import (
    NO_USABLE_METRIC,
    AnalysisSettings,
    MetricAnalyzer,
    go_duration,
)
from coalmine.api.models import Canary

from .conftest import FakeSources, make_canary

Serve = Callable[[web.Application], Awaitable[str]]


class ScriptedPrometheus:
    """Answers queries by the first matching pattern; records every query it was sent."""

    def __init__(self, answers: dict[str, float | int | None]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        self.queries.append(query)
        if query == "vector(1)":
            return self.vector(1)
        for pattern, value in self.answers.items():
            if re.search(pattern, query):
                if value == 500:
                    return web.Response(status=500, text="boom")
                return self.vector(value)
        return self.vector(None)

    @staticmethod
    def vector(value: float | int | None) -> web.Response:
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )


@pytest.fixture
async def prometheus(serve: Serve) -> tuple[ScriptedPrometheus, str]:
    scripted = ScriptedPrometheus({})
    app = web.Application()
    app.router.add_get("/api/v1/query", scripted.handle)
    return scripted, await serve(app)


def make_analyzer(
    session: aiohttp.ClientSession,
    url: str,
    sources: FakeSources | None = None,
    recorded: list[tuple[str, float]] | None = None,
    mesh_provider: str = "istio",
) -> MetricAnalyzer:
    def record(canary: Canary, metric: str, value: float) -> None:
        if recorded is not None:
            recorded.append((metric, value))

    return MetricAnalyzer(
        session,
        sources or FakeSources(),
        AnalysisSettings(metrics_server=url, mesh_provider=mesh_provider),
        record=record,
    )


def prom_template(
    sources: FakeSources, url: str, name: str, query: str, namespace: str = "test"
) -> None:
    sources.add_template(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus", "address": url}, "query": query},
        }
    )


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (0, "0s"),
        (500, "500ms"),
        (1200, "1.2s"),
        (61500, "1m1.5s"),
        (3_600_000, "1h0m0s"),
        (1001, "1.001s"),
    ],
)
def test_durations_print_like_go(milliseconds: int, text: str) -> None:
    assert go_duration(milliseconds) == text


def test_the_analyzer_satisfies_the_scheduler_protocol(session: aiohttp.ClientSession) -> None:
    analyzer: Analyzer = MetricAnalyzer(session, FakeSources())
    assert callable(analyzer.analyse)


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        (
            {"name": "request-success-rate", "threshold": 99},
            98.0,
            "Halt podinfo.test advancement success rate 98.00% < 99%",
        ),
        ({"name": "request-success-rate"}, 12.0, ""),  # no threshold: always passes
        (
            {"name": "request-success-rate", "thresholdRange": {"min": 99.5}},
            99.25,
            "Halt podinfo.test advancement success rate 99.25% < 99.5%",
        ),
        (
            {"name": "request-success-rate", "thresholdRange": {"max": 50}},
            75.0,
            "Halt podinfo.test advancement success rate 75.00% > 50%",
        ),
        (
            {"name": "request-duration", "threshold": 500},
            1200.7,
            "Halt podinfo.test advancement request duration 1.2s > 500ms",
        ),
        (
            {"name": "request-duration"},
            10.0,
            "Halt podinfo.test advancement request duration 10ms > 0s",
        ),
        (
            {"name": "request-duration", "thresholdRange": {"min": 20}},
            10.0,
            "Halt podinfo.test advancement request duration 10ms < 20ms",
        ),
        ({"name": "request-duration", "thresholdRange": {"max": 500}}, 499.9, ""),
        ({"name": "custom", "query": "up"}, 3.0, "Halt podinfo.test advancement custom 3.00 > 0"),
        ({"name": "custom", "query": "up", "threshold": 5}, 3.0, ""),
        (
            {"name": "custom", "query": "up", "thresholdRange": {"min": 5}},
            3.0,
            "Halt podinfo.test advancement custom 3.00 < 5",
        ),
    ],
)
async def test_thresholds_follow_flagger(
    session: aiohttp.ClientSession,
    prometheus: tuple[ScriptedPrometheus, str],
    metric: dict[str, Any],
    value: float,
    message: str,
) -> None:
    scripted, url = prometheus
    scripted.answers = {".": value}
    outcome = await make_analyzer(session, url).analyse(make_canary("test", [metric]))
    assert outcome.ok == (message == "")
    assert outcome.messages == ((message,) if message else ())
    if message:
        assert outcome.results[0].severity == "warning"


async def test_builtin_values_are_recorded_duration_in_seconds(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"istio_request_duration": 250, "istio_requests_total": 99.9}
    recorded: list[tuple[str, float]] = []
    canary = make_canary(
        "test",
        [
            {"name": "request-success-rate", "threshold": 99},
            {"name": "request-duration", "threshold": 500},
        ],
    )
    outcome = await make_analyzer(session, url, recorded=recorded).analyse(canary)
    assert outcome.ok
    assert recorded == [("request-success-rate", 99.9), ("request-duration", 0.25)]


async def test_checks_run_in_flagger_order_and_stop_at_the_first_failure(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"tmpl_metric": 1, "inline_metric": 7, "istio_requests_total": 100}
    sources = FakeSources()
    prom_template(sources, url, "tmpl", "tmpl_metric")
    metrics = [
        {"name": "from-template", "templateRef": {"name": "tmpl"}, "threshold": 5},
        {"name": "inline", "query": "inline_metric", "threshold": 5},
        {"name": "request-success-rate", "threshold": 99},
    ]
    outcome = await make_analyzer(session, url, sources).analyse(make_canary("test", metrics))
    # builtin and inline first (spec order), then templates; the inline failure ends the cycle.
    assert [r.name for r in outcome.results] == ["inline"]
    assert outcome.messages == ("Halt podinfo.test advancement inline 7.00 > 5",)
    assert not any("tmpl_metric" in q for q in scripted.queries)


async def test_template_variables_and_model_are_rendered(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"custom_metric": 1}
    sources = FakeSources()
    prom_template(
        sources,
        url,
        "custom",
        'custom_metric{ns="{{ namespace }}",dir="{{ variables.direction }}"}[{{ interval }}]',
        "shared",
    )
    metric = {
        "name": "custom",
        "templateRef": {"name": "custom", "namespace": "shared"},
        "templateVariables": {"direction": "inbound"},
        "thresholdRange": {"max": 2},
    }
    outcome = await make_analyzer(session, url, sources).analyse(make_canary("test", [metric]))
    assert outcome.ok
    # A template metric without interval uses 1m (docs/decisions.md, 'Metric interval and empty
    # results').
    assert scripted.queries == ['custom_metric{ns="test",dir="inbound"}[1m]']


@pytest.mark.parametrize(
    ("setup", "metric", "message", "severity"),
    [
        (
            "none",
            {"name": "m", "templateRef": {"name": "missing"}},
            'Metric template missing.test error: metrictemplate.flagger.app "missing" not found',
            "error",
        ),
        (
            "secret",
            {"name": "m", "templateRef": {"name": "with-secret"}},
            'Metric template with-secret.test secret prom-auth error: secrets "prom-auth" not found',
            "error",
        ),
        (
            "cloudwatch",
            {"name": "m", "templateRef": {"name": "cw"}},
            "Metric template cw.test provider cloudwatch error: region not specified",
            "error",
        ),
        (
            "render",
            {"name": "m", "templateRef": {"name": "bad-query"}},
            'Metric template bad-query.test query render error: template: bad-query.test:1:3: executing "bad-query.test" at <variables.nope>: map has no entry for key "nope"',
            "error",
        ),
        (
            "fails",
            {"name": "m", "templateRef": {"name": "fails"}},
            "Metric query failed for m: error response: Status 500 Internal Server Error: boom",
            "error",
        ),
        (
            "empty",
            {"name": "m", "templateRef": {"name": "empty"}},
            "Halt advancement no values found for custom metric: m: no values found",
            "warning",
        ),
        ("none", {"name": "undefined-metric"}, NO_USABLE_METRIC, "error"),
    ],
)
async def test_template_metric_failures_carry_flagger_messages(
    session: aiohttp.ClientSession,
    prometheus: tuple[ScriptedPrometheus, str],
    setup: str,
    metric: dict[str, Any],
    message: str,
    severity: str,
) -> None:
    scripted, url = prometheus
    scripted.answers = {"failing_metric": 500}
    sources = FakeSources()
    sources.add_template(
        {
            "metadata": {"name": "with-secret", "namespace": "test"},
            "spec": {
                "provider": {
                    "type": "prometheus",
                    "address": url,
                    "secretRef": {"name": "prom-auth"},
                },
                "query": "x",
            },
        }
    )
    sources.add_template(
        {
            "metadata": {"name": "cw", "namespace": "test"},
            "spec": {"provider": {"type": "cloudwatch"}, "query": "[]"},
        }
    )
    prom_template(sources, url, "bad-query", "{{ variables.nope }}")
    prom_template(sources, url, "fails", "failing_metric")
    prom_template(sources, url, "empty", "absent_metric")
    outcome = await make_analyzer(session, url, sources).analyse(make_canary("test", [metric]))
    assert not outcome.ok
    assert outcome.messages == (message,)
    assert outcome.results[0].severity == severity


async def test_builtin_named_metric_with_template_runs_only_the_template(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"strict_success": 99.9}
    sources = FakeSources()
    prom_template(sources, url, "strict", "strict_success")
    metric = {
        "name": "request-success-rate",
        "templateRef": {"name": "strict"},
        "thresholdRange": {"min": 99},
    }
    outcome = await make_analyzer(session, url, sources).analyse(make_canary("test", [metric]))
    assert outcome.ok
    assert scripted.queries == ["strict_success"]


async def test_metric_with_query_and_template_runs_both(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"inline_q": 1, "tmpl_q": 1}
    sources = FakeSources()
    prom_template(sources, url, "t", "tmpl_q")
    metric = {
        "name": "both",
        "query": "inline_q",
        "templateRef": {"name": "t"},
        "thresholdRange": {"max": 2},
    }
    outcome = await make_analyzer(session, url, sources).analyse(make_canary("test", [metric]))
    assert outcome.ok
    assert scripted.queries == ["inline_q", "tmpl_q"]


async def test_builtin_errors_and_unknown_providers(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    scripted, url = prometheus
    scripted.answers = {"istio_request_duration": None, "istio_requests_total": 500}
    canary = make_canary("test", [{"name": "request-duration", "threshold": 500}])
    outcome = await make_analyzer(session, url).analyse(canary)
    assert outcome.messages == (
        "Halt advancement no values found for istio metric request-duration probably podinfo.test is not receiving traffic",
    )
    canary = make_canary("test", [{"name": "request-success-rate", "threshold": 99}])
    outcome = await make_analyzer(session, url).analyse(canary)
    assert outcome.messages == (
        "Prometheus query failed: running query failed: error response: Status 500 Internal Server Error: boom",
    )
    outcome = await make_analyzer(session, url, mesh_provider="mystery").analyse(canary)
    assert outcome.messages == (
        "Prometheus query failed: no builtin metrics for provider 'mystery'; use a MetricTemplate (templateRef) instead",
    )


def test_service_targets_keep_their_providers_own_queries() -> None:
    for provider, marker in [
        ("nginx", "nginx_ingress_controller_requests"),
        ("linkerd", 'dst_service=~"podinfo-canary"'),
        ("contour", "envoy_cluster_name"),
        ("istio", 'destination_service_name=~"podinfo-canary"'),
    ]:
        canary = make_canary("test", provider=provider, target_kind="Service")
        assert marker in render_builtin(canary, "request-success-rate")
    # The global Linkerd mesh forces Linkerd queries, as in Flagger.
    canary = make_canary("test", provider="kubernetes")
    assert "response_total" in render_builtin(
        canary, "request-success-rate", mesh_provider="linkerd"
    )


async def test_availability_check(
    session: aiohttp.ClientSession, prometheus: tuple[ScriptedPrometheus, str]
) -> None:
    _scripted, url = prometheus
    sources = FakeSources()
    prom_template(sources, url, "here", "x")
    prom_template(sources, "http://127.0.0.1:9", "down", "x")
    analyzer = make_analyzer(session, url, sources)
    ok = await analyzer.check_availability(
        make_canary(
            "test",
            [{"name": "request-success-rate"}, {"name": "m", "templateRef": {"name": "here"}}],
        )
    )
    assert ok.ok
    assert ok.message == "all the metrics providers are available!"
    missing = await analyzer.check_availability(
        make_canary("test", [{"name": "m", "templateRef": {"name": "gone"}}])
    )
    assert (
        missing.message
        == 'metric template gone.test error: metrictemplate.flagger.app "gone" not found'
    )
    down = await analyzer.check_availability(
        make_canary("test", [{"name": "m", "templateRef": {"name": "down"}}])
    )
    assert not down.ok
    assert down.message.startswith(
        "prometheus in metric template down.test not avaiable: request to http://127.0.0.1:9"
    )
    # An empty templateRef namespace resolves in the canary's namespace.
    other = await analyzer.check_availability(
        make_canary("elsewhere", [{"name": "m", "templateRef": {"name": "here"}}])
    )
    assert (
        other.message
        == 'metric template here.elsewhere error: metrictemplate.flagger.app "here" not found'
    )


async def test_a_surprising_backend_answer_fails_the_check_instead_of_the_controller(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        return web.json_response({"series": ["not-an-object"]})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    url = await serve(app)
    sources = FakeSources()
    sources.add_template(
        {
            "metadata": {"name": "dd", "namespace": "test"},
            "spec": {
                "provider": {"type": "datadog", "address": url, "secretRef": {"name": "dd"}},
                "query": "q",
            },
        }
    )
    sources.secrets[("test", "dd")] = {"datadog_api_key": b"a", "datadog_application_key": b"b"}
    outcome = await make_analyzer(session, url, sources).analyse(
        make_canary("test", [{"name": "m", "templateRef": {"name": "dd"}}])
    )
    assert outcome.messages == (
        "Metric query failed for m: unexpected AttributeError: 'str' object has no attribute 'get'",
    )
    assert outcome.results[0].severity == "error"


@pytest.mark.parametrize(
    ("mesh", "provider", "kind", "key"),
    [
        ("istio", None, "Deployment", "istio"),
        ("istio", "nginx", "Deployment", "nginx"),
        ("linkerd", "nginx", "Deployment", "linkerd"),
        ("smi:crossover", None, "Deployment", "crossover"),
        ("", "contour", "Service", "contour:service"),
        ("", None, "Deployment", ""),
    ],
)
def test_observer_key_follows_flagger(mesh: str, provider: str | None, kind: str, key: str) -> None:
    canary = make_canary("test", provider=provider, target_kind=kind)
    assert observer_key(canary, mesh) == key
