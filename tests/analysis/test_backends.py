"""Each metric backend against a local server speaking that backend's documented API."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coalmine.analysis.providers import (
    NoValuesFound,
    ProviderConfigError,
    ProviderError,
    provider_for,
)

from .cloud_fakes import verify_sigv4
from .conftest import NOW, Serve, context, spec

# --- prometheus (auth and answer shapes; PromQL itself runs against a real Prometheus) ---------


async def test_prometheus_sends_bearer_token_and_custom_headers(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def query(request: web.Request) -> web.Response:
        seen.append(
            (
                request.headers["Authorization"],
                request.headers["X-Scope-OrgID"],
                request.query["query"],
            )
        )
        return web.json_response(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {}, "value": [NOW, "1"]},
                        {"metric": {}, "value": [NOW, "7.5"]},
                    ],
                },
            }
        )

    app = web.Application()
    app.router.add_get("/prom/api/v1/query", query)
    url = await serve(app)
    provider = provider_for(
        spec(
            type="prometheus",
            address=f"{url}/prom",
            secret_ref="auth",
            headers={"X-Scope-OrgID": ["tenant-a"]},
        ),
        {"token": b"s3cret"},
        context(session),
    )
    assert await provider.run_query("sum(\n  up\n)") == 7.5  # the last sample, like Flagger
    assert seen == [("Bearer s3cret", "tenant-a", "sum( up )")]


async def test_prometheus_basic_auth_requires_both_keys(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
        return web.json_response(
            {"status": "success", "data": {"resultType": "scalar", "result": [NOW, "2"]}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    url = await serve(app)
    good = provider_for(
        spec(type="prometheus", address=url, secret_ref="a"),
        {"username": "u", "password": "p"},
        context(session),
    )
    assert await good.run_query("vector(2)") == 2
    with pytest.raises(ProviderConfigError, match="does not contain password"):
        provider_for(
            spec(type="prometheus", address=url, secret_ref="a"),
            {"username": "u"},
            context(session),
        )
    with pytest.raises(ProviderConfigError, match="is not a valid URL"):
        provider_for(spec(type="prometheus", address="prometheus:9090"), {}, context(session))


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            NoValuesFound,
            "no values found",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"value": [1, "NaN"]}]},
            },
            NoValuesFound,
            "no values found",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"values": [[1, "1"]]}]},
            },
            ProviderError,
            "query returned multiple values",
        ),
    ],
)
async def test_prometheus_answers_without_a_single_value(
    serve: Serve,
    session: aiohttp.ClientSession,
    answer: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    async def query(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    provider = provider_for(spec(type="prometheus", address=await serve(app)), {}, context(session))
    with pytest.raises(error, match=match):
        await provider.run_query("x")


async def test_prometheus_http_error_carries_status_and_body(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        return web.Response(status=400, text='{"error":"parse error at char 3"}')

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    provider = provider_for(spec(type="prometheus", address=await serve(app)), {}, context(session))
    with pytest.raises(
        ProviderError, match=r"error response: Status 400 Bad Request: .*parse error"
    ):
        await provider.run_query("sum(")


# --- datadog ---------------------------------------------------------------------------------


async def test_datadog_queries_ten_intervals_with_api_and_app_keys(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        if (
            request.headers.get("DD-API-KEY") != "api"
            or request.headers.get("DD-APPLICATION-KEY") != "app"
        ):
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        assert request.query["from"] == str(int(NOW - 600))
        assert request.query["to"] == str(int(NOW))
        if "empty" in request.query["query"]:
            return web.json_response({"series": []})
        return web.json_response({"series": [{"pointlist": [[NOW, 4.25], [NOW, 9.0]]}]})

    async def validate(request: web.Request) -> web.Response:
        return web.json_response(
            {"valid": True}, status=200 if request.headers.get("DD-API-KEY") == "api" else 403
        )

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    app.router.add_get("/api/v1/validate", validate)
    url = await serve(app)
    keys = {"datadog_api_key": b"api", "datadog_application_key": b"app"}
    provider = provider_for(
        spec(type="datadog", address=url, secret_ref="dd"), keys, context(session), "1m"
    )
    assert await provider.run_query("avg:latency{app:podinfo}") == 4.25
    assert await provider.is_online()
    with pytest.raises(NoValuesFound):
        await provider.run_query("empty")
    wrong = provider_for(
        spec(type="datadog", address=url, secret_ref="dd"),
        {"datadog_api_key": b"x", "datadog_application_key": b"app"},
        context(session),
    )
    with pytest.raises(ProviderError, match="Forbidden"):
        await wrong.run_query("q")
    with pytest.raises(ProviderConfigError, match="datadog_application_key"):
        provider_for(
            spec(type="datadog", secret_ref="dd"), {"datadog_api_key": b"x"}, context(session)
        )


# --- new relic -------------------------------------------------------------------------------


async def test_newrelic_sends_nrql_with_since_and_query_key(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        assert request.match_info["account"] == "42"
        if request.headers.get("X-Query-Key") != "key":
            return web.json_response({"error": "bad key"}, status=401)
        nrql = request.query["nrql"]
        if nrql.startswith("SELECT * FROM Metric"):
            return web.json_response({"results": [{"events": []}]})
        assert nrql.endswith(" SINCE 120 seconds ago")
        return web.json_response({"results": [{"result": 1.5}]})

    app = web.Application()
    app.router.add_get("/v1/accounts/{account}/query", query)
    url = await serve(app)
    creds = {"newrelic_account_id": b"42", "newrelic_query_key": b"key"}
    provider = provider_for(
        spec(type="newrelic", address=url, secret_ref="nr"), creds, context(session), "2m"
    )
    assert await provider.run_query("SELECT average(duration) AS result FROM Transaction") == 1.5
    assert await provider.is_online()


# --- graphite --------------------------------------------------------------------------------


async def test_graphite_reads_the_last_non_null_datapoint(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def render(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"g:pw").decode()
        assert request.query["format"] == "json"
        if request.query["target"] == "test":
            return web.json_response([])
        assert (
            request.query["target"] == "summarize(asPercent(a.podinfo.ok,a.podinfo.all),1m,'avg')"
        )
        assert request.query["from"] == "-1m"
        return web.json_response([{"target": "x", "datapoints": [[97.0, 1], [98.5, 2], [None, 3]]}])

    app = web.Application()
    app.router.add_get("/render", render)
    url = await serve(app)
    provider = provider_for(
        spec(type="graphite", address=url, secret_ref="g"),
        {"username": "g", "password": "pw"},
        context(session),
    )
    query = "target=summarize(\n  asPercent(a.podinfo.ok,\n    a.podinfo.all),\n  1m,\n  'avg'\n)&from=-1m"
    assert await provider.run_query(query) == 98.5
    assert await provider.is_online()  # no values is still online


# --- dynatrace -------------------------------------------------------------------------------


async def test_dynatrace_reads_the_last_data_value_with_api_token(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Api-Token dt0c01"
        assert request.query["resolution"] == "Inf"
        assert request.query["from"] == str(int(NOW * 1000) - 600_000)
        assert request.query["to"] == str(int(NOW * 1000))
        assert request.query["metricSelector"] == "builtin:service.response.time:avg"
        return web.json_response({"result": [{"data": [{"values": [10.0]}, {"values": [12.5]}]}]})

    async def metrics(request: web.Request) -> web.Response:
        assert request.query["pageSize"] == "1"
        return web.json_response({"metrics": []})

    app = web.Application()
    app.router.add_get("/api/v2/metrics/query", query)
    app.router.add_get("/api/v2/metrics", metrics)
    url = await serve(app)
    provider = provider_for(
        spec(type="dynatrace", address=url, secret_ref="dt"),
        {"dynatrace_token": b"dt0c01"},
        context(session),
    )
    assert await provider.run_query("builtin:service.response.time:avg") == 12.5
    assert await provider.is_online()


# --- influxdb --------------------------------------------------------------------------------


async def test_influxdb_posts_flux_and_reads_the_first_value(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def query(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Token tok"
        assert request.query["org"] == "acme"
        body = await request.json()
        assert body["type"] == "flux"
        if "empty" in body["query"]:
            return web.Response(text="", content_type="application/csv")
        csv_text = (
            ",result,table,_start,_stop,_time,_value,_field\r\n"
            ",_result,0,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,2023-01-01T00:30:00Z,3.25,v\r\n"
            ",_result,0,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,2023-01-01T00:31:00Z,9,v\r\n"
        )
        return web.Response(text=csv_text, content_type="application/csv")

    app = web.Application()
    app.router.add_post("/api/v2/query", query)
    url = await serve(app)
    provider = provider_for(
        spec(type="influxdb", address=url, secret_ref="i"),
        {"token": b"tok", "org": b"acme"},
        context(session),
    )
    assert await provider.run_query('from(bucket: "b") |> range(start: -1m)') == 3.25
    # Flagger returns 0 here; an empty answer must never look like a perfect score
    # (docs/decisions.md, 'Metric interval and empty results').
    with pytest.raises(NoValuesFound):
        await provider.run_query("empty")
    assert await provider.is_online()


# --- cloudwatch ------------------------------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


async def test_cloudwatch_signs_get_metric_data_and_reads_the_first_value(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    calls: list[dict[str, Any]] = []

    async def api(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_sigv4(request, body, AWS_SECRET):
            return web.json_response({"__type": "SignatureDoesNotMatch"}, status=403)
        assert request.headers["X-Amz-Target"] == "GraniteServiceVersion20100801.GetMetricData"
        assert "/eu-west-1/monitoring/" in request.headers["Authorization"]
        payload = json.loads(body)
        calls.append(payload)
        if not payload:
            return web.json_response({"__type": "ValidationError"}, status=400)
        return web.json_response({"MetricDataResults": [{"Id": "e1", "Values": [0.02, 0.5]}]})

    app = web.Application()
    app.router.add_post("/", api)
    url = await serve(app)
    creds = {"aws_access_key_id": b"AKIDEXAMPLE", "aws_secret_access_key": AWS_SECRET.encode()}
    provider = provider_for(
        spec(type="cloudwatch", region="eu-west-1", address=url, secret_ref="aws"),
        creds,
        context(session),
        "1m",
    )
    query = '[{"Id": "e1", "Expression": "m1 / m2"}]'
    assert await provider.run_query(query) == 0.02
    assert calls[0]["StartTime"] == int(NOW - 600)
    assert calls[0]["MaxDatapoints"] == 20
    assert calls[0]["MetricDataQueries"] == [{"Id": "e1", "Expression": "m1 / m2"}]
    assert await provider.is_online()  # HTTP 400 on empty input counts as online, like Flagger
    forged = provider_for(
        spec(type="cloudwatch", region="eu-west-1", address=url, secret_ref="aws"),
        {**creds, "aws_secret_access_key": b"wrong"},
        context(session),
    )
    with pytest.raises(ProviderError, match="SignatureDoesNotMatch"):
        await forged.run_query(query)
    with pytest.raises(ProviderConfigError, match="region not specified"):
        provider_for(spec(type="cloudwatch"), creds, context(session))
