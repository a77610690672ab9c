"""A canary's webhooks pointed at the load tester: the usual Flagger set-up, end to end in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from binaries import require_binary
from coalmine.api.models import Canary, CanaryWebhook
from coalmine.hooks import keys
from coalmine.hooks.client import create_session, post_json
from coalmine.hooks.payloads import hooks_of_type
from coalmine.hooks.webhooks import WebhookClient, WebhookError
from coalmine.loadtester import LoadTesterConfig, create_app
from coalmine.loadtester.server import RUNNER_KEY


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


KEY = b"controller-and-loadtester-share-this"


@pytest.fixture(autouse=True)
def controller_signs() -> Iterator[None]:
    """The controller's process-wide key, as `--webhook-signing-key-file` installs it."""
    keys.install((KEY,))
    yield
    keys.install(())


@pytest.fixture
async def loadtester() -> AsyncIterator[tuple[web.Application, str]]:
    app = create_app(LoadTesterConfig(namespace_regexp="test", signing_keys=(KEY,)))
    runner, url = await start(app)
    yield app, url
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


def canary(loadtester_url: str, target_url: str, namespace: str = "test") -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {
                "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "10s",
                    "threshold": 2,
                    "stepWeight": 50,
                    "webhooks": [
                        {
                            "name": "load-test",
                            "url": f"{loadtester_url}/",
                            "metadata": {"cmd": f"hey -n 3 -c 1 {target_url}"},
                        },
                        {
                            "name": "approval",
                            "type": "confirm-promotion",
                            "url": f"{loadtester_url}/gate/check",
                        },
                        {
                            "name": "manual-rollback",
                            "type": "rollback",
                            "url": f"{loadtester_url}/rollback/check",
                        },
                    ],
                },
            },
            "status": {"phase": "Progressing"},
        }
    )


async def test_load_test_gate_and_rollback_switch_through_the_load_tester(
    loadtester: tuple[web.Application, str], session: aiohttp.ClientSession
) -> None:
    require_binary("hey")
    app, lt_url = loadtester
    hits: list[str] = []

    async def target_handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    target_app = web.Application()
    target_app.router.add_get("/{tail:.*}", target_handler)
    target_runner, target_url = await start(target_app)
    try:
        the_canary = canary(lt_url, f"{target_url}/")
        client = WebhookClient(session)

        def hook(hook_type: str, of: Canary = the_canary) -> CanaryWebhook:
            (found,) = hooks_of_type(of, hook_type)
            return found

        await client.call(the_canary, hook("rollout"), "Progressing")
        await app[RUNNER_KEY].wait_idle()
        assert len(hits) == 3

        with pytest.raises(WebhookError, match=r"^Forbidden$"):
            await client.call(the_canary, hook("confirm-promotion"), "Progressing")
        opened = await post_json(
            session, f"{lt_url}/gate/open", {"name": "podinfo", "namespace": "test"}
        )
        assert opened.status == 202
        await client.call(the_canary, hook("confirm-promotion"), "Progressing")

        # A rollback hook answers 2xx to ask for a rollback: closed, it refuses.
        with pytest.raises(WebhookError):
            await client.call(the_canary, hook("rollback"), "Progressing")
        opened = await post_json(
            session, f"{lt_url}/rollback/open", {"name": "podinfo", "namespace": "test"}
        )
        assert opened.status == 202
        await client.call(the_canary, hook("rollback"), "Progressing")

        other_team = canary(lt_url, f"{target_url}/", namespace="other")
        with pytest.raises(WebhookError, match=r"^Forbidden$"):
            await client.call(other_team, hook("rollout", other_team), "Progressing")
    finally:
        await target_runner.cleanup()


def acceptance_hook(loadtester_url: str, command: str) -> CanaryWebhook:
    """Flagger's tutorial pre-rollout check, unchanged but for the address."""
    return CanaryWebhook.model_validate(
        {
            "name": "acceptance-test",
            "type": "pre-rollout",
            "url": f"{loadtester_url}/",
            "timeout": "30s",
            "metadata": {"type": "bash", "cmd": command},
        }
    )


@pytest.fixture
async def token_server() -> AsyncIterator[str]:
    """podinfo's /token: answers a POST with a JSON token."""

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"token": "eyJhbGciOi", "expires_at": "never"})

    app = web.Application()
    app.router.add_post("/token", token)
    runner, url = await start(app)
    yield url
    await runner.cleanup()


async def test_flaggers_curl_pipe_grep_hook_runs_unchanged_when_signed(
    loadtester: tuple[web.Application, str], session: aiohttp.ClientSession, token_server: str
) -> None:
    require_binary("curl")
    _, lt_url = loadtester
    the_canary = canary(lt_url, token_server)
    client = WebhookClient(session)
    passing = acceptance_hook(lt_url, f"curl -sd 'test' {token_server}/token | grep token")
    await client.call(the_canary, passing, "Progressing")
    failing = acceptance_hook(lt_url, f"curl -sd 'test' {token_server}/token | grep nothing")
    with pytest.raises(WebhookError, match=r"failed: : exit status 1$"):
        await client.call(the_canary, failing, "Progressing")


async def test_a_controller_without_the_key_is_refused(
    loadtester: tuple[web.Application, str], session: aiohttp.ClientSession, token_server: str
) -> None:
    _, lt_url = loadtester
    keys.install(())
    hook = acceptance_hook(lt_url, f"curl -sd 'test' {token_server}/token | grep token")
    with pytest.raises(WebhookError, match="the request is not signed"):
        await WebhookClient(session).call(canary(lt_url, token_server), hook, "Progressing")
    keys.install((b"a-different-key-of-some-length",))
    with pytest.raises(WebhookError, match="does not match"):
        await WebhookClient(session).call(canary(lt_url, token_server), hook, "Progressing")
