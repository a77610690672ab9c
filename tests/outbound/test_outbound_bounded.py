"""Bounded reads and safe texts: a peer's answer costs bounded memory and reaches events and logs
only as a short printable line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest
from aiohttp import web

from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.api.models import CanaryWebhook, MetricTemplate
from coalmine.hooks.client import call_webhook, create_session
from coalmine.notify.base import NotificationError
from coalmine.notify.message import AlertMessage
from coalmine.notify.registry import make_notifier
from coalmine.outbound import safe_text

from .outbound_rig import Answering, canary, serve

MIB = 1 << 20


class NoTemplates:
    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        return None

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes | str] | None:
        return None


def streaming(size: int, status: int = 200) -> web.Application:
    """A peer streaming `size` bytes chunked, without Content-Length (so the cap must count)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=status)
        response.content_type = "application/json"
        await response.prepare(request)
        chunk = b" " * (64 * 1024)
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_webhook_answering_more_than_one_mib_fails_with_the_cap_named(
    session: aiohttp.ClientSession, declared: bool
) -> None:
    if declared:
        peer = Answering(body=b"a" * (MIB + 1))
        async with serve(peer.handle) as (url,):
            result = await call_webhook(session, CanaryWebhook(name="t", url=url), {})
    else:
        runner, url = await serve_app(streaming(2 * MIB))
        try:
            result = await call_webhook(session, CanaryWebhook(name="t", url=url), {})
        finally:
            await runner.cleanup()
    assert not result.ok
    assert result.error == f"POST {url}: response body larger than 1 MiB"


async def test_a_webhook_answering_exactly_the_cap_passes(session: aiohttp.ClientSession) -> None:
    peer = Answering(body=b"a" * MIB)
    async with serve(peer.handle) as (url,):
        result = await call_webhook(session, CanaryWebhook(name="t", url=url), {})
    assert result.ok


async def test_a_metric_answer_over_the_cap_is_a_failed_check_naming_the_cap(
    session: aiohttp.ClientSession,
) -> None:
    runner, url = await serve_app(streaming(3 * MIB))
    try:
        analyzer = MetricAnalyzer(
            session,
            NoTemplates(),
            AnalysisSettings(metrics_server=url, max_response_bytes=2 * MIB),
        )
        outcome = await analyzer.analyse(
            canary("big", metrics=[{"name": "errors", "query": "up", "thresholdRange": {"max": 1}}])
        )
    finally:
        await runner.cleanup()
    failure = outcome.failure
    assert failure is not None
    assert failure.severity == "error"
    assert failure.message == (
        "Prometheus query failed for errors: "
        f"request to {url}/api/v1/query failed: response body larger than 2 MiB"
    )


async def test_a_metric_answer_within_the_default_cap_is_read_whole(
    session: aiohttp.ClientSession,
) -> None:
    padding = " " * (4 * MIB)
    body = (
        '{"status":"success","data":{"resultType":"vector","result":'
        '[{"metric":{},"value":[1,"0.5"]}]}' + padding + "}"
    ).encode()
    peer = Answering(body=body, content_type="application/json")
    async with serve(peer.handle) as (url,):
        analyzer = MetricAnalyzer(session, NoTemplates(), AnalysisSettings(metrics_server=url))
        outcome = await analyzer.analyse(
            canary("ok", metrics=[{"name": "errors", "query": "up", "thresholdRange": {"max": 1}}])
        )
    assert outcome.ok, outcome.failure


async def test_a_binary_error_body_becomes_one_short_printable_line(
    session: aiohttp.ClientSession,
) -> None:
    binary = bytes(range(256)) * 40 + b"\x1b[31mred\nsecond line"
    peer = Answering(status=400, body=binary, content_type="application/octet-stream")
    async with serve(peer.handle) as (url,):
        result = await call_webhook(session, CanaryWebhook(name="t", url=url), {})
    assert not result.ok
    assert result.error.isprintable()
    assert "\x1b" not in result.error
    assert "\n" not in result.error
    assert len(result.error) <= 1001


async def test_a_chat_tool_answering_megabytes_fails_the_alert_with_the_cap_named(
    session: aiohttp.ClientSession,
) -> None:
    peer = Answering(body=b"ok" * MIB)
    message = AlertMessage(workload="podinfo", namespace="test", message="m")
    async with serve(peer.handle) as (url,):
        with pytest.raises(NotificationError, match="response body larger than 1 MiB"):
            await make_notifier("slack", url).send(session, message)


def test_safe_text_strips_controls_collapses_line_breaks_and_caps() -> None:
    assert safe_text("a\r\n\tb\x00c\x1b[0m\u202e") == "a b?c?[0m?"
    assert safe_text("x" * 5000) == "x" * 1000 + "…"
    assert safe_text("x" * 30, limit=10) == "x" * 10 + "…"
    assert safe_text("  plain text  ") == "plain text"
