"""Outbound calls honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY; an AlertProvider's proxy wins.

A forward proxy on 127.0.0.1 relays absolute-form requests and records them; the webhook,
metric and chat servers are plain local servers. Reaching the target is not enough: the proxy
must have seen the request (or, with NO_PROXY, must not have).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from coalmine.analysis.providers import ProviderContext, provider_for
from coalmine.api.models import CanaryWebhook, MetricTemplateProvider
from coalmine.hooks.client import call_webhook, create_session
from coalmine.notify.message import AlertMessage
from coalmine.notify.registry import make_notifier

from .outbound_rig import Answering, ForwardProxy, serve

PROMETHEUS_ANSWER = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}'
)
MESSAGE = AlertMessage(workload="podinfo", namespace="test", message="hello")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


async def call_all_three(session: aiohttp.ClientSession, target: str) -> None:
    """A webhook, a metric query and an alert to `target`; each must succeed."""
    result = await call_webhook(session, CanaryWebhook(name="gate", url=f"{target}/gate"), {})
    assert result.ok, result.error
    spec = MetricTemplateProvider(type="prometheus", address=target)
    assert await provider_for(spec, {}, ProviderContext(session)).run_query("up") == 42
    await make_notifier("slack", f"{target}/services/T0/B0").send(session, MESSAGE)


async def test_webhooks_metrics_and_alerts_go_through_the_environment_proxy(
    clean_proxy_env: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    proxy = ForwardProxy()
    target = Answering(body=PROMETHEUS_ANSWER, content_type="application/json")
    async with serve(proxy.handle) as (proxy_url,), serve(target.handle) as (target_url,):
        clean_proxy_env.setenv("HTTP_PROXY", proxy_url)
        await call_all_three(session, target_url)
    assert [seen.split("?")[0] for seen in proxy.seen] == [
        f"{target_url}/gate",
        f"{target_url}/api/v1/query",
        f"{target_url}/services/T0/B0",
    ]
    assert len(target.seen) == 3


async def test_no_proxy_bypasses_the_environment_proxy(
    clean_proxy_env: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    proxy = ForwardProxy()
    target = Answering(body=PROMETHEUS_ANSWER, content_type="application/json")
    async with serve(proxy.handle) as (proxy_url,), serve(target.handle) as (target_url,):
        clean_proxy_env.setenv("HTTP_PROXY", proxy_url)
        clean_proxy_env.setenv("NO_PROXY", "localhost,127.0.0.1")
        await call_all_three(session, target_url)
    assert proxy.seen == []
    assert len(target.seen) == 3


async def test_an_alert_providers_own_proxy_wins_over_the_environment(
    clean_proxy_env: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    env_proxy = ForwardProxy()
    own_proxy = ForwardProxy()
    chat = Answering()
    async with (
        serve(env_proxy.handle) as (env_proxy_url,),
        serve(own_proxy.handle) as (own_proxy_url,),
        serve(chat.handle) as (chat_url,),
    ):
        clean_proxy_env.setenv("HTTP_PROXY", env_proxy_url)
        notifier = make_notifier("slack", f"{chat_url}/hook", proxy=own_proxy_url)
        await notifier.send(session, MESSAGE)
    assert own_proxy.seen == [f"{chat_url}/hook"]
    assert env_proxy.seen == []
    assert chat.seen == [f"{chat_url}/hook"]
