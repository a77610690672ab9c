"""Isolation of outbound calls: hanging destinations never starve another canary's calls.

The probe behind issue 12: 120 canaries whose hooks hung filled the one shared pool (100
connections) and three healthy canaries were rolled back with "timeout after 5s" while their
webhook server received nothing. Here the hanging hooks go either to one destination or to one
destination each (a listening socket per canary: the probe's shape, every canary its own
service), and the healthy canaries' hooks go to another server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from coalmine.analysis.providers.base import (
    BackendLimiter,
    ProviderContext,
    ProviderError,
    http_request,
)
from coalmine.api.models import CanaryWebhook
from coalmine.hooks.client import create_session
from coalmine.hooks.webhooks import WebhookClient, WebhookError

from .outbound_rig import Answering, Hanging, canary, serve

HANGING_CANARIES = 110


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with create_session() as client:
        yield client


@pytest.mark.parametrize("destinations", [1, HANGING_CANARIES], ids=["one-host", "host-each"])
async def test_healthy_canaries_hooks_succeed_beside_a_hundred_hanging_ones(
    session: aiohttp.ClientSession, destinations: int
) -> None:
    client = WebhookClient(session)
    hanging = Hanging(expect=min(destinations, 20))
    healthy = Answering()
    async with (
        serve(hanging.handle, ports=destinations) as hanging_urls,
        serve(healthy.handle) as (healthy_url,),
    ):
        stuck = [
            asyncio.create_task(
                client.call(
                    canary(f"stuck-{i}"),
                    CanaryWebhook(name="gate", url=hanging_urls[i % destinations], timeout="120s"),
                    "Progressing",
                )
            )
            for i in range(HANGING_CANARIES)
        ]
        async with asyncio.timeout(60):
            await hanging.arrived.wait()  # the hanging destinations hold connections now
        healthy_hook = CanaryWebhook(name="load-test", url=f"{healthy_url}/gate", timeout="5s")
        results = await asyncio.gather(
            *(client.call(canary(f"healthy-{i}"), healthy_hook, "Progressing") for i in range(3)),
            return_exceptions=True,
        )
        assert results == [None, None, None], "every healthy canary's hook passed"
        assert len(healthy.seen) == 3
        assert all(not task.done() for task in stuck), "the hanging hooks were still waiting"
        hanging.released.set()
        outcomes = await asyncio.gather(*stuck, return_exceptions=True)
    assert all(isinstance(outcome, WebhookError) for outcome in outcomes)
    assert all(str(outcome).endswith("504: released") for outcome in outcomes)


async def test_waiting_for_a_busy_backend_counts_against_the_request_timeout(
    session: aiohttp.ClientSession,
) -> None:
    """A metric query queued behind a hanging query to the same backend fails within its own
    timeout instead of waiting for the hanging one; another backend answers meanwhile."""
    hanging = Hanging()
    healthy = Answering(body=b"{}", content_type="application/json")
    context = ProviderContext(session, limiter=BackendLimiter(per_backend=1), timeout=0.5)
    async with serve(hanging.handle) as (slow,), serve(healthy.handle) as (fast,):
        holder = asyncio.create_task(http_request(context, "GET", slow, timeout=120))
        await hanging.arrived.wait()
        async with asyncio.timeout(60):
            with pytest.raises(ProviderError, match=r"timed out after 0\.5s"):
                await http_request(context, "GET", f"{slow}/queued")
            answer = await http_request(context, "GET", f"{fast}/api/v1/query")
        assert answer.status == 200
        assert hanging.seen == 1, "the queued query never reached the hanging backend"
        hanging.released.set()
        assert (await holder).status == 504
