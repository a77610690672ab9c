"""The scheduler wired to the real `WebhookClient` against a local HTTP hook.

The fakes elsewhere raise their own errors; this checks the seam itself: a refusing hook's body is
what the scheduler's halt event shows, and the payload carries the phase the scheduler chose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from coalmine.hooks.client import create_session
from coalmine.hooks.webhooks import WebhookClient

from .fakes import Rig, make_canary


@pytest.fixture
async def hook_url() -> AsyncIterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """A hook answering 400 `load test failed` while `answers` holds 400s, else 200."""
    bodies: list[dict[str, Any]] = []
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        status = answers.pop(0) if answers else 200
        return web.Response(status=status, text="load test failed" if status >= 300 else "")

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/", bodies, answers
    finally:
        await runner.cleanup()


async def test_a_refusing_pre_rollout_hook_body_appears_in_the_halt_event(
    hook_url: tuple[str, list[dict[str, Any]], list[int]],
) -> None:
    url, bodies, answers = hook_url
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "maxWeight": 20,
        "webhooks": [{"name": "smoke", "type": "pre-rollout", "url": url}],
    }
    rig = Rig(make_canary("Deployment", analysis))
    async with create_session() as session:
        rig.scheduler.deps = dataclasses.replace(
            rig.scheduler.deps, webhooks=WebhookClient(session)
        )
        await rig.new_revision()
        answers.append(400)
        await rig.cycles(2)
        assert rig.status.failed_checks == 1
        assert rig.recorder.messages[-1] == (
            "Halt podinfo.default advancement pre-rollout check smoke failed load test failed"
        )
        await rig.cycle()
    assert rig.recorder.messages[-2:] == [
        "Pre-rollout check smoke passed",
        "Advance podinfo.default canary weight 10",
    ]
    assert [body["phase"] for body in bodies] == ["Progressing", "Progressing"]
    assert all(body["name"] == "podinfo" and body["namespace"] == "default" for body in bodies)
