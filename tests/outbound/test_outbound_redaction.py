"""Secrets never shown: URLs are redacted wherever the controller reports them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from coalmine.analysis.providers import (
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    provider_for,
)
from coalmine.api.models import AlertProvider, CanaryAlert, CanaryWebhook, MetricTemplateProvider
from coalmine.hooks.client import call_webhook, create_session
from coalmine.notify.alerter import AlertProviderError, resolve_alert_provider
from coalmine.outbound import redact_url, redact_urls_in, safe_text

from .outbound_rig import serve

SECRET = "S3CRET-planted-value"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host/x", "https://user:xxxxx@host/x"),
        ("https://tok@host/x", "https://xxxxx@host/x"),
        ("ftp://u:p@h:21/", "ftp://u:xxxxx@h:21/"),
        (
            "http://h/q?token=a&x=1&api_key=b&apikey=c&Password=d",
            "http://h/q?token=xxxxx&x=1&api_key=xxxxx&apikey=xxxxx&Password=xxxxx",
        ),
        (
            "http://h/?X-Amz-Signature=a&sig=b&access_token=c&auth=d&client_secret=e&p=f&u=me",
            "http://h/?X-Amz-Signature=xxxxx&sig=xxxxx&access_token=xxxxx&auth=xxxxx"
            "&client_secret=xxxxx&p=xxxxx&u=me",
        ),
        ("http://h/#access_token=abc", "http://h/#access_token=xxxxx"),
        ("http://h:9090/api/v1/query?query=up", "http://h:9090/api/v1/query?query=up"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_hides_userinfo_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_unparsable_url_still_loses_its_userinfo() -> None:
    assert redact_url(f"http://u:{SECRET}@[::1/") == "http://xxxxx@[::1/"


def test_urls_inside_free_text_are_redacted() -> None:
    text = f"Cannot connect to URL('http://u:{SECRET}@h/?token={SECRET}') and https://{SECRET}@x"
    assert SECRET not in redact_urls_in(text)
    assert SECRET not in safe_text(text)
    assert "URL('http://u:xxxxx@h/?token=xxxxx')" in redact_urls_in(text)


def test_an_alert_provider_address_from_a_secret_is_redacted_in_the_refusal() -> None:
    provider = AlertProvider.model_validate(
        {
            "metadata": {"name": "chat", "namespace": "test"},
            "spec": {"type": "slack", "channel": "c", "secretRef": {"name": "chat"}},
        }
    )
    alert = CanaryAlert.model_validate({"name": "a", "providerRef": {"name": "chat"}})
    with pytest.raises(AlertProviderError) as raised:
        resolve_alert_provider(alert, provider, {"address": f"ftp://user:{SECRET}@chat.local/x"})
    assert SECRET not in str(raised.value)
    assert "invalid slack URL 'ftp://user:xxxxx@chat.local/x'" in str(raised.value)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


async def test_a_webhook_url_with_a_token_parameter_is_redacted_in_the_error(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(_refuse) as (url,):
        pass  # closed now: the call fails and names the URL
    hook = CanaryWebhook(name="t", url=f"{url}/hook?token={SECRET}&team=a")
    result = await call_webhook(session, hook, {"name": "x"})
    assert not result.ok
    assert f"POST {url}/hook?token=xxxxx&team=a" in result.error
    assert SECRET not in result.error


async def test_a_metric_address_with_credentials_is_redacted_in_failures(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(_refuse) as (url,):
        pass
    context = ProviderContext(session)
    address = url.replace("http://", f"http://admin:{SECRET}@")
    spec = MetricTemplateProvider(type="prometheus", address=f"{address}/?api_key={SECRET}")
    provider = provider_for(spec, {}, context)
    with pytest.raises(ProviderError) as raised:
        await provider.run_query("up")
    assert SECRET not in str(raised.value)
    assert "admin:xxxxx@" in str(raised.value)
    with pytest.raises(ProviderConfigError) as refused:
        provider_for(
            MetricTemplateProvider(type="graphite", address=f"ftp://a:{SECRET}@h"), {}, context
        )
    assert SECRET not in str(refused.value)


async def _refuse(request: object) -> object:
    raise AssertionError("never reached")
