"""Webhook calls against real local HTTP(S) servers (Flagger's webhook_test.go and more).

Which hook failure halts, waits or rolls back, and the event texts, are the scheduler's: see
tests/scheduler/test_gates.py and test_events_and_metrics.py.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coalmine.api.models import Canary, CanaryWebhook
from coalmine.hooks import canary_checksum, event_payload, hooks_of_type, webhook_payload
from coalmine.hooks.client import call_webhook, create_session
from coalmine.hooks.webhooks import WebhookClient, WebhookError, call_event_webhook, send_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorder:
    """A local HTTP peer that records JSON bodies and answers from a queue of statuses."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    reply_body: str = ""
    delay_seconds: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(await request.json())
        self.paths.append(request.path)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        status = self.statuses.pop(0) if self.statuses else self.default_status
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=self.reply_body)


@asynccontextmanager
async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


def make_canary(webhooks: list[dict[str, Any]] | None = None, phase: str = "Progressing") -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "webhooks": webhooks or [],
                },
            },
            "status": {
                "phase": phase,
                "lastAppliedSpec": "abc",
                "trackedConfigs": {"configmap/podinfo": "1234"},
            },
        }
    )


# --- payloads and checksum --------------------------------------------------------------------


async def test_webhook_posts_exactly_name_namespace_phase_checksum_metadata(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder()
    canary = make_canary()
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="t", url=url, metadata={"cmd": "hey -n 1 http://podinfo"})
        payload = webhook_payload(canary, "Progressing", "checksum-1", hook.metadata)
        result = await call_webhook(session, hook, payload)
    assert result.ok
    assert recorder.calls == [
        {
            "name": "podinfo",
            "namespace": "test",
            "phase": "Progressing",
            "checksum": "checksum-1",
            "metadata": {"cmd": "hey -n 1 http://podinfo"},
        }
    ]
    assert list(recorder.calls[0]) == ["name", "namespace", "phase", "checksum", "metadata"]


def test_payload_without_metadata_omits_the_key() -> None:
    payload = webhook_payload(make_canary(), "Progressing", "c")
    assert payload == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "c",
    }


def test_checksum_is_stable_and_follows_tracked_configs_and_last_applied_spec() -> None:
    configs = {"configmap/a": "1", "secret/b": "2"}
    base = canary_checksum(configs, "spec-1")
    assert base == canary_checksum({"secret/b": "2", "configmap/a": "1"}, "spec-1")
    assert base != canary_checksum({"configmap/a": "1", "secret/b": "3"}, "spec-1")
    assert base != canary_checksum(configs, "spec-2")
    assert canary_checksum(None, "spec-1") != canary_checksum({}, "spec-1")
    assert set(base) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_checksum_is_the_same_in_another_process() -> None:
    code = (
        "from coalmine.hooks import canary_checksum;"
        "print(canary_checksum({'configmap/a': '1'}, 'spec-1'))"
    )
    import os
    import sys

    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert other.stdout.strip() == canary_checksum({"configmap/a": "1"}, "spec-1")


def test_event_payload_metadata_cannot_be_overridden_by_the_hook() -> None:
    payload = event_payload(
        make_canary(),
        "Warning",
        "Halt podinfo.test advancement",
        {"eventType": "Normal", "team": "a"},
        timestamp_ms=1700000000123,
    )
    assert payload["metadata"] == {
        "eventMessage": "Halt podinfo.test advancement",
        "eventType": "Warning",
        "timestamp": "1700000000123",
        "team": "a",
    }


# --- call semantics ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_answer_is_success(session: aiohttp.ClientSession, status: int) -> None:
    recorder = Recorder(default_status=status)
    async with serve(recorder.handle) as url:
        result = await call_webhook(session, CanaryWebhook(name="t", url=url), {"name": "x"})
    assert result.ok
    assert result.status == status


async def test_a_4xx_answer_fails_with_the_body_as_error_and_is_not_retried(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder(default_status=403, reply_body="Forbidden")
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="gate", url=url, retries=3)
        result = await call_webhook(session, hook, {"name": "x"}, retry_wait_min=0.01)
    assert not result.ok
    assert result.error == "Forbidden"
    assert len(recorder.calls) == 1


async def test_a_500_answer_fails_with_flaggers_giving_up_text_keeping_the_body(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder(default_status=500, reply_body="boom")
    async with serve(recorder.handle) as url:
        result = await call_webhook(session, CanaryWebhook(name="t", url=url), {"name": "x"})
    assert not result.ok
    assert result.status == 500
    assert result.error == f"POST {url} giving up after 1 attempt(s): 500: boom"


async def test_one_retry_turns_an_initial_500_into_success(session: aiohttp.ClientSession) -> None:
    recorder = Recorder(statuses=[500, 200])
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="t", url=url, retries=1)
        result = await call_webhook(session, hook, {"name": "x"}, retry_wait_min=0.01)
    assert result.ok
    assert result.attempts == 2
    assert len(recorder.calls) == 2


async def test_retries_are_exhausted_then_the_call_fails(session: aiohttp.ClientSession) -> None:
    recorder = Recorder(default_status=503)
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="t", url=url, retries=2)
        result = await call_webhook(session, hook, {"name": "x"}, retry_wait_min=0.01)
    assert not result.ok
    assert len(recorder.calls) == 3
    assert "giving up after 3 attempt(s)" in result.error


async def test_a_slower_answer_than_the_hook_timeout_fails(session: aiohttp.ClientSession) -> None:
    recorder = Recorder(delay_seconds=2.0)
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="slow", url=url, timeout="1s")
        result = await call_webhook(session, hook, {"name": "x"})
    assert not result.ok
    assert "timeout after 1s" in result.error


async def test_an_unreachable_hook_fails_with_a_connection_error(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as url:
        pass  # the server is gone: its port refuses connections now
    result = await call_webhook(session, CanaryWebhook(name="t", url=url), {"name": "x"})
    assert not result.ok
    assert result.error.startswith(f"POST {url} giving up after 1 attempt(s): ")


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture
def self_signed_tls(tmp_path: Path) -> ssl.SSLContext:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not found: cannot make a self-signed certificate for the TLS test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_self_signed_tls_works_only_with_disable_tls(
    session: aiohttp.ClientSession, self_signed_tls: ssl.SSLContext
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle, self_signed_tls) as url:
        verified = await call_webhook(
            session, CanaryWebhook(name="t", url=url, retries=2), {"name": "x"}
        )
        skipped = await call_webhook(
            session, CanaryWebhook(name="t", url=url, disable_tls=True), {"name": "x"}
        )
    assert not verified.ok
    assert verified.attempts == 1, "a certificate error is not retried"
    assert "certificate" in verified.error.lower()
    assert skipped.ok
    assert len(recorder.calls) == 1


# --- the scheduler's WebhookCaller -------------------------------------------------------------


GATING_TYPES = [
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
]


async def test_each_hook_type_posts_the_phase_the_scheduler_passes(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as url:
        hooks = [
            {"name": f"{kind}-hook", "type": kind, "url": f"{url}/{kind}", "metadata": {"k": kind}}
            for kind in [*GATING_TYPES, "event"]
        ]
        canary = make_canary(hooks, phase="Initialized")
        client = WebhookClient(session)
        sent = {kind: f"phase-for-{kind}" for kind in GATING_TYPES}
        for kind in GATING_TYPES:
            (hook,) = hooks_of_type(canary, kind)
            await client.call(canary, hook, sent[kind])
        gating_calls = list(zip(recorder.paths, recorder.calls, strict=True))
        recorder.paths.clear()
        recorder.calls.clear()
        await client.forward_event(canary, "Normal", "hello", None)
    checksum = canary_checksum({"configmap/podinfo": "1234"}, "abc")
    assert [(path, body["phase"]) for path, body in gating_calls] == [
        (f"/{kind}", sent[kind]) for kind in GATING_TYPES
    ]
    assert all(body["checksum"] == checksum for _, body in gating_calls)
    assert [body["metadata"] for _, body in gating_calls] == [{"k": k} for k in GATING_TYPES]
    assert recorder.paths == ["/event"], "events go to event hooks only"
    assert recorder.calls[0]["phase"] == "Initialized"


def test_hooks_of_type_keeps_spec_order_and_counts_untyped_hooks_as_rollout() -> None:
    canary = make_canary(
        [
            {"name": "b", "type": "rollout", "url": "http://hooks/b"},
            {"name": "gate", "type": "confirm-rollout", "url": "http://hooks/gate"},
            {"name": "a", "url": "http://hooks/a"},
        ]
    )
    assert [hook.name for hook in hooks_of_type(canary, "rollout")] == ["b", "a"]
    assert [hook.name for hook in hooks_of_type(canary, "confirm-rollout")] == ["gate"]
    assert hooks_of_type(canary, "rollback") == []


async def test_webhook_client_raises_webhook_error_with_the_body_on_500_and_returns_on_204(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder(statuses=[500, 204], reply_body="boom")
    client = WebhookClient(session)
    async with serve(recorder.handle) as url:
        hook = CanaryWebhook(name="gate", url=url)
        with pytest.raises(WebhookError) as failed:
            await client.call(make_canary(), hook, "Progressing")
        await client.call(make_canary(), hook, "Progressing")
    assert str(failed.value) == f"POST {url} giving up after 1 attempt(s): 500: boom"
    assert len(recorder.calls) == 2


# --- event webhooks ------------------------------------------------------------------------


async def test_event_webhook_payload_carries_message_type_and_hook_metadata(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as url:
        canary = make_canary(
            [{"name": "ev", "type": "event", "url": url, "metadata": {"env": "prod"}}]
        )
        hook = CanaryWebhook(name="ev", url=url, type="event", metadata={"env": "prod"})
        result = await call_event_webhook(session, hook, canary, "Normal", "Advance podinfo.test")
    assert result.ok
    (body,) = recorder.calls
    assert body["name"] == "podinfo"
    assert body["namespace"] == "test"
    assert body["phase"] == "Progressing"
    assert body["checksum"] == canary_checksum({"configmap/podinfo": "1234"}, "abc")
    assert body["metadata"]["eventMessage"] == "Advance podinfo.test"
    assert body["metadata"]["eventType"] == "Normal"
    assert body["metadata"]["env"] == "prod"
    assert body["metadata"]["timestamp"].isdigit()


async def test_events_go_to_the_global_webhook_only_when_the_canary_has_none(
    session: aiohttp.ClientSession,
) -> None:
    global_recorder, own_recorder = Recorder(), Recorder()
    async with serve(global_recorder.handle) as global_url, serve(own_recorder.handle) as own_url:
        client = WebhookClient(session, event_webhook_url=global_url)
        await client.forward_event(make_canary([]), "Warning", "one", "Failed")
        await client.forward_event(
            make_canary([{"name": "e", "type": "event", "url": own_url}]), "Normal", "two", None
        )
    assert [c["metadata"]["eventMessage"] for c in global_recorder.calls] == ["one"]
    assert global_recorder.calls[0]["phase"] == "Failed"
    assert [c["metadata"]["eventMessage"] for c in own_recorder.calls] == ["two"]


async def test_a_failing_event_webhook_is_returned_not_raised(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder(default_status=500)
    async with serve(recorder.handle) as url:
        results = await send_event(session, make_canary([]), "Normal", "x", global_webhook=url)
        await WebhookClient(session, event_webhook_url=url).forward_event(
            make_canary([]), "Normal", "y", None
        )
    assert [r.ok for r in results] == [False]
    assert len(recorder.calls) == 2


async def test_a_malformed_hook_url_fails_the_call_without_raising(
    session: aiohttp.ClientSession,
) -> None:
    result = await call_webhook(
        session, CanaryWebhook(name="bad", url="not a url", retries=3), {"name": "x"}
    )
    assert not result.ok
    assert result.attempts == 1
    assert result.error.startswith("POST not a url: ")


async def test_a_huge_error_body_is_cut_short_in_the_error_text(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder(default_status=400, reply_body="x" * 1_000_000)
    async with serve(recorder.handle) as url:
        result = await call_webhook(session, CanaryWebhook(name="t", url=url), {"name": "x"})
    assert not result.ok
    assert result.error == "x" * 1000 + "…"
    assert len(result.body) == 1_000_000, "a body within the 1 MiB cap is kept whole"


async def test_a_429_is_retried_honouring_retry_after(session: aiohttp.ClientSession) -> None:
    answers = [web.Response(status=429, headers={"Retry-After": "0"}), web.Response(status=200)]
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.method)
        return answers.pop(0)

    async with serve(handle) as url:
        hook = CanaryWebhook(name="t", url=url, retries=1)
        # The backoff alone would wait an hour: only honouring Retry-After finishes in time.
        result = await asyncio.wait_for(
            call_webhook(session, hook, {"name": "x"}, retry_wait_min=3600, retry_wait_max=3600),
            timeout=30,
        )
    assert result.ok
    assert seen == ["POST", "POST"]


async def test_a_password_in_the_hook_url_never_appears_in_the_error(
    session: aiohttp.ClientSession,
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as url:
        pass  # closed port: the call fails and reports the URL
    with_password = url.replace("http://", "http://ci:s3cret@")
    result = await call_webhook(session, CanaryWebhook(name="t", url=with_password), {"name": "x"})
    assert not result.ok
    assert "ci:xxxxx@" in result.error
    assert "s3cret" not in result.error
