"""Stackdriver, Splunk, Kubernetes external metrics, Keptn and the `http` provider against local
servers implementing their documented requests."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from coalmine.analysis.providers import (
    NoValuesFound,
    ProviderConfigError,
    ProviderError,
    provider_for,
)
from coalmine.analysis.providers.externalmetrics import parse_quantity
from coalmine.analysis.providers.keptn import KeptnProvider

from .conftest import NOW, Serve, context, spec


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- stackdriver -----------------------------------------------------------------------------


async def test_stackdriver_exchanges_a_signed_jwt_and_runs_mql(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    token_requests: list[dict[str, Any]] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header_b64, claims_b64, signature_b64 = str(form["assertion"]).split(".")
        try:
            public_key.verify(
                _unb64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return web.json_response({"error": "invalid_grant"}, status=400)
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(claims_b64))
        token_requests.append(claims)
        assert header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        assert claims["aud"] == "https://oauth2.googleapis.com/token"  # google-auth's audience
        return web.json_response(
            {"access_token": "ya29.token", "expires_in": 3600, "token_type": "Bearer"}
        )

    async def query(request: web.Request) -> web.Response:
        assert request.match_info["project"] == "my-project"
        if request.headers.get("Authorization") != "Bearer ya29.token":
            return web.json_response({"error": {"status": "UNAUTHENTICATED"}}, status=401)
        mql = (await request.json())["query"]
        if not mql:
            return web.json_response(
                {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status=400
            )
        return web.json_response(
            {"timeSeriesData": [{"pointData": [{"values": [{"doubleValue": 0.75}]}]}]}
        )

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/v3/projects/{project}/timeSeries:query", query)
    url = await serve(app)
    service_account = {
        "type": "service_account",
        "client_email": "flagger@my-project.iam.gserviceaccount.com",
        "private_key_id": "key-1",
        "private_key": pem,
        "token_uri": f"{url}/token",
    }
    provider = provider_for(
        spec(type="stackdriver", address=url, secret_ref="gcp"),
        {"project": b"my-project", "serviceAccountKey": json.dumps(service_account).encode()},
        context(session),
    )
    assert await provider.run_query("fetch k8s_container | metric 'x'") == 0.75
    assert await provider.is_online()
    assert len(token_requests) == 1  # the token is cached until it expires
    claims = token_requests[0]
    assert claims["iss"] == "flagger@my-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/monitoring.read"
    assert claims["exp"] - claims["iat"] == 3600

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = {**service_account, "private_key": other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()}  # fmt: skip
    impostor = provider_for(
        spec(type="stackdriver", address=url, secret_ref="gcp"),
        {"project": b"my-project", "serviceAccountKey": json.dumps(forged).encode()},
        context(session),
    )
    with pytest.raises(ProviderError, match=r"error getting access token: .*invalid_grant"):
        await impostor.run_query("fetch x")
    with pytest.raises(ProviderConfigError, match="does not contain project"):
        provider_for(spec(type="stackdriver", secret_ref="gcp"), {}, context(session))


# --- splunk ----------------------------------------------------------------------------------


def _sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


async def test_splunk_executes_signalflow_and_reads_the_last_value(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def execute(request: web.Request) -> web.Response:
        assert request.headers["X-SF-Token"] == "sf"
        assert request.query["stop"] == str(int(NOW * 1000))
        assert request.query["start"] == str(int(NOW * 1000) - 600_000)
        program = await request.text()
        control = ("control-message", {"event": "STREAM_START"})
        if "two" in program:
            body = _sse(
                control, ("data", {"data": [{"tsId": "A", "value": 1}, {"tsId": "B", "value": 2}]})
            )
        elif "none" in program:
            body = _sse(control, ("data", {"data": [{"tsId": "A", "value": None}]}))
        else:
            body = _sse(
                control,
                ("data", {"data": [{"tsId": "A", "value": 1.0}], "logicalTimestampMs": 1}),
                ("data", {"data": [{"tsId": "A", "value": 3.5}], "logicalTimestampMs": 2}),
                ("control-message", {"event": "END_OF_CHANNEL"}),
            )
        return web.Response(text=body, content_type="text/event-stream")

    async def metric(request: web.Request) -> web.Response:
        assert request.headers["X-SF-Token"] == "sf"
        return web.json_response({"count": 1, "results": []})

    app = web.Application()
    app.router.add_post("/v2/signalflow/execute", execute)
    app.router.add_get("/v2/metric", metric)
    url = await serve(app)
    provider = provider_for(
        spec(type="splunk", address=url, secret_ref="sf"), {"sf_token_key": b"sf"}, context(session)
    )
    assert await provider.run_query("data('latency').mean().publish()") == 3.5
    with pytest.raises(ProviderError, match="query returned multiple values"):
        await provider.run_query("two")
    with pytest.raises(NoValuesFound):
        await provider.run_query("none")
    assert await provider.is_online()


# --- external metrics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("3", 3.0), ("1.5k", 1500.0), ("2Ki", 2048.0), ("1e3", 1000.0)],
)
def test_kubernetes_quantities_parse(text: str, value: float) -> None:
    assert parse_quantity(text) == value


async def test_externalmetrics_reads_the_first_item_with_the_callers_token(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def metric(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer kube-token":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.match_info["metric"] == "dummy-metric":
            return web.json_response({"kind": "ExternalMetricValueList", "items": []})
        assert request.match_info["namespace"] == "apps"
        assert request.query["labelSelector"] == "app=podinfo,env in (prod)"
        return web.json_response(
            {"kind": "ExternalMetricValueList", "items": [{"metricName": "m", "value": "1250m"}]}
        )

    app = web.Application()
    app.router.add_get(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}", metric
    )
    url = await serve(app)
    provider = provider_for(
        spec(type="externalmetrics"), {}, context(session, kube_api=url, kube_token="kube-token")
    )
    query = "apps/s0-prometheus?labelSelector=app%3Dpodinfo%2Cenv%20in%20(prod)"
    assert await provider.run_query(query) == 1.25
    assert await provider.is_online()
    with pytest.raises(NoValuesFound):
        await provider.run_query("apps/dummy-metric")


# --- keptn -----------------------------------------------------------------------------------


async def test_keptn_reads_metrics_and_runs_an_analysis(
    serve: Serve, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyses: dict[str, dict[str, Any]] = {}
    deleted: list[str] = []
    base = "/apis/metrics.keptn.sh/v1beta1/namespaces/{ns}"

    async def keptn_metric(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer t"
        if request.match_info["name"] == "absent":
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response({"status": {"value": "42.5"}})

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        analyses[body["metadata"]["name"]] = {**body, "polls": 0}
        return web.json_response(body, status=201)

    async def get(request: web.Request) -> web.Response:
        item = analyses[request.match_info["name"]]
        item["polls"] += 1
        if item["polls"] >= 2:  # completes on the second poll
            item["status"] = {"state": "Completed", "pass": True}
        return web.json_response(item)

    async def delete(request: web.Request) -> web.Response:
        deleted.append(request.match_info["name"])
        return web.json_response({})

    app = web.Application()
    app.router.add_get(base + "/keptnmetrics/{name}", keptn_metric)
    app.router.add_post(base + "/analyses", create)
    app.router.add_get(base + "/analyses/{name}", get)
    app.router.add_delete(base + "/analyses/{name}", delete)
    url = await serve(app)
    monkeypatch.setattr(KeptnProvider, "poll_interval", 0.01)
    provider = provider_for(spec(type="keptn"), {}, context(session, kube_api=url, kube_token="t"))
    assert await provider.run_query("KeptnMetric/apps/latency") == 42.5
    with pytest.raises(NoValuesFound):
        await provider.run_query("keptnmetric/apps/absent")
    assert await provider.run_query("analysis/apps/slo-check/5m/service=podinfo;env=prod") == 1.0
    (created,) = analyses.values()
    assert created["metadata"]["name"].startswith("slo-check-")
    assert created["spec"] == {
        "analysisDefinition": {"name": "slo-check"},
        "timeframe": {"recent": "5m"},
        "args": {"service": "podinfo", "env": "prod"},
    }
    assert deleted == [created["metadata"]["name"]]
    with pytest.raises(ProviderConfigError, match="invalid keptn query"):
        await provider.run_query("something/else")


# --- http ------------------------------------------------------------------------------------


async def test_http_provider_shorthand_and_yaml_forms(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def stats(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer web":
            return web.json_response({"error": "unauthorized"}, status=401)
        app_name = request.query.get("app", "")
        return web.json_response(
            {
                "data": {
                    "apps": [
                        {"name": app_name, "successRate": "99.5", "healthy": True, "p99": None}
                    ]
                }
            }
        )

    async def search(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"hits": {"total": body["size"] * 2}})

    app = web.Application()
    app.router.add_get("/api/stats", stats)
    app.router.add_post("/search", search)
    url = await serve(app)
    provider = provider_for(
        spec(type="http", address=url, secret_ref="web"), {"token": b"web"}, context(session)
    )
    assert await provider.run_query("/api/stats?app=podinfo $.data.apps[0].successRate") == 99.5
    assert await provider.run_query("GET /api/stats $.data.apps[-1]['healthy']") == 1.0
    yaml_query = "path: /search\nmethod: POST\nbody: {size: 21}\njsonPath: $.hits.total\n"
    assert await provider.run_query(yaml_query) == 42.0
    with pytest.raises(NoValuesFound):
        await provider.run_query("/api/stats $.data.apps[0].p99")
    with pytest.raises(NoValuesFound):
        await provider.run_query("/api/stats $.data.missing")
    with pytest.raises(ProviderError, match="selects an object"):
        await provider.run_query("/api/stats $.data")
    with pytest.raises(ProviderConfigError, match="expected"):
        await provider.run_query("/api/stats")
    with pytest.raises(ProviderConfigError, match="unsupported syntax"):
        await provider.run_query("/api/stats $.data[?(@.x)]")
    anonymous = provider_for(spec(type="http", address=url), {}, context(session))
    with pytest.raises(ProviderError, match="Status 401"):
        await anonymous.run_query("/api/stats $.data")
    assert await anonymous.is_online()
