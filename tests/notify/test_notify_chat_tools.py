"""Chat notifiers and alert routing against real local HTTP servers (Flagger's `alert()` and
notifiers)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coalmine.api.models import AlertProvider, Canary, CanaryAlert
from coalmine.hooks.client import create_session
from coalmine.notify import (
    AlertMessage,
    Field,
    NotificationError,
    NotifierConfigError,
    build_alert_message,
    provider_receives,
)
from coalmine.notify.alerter import (
    Alerter,
    AlertProviderError,
    GlobalNotifierSettings,
    ResolvedAlertProvider,
    global_notifier,
    resolve_alert_provider,
)
from coalmine.notify.registry import make_notifier
from coalmine.scheduler.ports import Alerts


@dataclass
class Seen:
    url: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ChatServer:
    """A chat tool's webhook endpoint (or a forward proxy): records what it receives."""

    status: int = 200
    reply: str = "ok"
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            Seen(str(request.url), request.path, dict(request.headers), await request.json())
        )
        return web.Response(status=self.status, text=self.reply)


@asynccontextmanager
async def serve(server: ChatServer) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


MESSAGE = AlertMessage(
    workload="podinfo",
    namespace="test",
    message="New revision detected, progressing canary analysis.",
    severity="info",
    fields=(Field("Target", "Deployment/podinfo.test"), Field("Failed checks threshold", "5")),
)
ERROR = AlertMessage("podinfo", "test", "Failed checks threshold reached 5", "error")


def slack_like(color: str, message: AlertMessage = MESSAGE, channel: str = "general") -> Any:
    return {
        "channel": channel,
        "username": "flagger",
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": "podinfo.test",
                "text": message.message,
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": f.name, "value": f.value, "short": False} for f in message.fields
                ],
            }
        ],
    }


async def send(session: aiohttp.ClientSession, kind: str, message: AlertMessage, **kw: Any) -> Seen:
    server = ChatServer()
    async with serve(server) as url:
        await make_notifier(kind, f"{url}/hook", **kw).send(session, message)
    (seen,) = server.seen
    assert seen.headers["Content-Type"].startswith("application/json")
    return seen


async def test_slack_body_and_colors(session: aiohttp.ClientSession) -> None:
    assert (await send(session, "slack", MESSAGE)).body == slack_like("good")
    assert (await send(session, "slack", ERROR)).body == slack_like("danger", ERROR)


async def test_slack_sends_the_token_as_bearer_only_when_configured(
    session: aiohttp.ClientSession,
) -> None:
    with_token = await send(session, "slack", MESSAGE, token="xoxb-secret", channel="ops")
    assert with_token.headers["Authorization"] == "Bearer xoxb-secret"
    assert with_token.body["channel"] == "ops"
    assert "Authorization" not in (await send(session, "slack", MESSAGE)).headers


async def test_discord_gets_the_slack_body_on_the_slack_path(
    session: aiohttp.ClientSession,
) -> None:
    seen = await send(session, "discord", MESSAGE, token="ignored")
    assert seen.path == "/hook/slack"
    assert seen.body == slack_like("good")
    assert "Authorization" not in seen.headers
    assert make_notifier("discord", "http://d/api/slack").address == "http://d/api/slack"  # type: ignore[attr-defined]
    with_query = make_notifier("discord", "https://d/api/webhooks/1/abc?wait=true")
    assert with_query.address == "https://d/api/webhooks/1/abc/slack?wait=true"  # type: ignore[attr-defined]


async def test_rocket_uses_flaggers_blue_and_red(session: aiohttp.ClientSession) -> None:
    assert (await send(session, "rocket", MESSAGE)).body == slack_like("#0076D7")
    assert (await send(session, "rocket", ERROR)).body == slack_like("#FF0000", ERROR)


async def test_msteams_message_card(session: aiohttp.ClientSession) -> None:
    assert (await send(session, "msteams", MESSAGE)).body == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "0076D7",
        "summary": "podinfo.test",
        "sections": [
            {
                "activityTitle": "New revision detected, progressing canary analysis.",
                "activitySubtitle": "podinfo.test",
                "facts": [
                    {"name": "Target", "value": "Deployment/podinfo.test"},
                    {"name": "Failed checks threshold", "value": "5"},
                ],
            }
        ],
    }
    assert (await send(session, "msteams", ERROR)).body["themeColor"] == "FF0000"


async def test_gchat_card(session: aiohttp.ClientSession) -> None:
    assert (await send(session, "gchat", MESSAGE)).body == {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": "podinfo.test",
                    "imageUrl": "https://flagger.app/favicon.png",
                },
                "sections": [
                    {
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": "<font color=#848484><strong>New revision detected, progressing canary analysis.</strong></font>"
                                }
                            }
                        ]
                    },
                    {
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>"
                                }
                            }
                        ]
                    },
                    {
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": "Failed checks threshold<br><font color=#848484><strong>5</strong></font>"
                                }
                            }
                        ]
                    },
                ],
            }
        ]
    }


async def test_a_non_2xx_answer_raises_flaggers_bad_response_text(
    session: aiohttp.ClientSession,
) -> None:
    server = ChatServer(status=404, reply="no_service")
    async with serve(server) as url:
        with pytest.raises(NotificationError) as raised:
            await make_notifier("slack", url).send(session, MESSAGE)
    assert str(raised.value) == "sending notification bad response 404: no_service"


async def test_notifications_go_through_the_configured_proxy(
    session: aiohttp.ClientSession,
) -> None:
    proxy = ChatServer()
    async with serve(proxy) as proxy_url:
        target = "http://chat.example.invalid/services/T000/B000"
        await make_notifier("slack", target, proxy=proxy_url).send(session, MESSAGE)
    (seen,) = proxy.seen
    assert seen.url == target, "the proxy received the absolute-form request for the chat tool"
    assert seen.body == slack_like("good")


def test_bad_notifier_settings_are_refused_with_a_reason() -> None:
    with pytest.raises(NotifierConfigError, match="empty slack channel"):
        make_notifier("slack", "http://x/", channel="")
    with pytest.raises(NotifierConfigError, match="invalid msteams URL"):
        make_notifier("msteams", "not a url")
    with pytest.raises(NotifierConfigError, match="not supported"):
        make_notifier("pagerduty", "http://x/")


# --- alert messages and routing ------------------------------------------------------------


def make_canary(alerts: list[dict[str, Any]] | None = None, **analysis: Any) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 3, **analysis, "alerts": alerts},
            },
        }
    )


@pytest.mark.parametrize(
    ("analysis", "routing"),
    [
        ({"stepWeight": 10, "maxWeight": 50}, "Weight step: 10 max: 50"),
        ({"stepWeights": [1, 2, 10, 80]}, "Weight steps: 1,2,10,80 max: 0"),
        ({"iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]}, "A/B Testing"),
        ({"iterations": 5}, "Blue/Green"),
    ],
)
def test_metadata_alert_fields(analysis: dict[str, Any], routing: str) -> None:
    message = build_alert_message(
        make_canary(**analysis), "hi", None, metadata=True, cluster_name="eu-1"
    )
    assert message.severity == "info"
    assert [(f.name, f.value) for f in message.fields] == [
        ("Cluster", "eu-1"),
        ("Target", "Service/podinfo.test"),
        ("Failed checks threshold", "3"),
        ("Progress deadline", "600s"),
        ("Traffic routing", routing),
    ]


def test_severity_filter_info_gets_all_warn_gets_warn_and_error_error_gets_error() -> None:
    table = {
        (provider, alert): provider_receives(provider, alert)
        for provider in ("", "info", "warn", "error")
        for alert in ("info", "warn", "error")
    }
    assert table == {
        ("", "info"): True,
        ("", "warn"): True,
        ("", "error"): True,
        ("info", "info"): True,
        ("info", "warn"): True,
        ("info", "error"): True,
        ("warn", "info"): False,
        ("warn", "warn"): True,
        ("warn", "error"): True,
        ("error", "info"): False,
        ("error", "warn"): False,
        ("error", "error"): True,
    }


def provider(name: str, address: str | None = None, **spec: Any) -> AlertProvider:
    return AlertProvider.model_validate(
        {
            "metadata": {"name": name, "namespace": "test"},
            "spec": {"type": "slack", **({"address": address} if address else {}), **spec},
        }
    )


async def test_alerts_reach_providers_by_severity_and_skip_the_global_notifier(
    session: aiohttp.ClientSession,
) -> None:
    info_server, error_server, global_server = ChatServer(), ChatServer(), ChatServer()
    async with (
        serve(info_server) as info_url,
        serve(error_server) as error_url,
        serve(global_server) as global_url,
    ):
        alerts = [
            {"name": "all", "providerRef": {"name": "info"}},
            {"name": "errors", "severity": "error", "providerRef": {"name": "err"}},
        ]
        canary = make_canary(alerts)
        resolved = [
            resolve_alert_provider(
                CanaryAlert.model_validate(alerts[0]), provider("info", info_url)
            ),
            resolve_alert_provider(
                CanaryAlert.model_validate(alerts[1]), provider("err", error_url)
            ),
        ]
        alerter = Alerter(session, global_notifier=make_notifier("slack", global_url))
        await alerter.alert(canary, "Canary is waiting for approval.", False, "warn", resolved)
        await alerter.alert(canary, "Failed checks threshold reached 3", False, "error", resolved)
    assert [s.body["attachments"][0]["text"] for s in info_server.seen] == [
        "Canary is waiting for approval.",
        "Failed checks threshold reached 3",
    ]
    assert [s.body["attachments"][0]["text"] for s in error_server.seen] == [
        "Failed checks threshold reached 3"
    ]
    assert global_server.seen == []


async def test_canaries_without_alerts_use_the_global_notifier_with_cluster_field(
    session: aiohttp.ClientSession,
) -> None:
    server = ChatServer()
    async with serve(server) as url:
        notifier = global_notifier(
            GlobalNotifierSettings(slack_url=url, slack_channel="releases", slack_user="bot")
        )
        alerter = Alerter(session, global_notifier=notifier, cluster_name="eu-1")
        deliveries = await alerter.alert(make_canary(), "hello", False, "info")
    assert [d.ok for d in deliveries] == [True]
    body = server.seen[0].body
    assert (body["channel"], body["username"]) == ("releases", "bot")
    assert body["attachments"][0]["fields"] == [
        {"title": "Cluster", "value": "eu-1", "short": False}
    ]


async def test_a_dead_chat_tool_never_raises_and_is_counted(session: aiohttp.ClientSession) -> None:
    server = ChatServer(status=500, reply="down")
    async with serve(server) as url:
        alerter = Alerter(session, global_notifier=make_notifier("msteams", url))
        deliveries = await alerter.alert(make_canary(), "x", True, "error")
        alerter_unreachable = Alerter(session, global_notifier=make_notifier("gchat", url))
    unreachable = await alerter_unreachable.alert(make_canary(), "x", False, "info")
    assert [(d.ok, d.error) for d in deliveries] == [
        (False, "sending notification bad response 500: down")
    ]
    assert alerter.failures == 1
    assert not unreachable[0].ok
    assert unreachable[0].error.startswith("sending notification failed: ")


def test_global_notifier_flags_msteams_wins_slack_needs_channel_env_overrides() -> None:
    assert global_notifier(GlobalNotifierSettings()) is None
    assert global_notifier(GlobalNotifierSettings(slack_url="http://s/")) is None
    teams = global_notifier(
        GlobalNotifierSettings(slack_url="http://s/", slack_channel="c", msteams_url="http://t/")
    )
    assert teams is not None
    assert teams.type_name == "msteams"
    settings = GlobalNotifierSettings(slack_url="http://flag/").with_environment(
        {"SLACK_URL": "http://env/", "SLACK_TOKEN": "tok"}
    )
    assert (settings.slack_url, settings.slack_token) == ("http://env/", "tok")


def test_provider_address_comes_from_secret_key_address_and_token() -> None:
    alert = CanaryAlert.model_validate({"name": "a", "providerRef": {"name": "p"}})
    with_secret = provider("p", secretRef={"name": "s"})
    resolved = resolve_alert_provider(
        alert, with_secret, {"address": "http://from-secret/", "token": "t"}
    )
    assert resolved.notifier.address == "http://from-secret/"  # type: ignore[attr-defined]
    assert resolved.notifier.token == "t"  # type: ignore[attr-defined]
    assert resolved.severity == "info"
    assert resolved.provider_key == "p.test"
    with pytest.raises(AlertProviderError, match=r"alert provider p\.test secret does not contain"):
        resolve_alert_provider(alert, with_secret, {"token": "t"})


async def test_the_alerter_asks_the_controllers_resolver_and_survives_its_errors(
    session: aiohttp.ClientSession,
) -> None:
    server = ChatServer()
    alerts = [{"name": "team", "severity": "warn", "providerRef": {"name": "team"}}]
    canary = make_canary(alerts)
    async with serve(server) as url:

        async def resolve(of: Canary) -> list[ResolvedAlertProvider]:
            assert of is canary
            return [
                resolve_alert_provider(CanaryAlert.model_validate(alerts[0]), provider("team", url))
            ]

        async def broken(of: Canary) -> list[ResolvedAlertProvider]:
            raise RuntimeError("cache not ready")

        sender = Alerter(session, resolve_providers=resolve)
        assert await sender.alert(canary, "info only", False, "info") == []
        delivered = await sender.alert(canary, "Canary is waiting for approval.", False, "warn")
        # The scheduler calls through its port, with keywords.
        port: Alerts = sender
        await port.alert(
            canary, "Canary promotion is waiting for approval.", metadata=False, severity="warn"
        )
        failing = Alerter(session, resolve_providers=broken)
        assert await failing.alert(canary, "x", False, "error") == []
    assert [d.destination for d in delivered] == ["team.test"]
    assert len(server.seen) == 2
    assert failing.failures == 1


def test_the_seams_import_no_http_library() -> None:
    code = (
        "import sys, coalmine.hooks, coalmine.notify;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'yarl')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
