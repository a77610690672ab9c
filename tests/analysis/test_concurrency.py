"""A hanging metrics backend delays only the queries sent to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.analysis.providers import (
    BackendLimiter,
    ProviderContext,
    ProviderError,
    provider_for,
)
from coalmine.api.models import Canary, MetricTemplateProvider

from .conftest import FakeSources, make_canary

Serve = Callable[[web.Application], Awaitable[str]]


class HangingBackend:
    """Answers only once released; `entered` is set when a request has arrived."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.entered.set()
        await self.release.wait()
        return web.json_response({"value": 1})


async def fast(request: web.Request) -> web.Response:
    return web.json_response({"value": 2})


async def start_backends(serve: Serve) -> tuple[HangingBackend, str, str]:
    hanging = HangingBackend()
    slow_app = web.Application()
    slow_app.router.add_get("/v", hanging.handle)
    fast_app = web.Application()
    fast_app.router.add_get("/v", fast)
    return hanging, await serve(slow_app), await serve(fast_app)


async def test_hanging_backend_does_not_block_another_backend(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    hanging, slow_url, fast_url = await start_backends(serve)
    limiter = BackendLimiter(per_backend=1)
    context = ProviderContext(session, limiter=limiter, timeout=30)
    slow = provider_for(MetricTemplateProvider(type="http", address=slow_url), {}, context)
    quick = provider_for(MetricTemplateProvider(type="http", address=fast_url), {}, context)

    first = asyncio.create_task(slow.run_query("/v $.value"))
    second = asyncio.create_task(slow.run_query("/v $.value"))
    await hanging.entered.wait()
    assert await quick.run_query("/v $.value") == 2  # answered while the slow backend hangs
    assert not first.done()
    assert not second.done()
    # The per-backend limit holds the second query back instead of piling onto the slow backend.
    assert limiter.for_url(slow_url).locked()
    assert hanging.requests == 1
    hanging.release.set()
    assert await first == 1
    assert await second == 1
    assert hanging.requests == 2


async def test_canaries_on_different_backends_are_analysed_independently(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    hanging, slow_url, fast_url = await start_backends(serve)
    sources = FakeSources()
    for name, url in (("slow", slow_url), ("quick", fast_url)):
        sources.add_template(
            {
                "metadata": {"name": name, "namespace": "test"},
                "spec": {"provider": {"type": "http", "address": url}, "query": "/v $.value"},
            }
        )
    analyzer = MetricAnalyzer(session, sources, AnalysisSettings(timeout=30))

    def canary(template: str) -> Canary:
        return make_canary(
            "test",
            [{"name": template, "templateRef": {"name": template}, "thresholdRange": {"max": 5}}],
            name=template,
        )

    stuck = asyncio.create_task(analyzer.analyse(canary("slow")))
    await hanging.entered.wait()
    outcome = await analyzer.analyse(canary("quick"))
    assert outcome.ok
    assert outcome.results[0].value == 2
    assert not stuck.done()
    hanging.release.set()
    assert (await stuck).ok


async def test_a_backend_that_never_answers_times_out_with_a_clear_error(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    hanging, slow_url, _ = await start_backends(serve)
    context = ProviderContext(session, timeout=0.2)
    slow = provider_for(MetricTemplateProvider(type="http", address=slow_url), {}, context)
    with pytest.raises(
        ProviderError, match=r"request to http://127\.0\.0\.1:\d+/v timed out after 0\.2s"
    ):
        await slow.run_query("/v $.value")
    hanging.release.set()
