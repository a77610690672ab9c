"""Range queries of every backend that has them (issue 19), each against a local HTTP server
speaking that backend's range format: the server holds a series from 20 minutes before NOW to
NOW and answers only the samples inside the window asked for, so a provider that asks the wrong
window, or drops or reorders samples, fails. Backends without range queries fail with the one
sentence `coalmine check` also prints."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from coalmine.analysis.judging import aggregated_value, range_samples
from coalmine.analysis.providers import ProviderError, provider_for
from coalmine.analysis.providers.base import range_capable
from coalmine.analysis.providers.registry import registered_types
from coalmine.api.metric_providers import RANGE_QUERY_PROVIDERS, range_query_refusal
from coalmine.api.models import CanaryMetric
from coalmine.cli.check import check_stream

from .cloud_fakes import verify_sigv4
from .conftest import NOW, Serve, context, spec

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
START, END, STEP = NOW - 300, NOW, 60.0
# (unix seconds, value): one sample a minute over 20 minutes, a gap (None) at NOW - 180
SERIES = [(NOW - 1200 + 60 * i, 0.1 + 0.01 * i) for i in range(21)]
SERIES = [(t, None if t == NOW - 180 else v) for t, v in SERIES]
INSIDE = [v for t, v in SERIES if START <= t <= END]


def expected() -> list[float]:
    return [math.nan if v is None else v for v in INSIDE]


def same(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(
        (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)
        for a, b in zip(got, want, strict=True)
    )


def window(start: float, end: float) -> list[tuple[float, float | None]]:
    return [(t, v) for t, v in SERIES if start <= t <= end]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def run(
    serve: Serve,
    session: aiohttp.ClientSession,
    *routes: tuple[str, str, Handler],
    spec_fields: dict[str, Any],
    credentials: dict[str, bytes] | None = None,
) -> Any:
    """The provider of `spec_fields`, pointed at a local server answering these routes."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    url = await serve(app)
    return provider_for(spec(address=url, **spec_fields), credentials or {}, context(session))


async def test_datadog_range_reads_every_point_of_the_window(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        assert request.headers["DD-API-KEY"] == "api"
        start, end = float(request.query["from"]), float(request.query["to"])
        points = [[t * 1000, v] for t, v in window(start, end)]
        return web.json_response({"status": "ok", "series": [{"pointlist": points}]})

    provider = await run(
        serve,
        session,
        ("GET", "/api/v1/query", query),
        spec_fields={"type": "datadog", "secret_ref": "dd"},
        credentials={"datadog_api_key": b"api", "datadog_application_key": b"app"},
    )
    assert same(await provider.run_range_query("avg:latency{*}", START, END, STEP), expected())


async def test_graphite_range_replaces_the_querys_window(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def render(request: web.Request) -> web.Response:
        assert request.query["target"] == "sumSeries(app.latency)"
        assert request.query.getall("from") == [str(int(START))]
        start, end = float(request.query["from"]), float(request.query["until"])
        points = [[v, t] for t, v in window(start, end)]
        return web.json_response([{"target": "x", "datapoints": points}])

    provider = await run(
        serve, session, ("GET", "/render", render), spec_fields={"type": "graphite"}
    )
    query = "target=sumSeries(app.latency)\n  &from=-5min"
    assert same(await provider.run_range_query(query, START, END, STEP), expected())


async def test_dynatrace_range_asks_the_window_in_milliseconds_at_minute_resolution(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def metrics(request: web.Request) -> web.Response:
        assert request.query["resolution"] == "1m"
        start, end = int(request.query["from"]) / 1000, int(request.query["to"]) / 1000
        inside = window(start, end)
        data = [{"timestamps": [t * 1000 for t, _ in inside], "values": [v for _, v in inside]}]
        return web.json_response({"result": [{"metricId": "m", "data": data}]})

    provider = await run(
        serve,
        session,
        ("GET", "/api/v2/metrics/query", metrics),
        spec_fields={"type": "dynatrace", "secret_ref": "dt"},
        credentials={"dynatrace_token": b"t"},
    )
    assert same(await provider.run_range_query("builtin:x", START, END, STEP), expected())


async def test_newrelic_range_runs_a_timeseries_nrql(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []

    async def nrql(request: web.Request) -> web.Response:
        text = request.query["nrql"]
        seen.append(text)
        words = text.split()
        start = int(words[words.index("SINCE") + 1]) / 1000
        end = int(words[words.index("UNTIL") + 1]) / 1000
        buckets = [
            {"beginTimeSeconds": t, "endTimeSeconds": t + 60, "results": [{"average": v}]}
            for t, v in window(start, end)
        ]
        return web.json_response({"timeSeries": buckets})

    provider = await run(
        serve,
        session,
        ("GET", "/v1/accounts/{account}/query", nrql),
        spec_fields={"type": "newrelic", "secret_ref": "nr"},
        credentials={"newrelic_account_id": b"1", "newrelic_query_key": b"k"},
    )
    query = "SELECT average(duration) FROM Transaction"
    assert same(await provider.run_range_query(query, START, END, STEP), expected())
    assert seen[0].endswith("TIMESERIES 60 seconds")


async def test_cloudwatch_range_signs_get_metric_data_over_the_window(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def api(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_sigv4(request, body, AWS_SECRET):
            return web.json_response({"__type": "SignatureDoesNotMatch"}, status=403)
        payload = json.loads(body)
        assert payload["ScanBy"] == "TimestampAscending"
        inside = [v for _, v in window(payload["StartTime"], payload["EndTime"]) if v is not None]
        results = [
            {"Id": "m1", "Values": [1e9], "ReturnData": False},
            {"Id": "e1", "Values": inside},
        ]
        return web.json_response({"MetricDataResults": results})

    provider = await run(
        serve,
        session,
        ("POST", "/", api),
        spec_fields={"type": "cloudwatch", "region": "eu-west-1", "secret_ref": "aws"},
        credentials={
            "aws_access_key_id": b"AKIDEXAMPLE",
            "aws_secret_access_key": AWS_SECRET.encode(),
        },
    )
    query = '[{"Id": "e1", "Expression": "m1 / 2"}]'
    # CloudWatch leaves gaps out instead of answering null
    want = [v for v in INSIDE if v is not None]
    assert same(await provider.run_range_query(query, START, END, STEP), want)


async def test_influxdb_range_binds_the_window_as_flux_params(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        payload = await request.json()
        params = payload["params"]
        assert params["every"] == "60s"
        start = datetime.strptime(params["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        stop = datetime.strptime(params["stop"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        rows = ["#datatype,string,long,double", ",result,table,_value"]
        for _, v in window(start.timestamp(), stop.timestamp()):
            rows.append(f",_result,0,{'' if v is None else v}")
        return web.Response(text="\r\n".join(rows) + "\r\n", content_type="text/csv")

    provider = await run(
        serve, session, ("POST", "/api/v2/query", query), spec_fields={"type": "influxdb"}
    )
    flux = 'from(bucket: "b") |> range(start: time(v: params.start), stop: time(v: params.stop))'
    assert same(await provider.run_range_query(flux, START, END, STEP), expected())


async def test_splunk_range_executes_signalflow_with_a_resolution(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def execute(request: web.Request) -> web.Response:
        assert request.query["resolution"] == "60000"
        start, stop = int(request.query["start"]) / 1000, int(request.query["stop"]) / 1000
        events = [("control-message", {"event": "STREAM_START"})]
        for t, v in window(start, stop):
            events.append(("data", {"data": [{"tsId": "A", "value": v}], "logicalTimestampMs": t}))
        body = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
        return web.Response(text=body, content_type="text/event-stream")

    provider = await run(
        serve,
        session,
        ("POST", "/v2/signalflow/execute", execute),
        spec_fields={"type": "splunk", "secret_ref": "sf"},
        credentials={"sf_token_key": b"sf"},
    )
    program = "data('latency').mean().publish()"
    assert same(await provider.run_range_query(program, START, END, STEP), expected())


async def test_stackdriver_range_appends_every_and_within_to_the_mql(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "ya29", "expires_in": 3600, "token_type": "B"})

    async def query(request: web.Request) -> web.Response:
        mql = (await request.json())["query"]
        head, _, within = mql.rpartition("| within ")
        assert head.endswith("| every 60s ")
        bounds = [
            datetime.strptime(part.strip().strip("d'"), "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
            for part in within.split(",")
        ]
        inside = window(bounds[0].timestamp(), bounds[1].timestamp())
        points = [{"values": [{"doubleValue": v}]} for _, v in reversed(inside)]  # newest first
        return web.json_response({"timeSeriesData": [{"pointData": points}]})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/v3/projects/{project}/timeSeries:query", query)
    url = await serve(app)
    account = {
        "type": "service_account",
        "client_email": "c@p.iam.gserviceaccount.com",
        "private_key_id": "k",
        "private_key": pem,
        "token_uri": f"{url}/token",
    }
    provider = provider_for(
        spec(type="stackdriver", address=url, secret_ref="gcp"),
        {"project": b"p", "serviceAccountKey": json.dumps(account).encode()},
        context(session),
    )
    mql = "fetch k8s_container | metric 'latency'"
    assert same(await provider.run_range_query(mql, START, END, STEP), expected())


def test_the_range_table_names_exactly_the_backends_that_implement_range_queries() -> None:
    capable = set()
    for name, factory in _factories().items():
        if callable(getattr(factory, "run_range_query", None)) or name == "prometheus":
            capable.add(name)
    assert capable == set(RANGE_QUERY_PROVIDERS)
    assert set(registered_types()) - capable == {"externalmetrics", "keptn", "http"}


def _factories() -> dict[str, Callable[..., Any]]:
    from coalmine.analysis.providers.base import registered_factories

    return dict(registered_factories())


async def test_aggregate_reads_a_range_from_a_non_prometheus_backend(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def render(request: web.Request) -> web.Response:
        start, end = float(request.query["from"]), float(request.query["until"])
        return web.json_response(
            [{"target": "x", "datapoints": [[v, t] for t, v in window(start, end)]}]
        )

    provider = await run(
        serve, session, ("GET", "/render", render), spec_fields={"type": "graphite"}
    )
    metric = CanaryMetric.model_validate({"name": "latency", "aggregate": "max"})
    value = await aggregated_value(provider, "target=app.latency", metric, "5m", NOW)
    assert value == pytest.approx(max(v for v in INSIDE if v is not None))


@pytest.mark.parametrize("kind", ["keptn", "externalmetrics", "http"])
async def test_a_backend_without_range_queries_is_named_in_the_error(
    kind: str, session: aiohttp.ClientSession
) -> None:
    fields: dict[str, Any] = {"type": kind, "address": "http://127.0.0.1:9"}
    credentials = {"x-token": b"t"} if kind == "keptn" else {}
    if kind == "keptn":
        fields["secret_ref"] = "keptn"
    cluster = context(session, kube_api="https://127.0.0.1:9", kube_token="t")
    provider = provider_for(spec(**fields), credentials, cluster)
    assert range_capable(provider) is None
    with pytest.raises(ProviderError) as caught:
        await range_samples(provider, "q", "1m", None, NOW)
    assert str(caught.value) == range_query_refusal(kind)


def test_check_says_what_the_controller_says_of_a_judged_metric_on_such_a_backend() -> None:
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "keptn-latency", "namespace": "test"},
        "spec": {"provider": {"type": "keptn"}, "query": "keptn-metric/test/latency"},
    }
    metric = {
        "name": "latency",
        "templateRef": {"name": "keptn-latency"},
        "judge": {"direction": "increase"},
    }
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "metrics": [metric]},
        },
    }
    text = yaml.safe_dump_all([canary, template])
    result = check_stream(text, "release.yaml", _options())
    errors = [f for f in result.findings if f.severity == "error"]
    assert [(f.path, f.message) for f in errors] == [
        ("spec.analysis.metrics[0].templateRef", range_query_refusal("keptn"))
    ]
    assert errors[0].line > 1  # placed at the templateRef
    # the same metric on a backend with range queries is fine
    template["spec"]["provider"] = {"type": "graphite", "address": "http://graphite:80"}
    clean = check_stream(yaml.safe_dump_all([canary, template]), "release.yaml", _options())
    assert not [f for f in clean.findings if f.severity == "error"]


def _options() -> Any:
    from coalmine.cli.check import Options

    return Options()
