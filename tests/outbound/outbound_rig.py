"""Local peers for the outbound tests: HTTP servers on 127.0.0.1 and a forward proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from coalmine.api.models import Canary

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler, ports: int = 1) -> AsyncIterator[list[str]]:
    """One application answering on `ports` listening sockets of 127.0.0.1 (each socket is a
    destination of its own for the client: scheme, host and port); yields their base URLs."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    for _ in range(ports):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield [f"http://{host}:{port}" for host, port, *_ in runner.addresses]
    finally:
        await runner.cleanup()


@dataclass
class Hanging:
    """A peer that accepts every request and answers only once released (then 504)."""

    released: asyncio.Event = field(default_factory=asyncio.Event)
    seen: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 1

    async def handle(self, request: web.Request) -> web.Response:
        self.seen += 1
        if self.seen >= self.expect:
            self.arrived.set()
        await self.released.wait()
        return web.Response(status=504, text="released")


@dataclass
class Answering:
    """A peer that answers at once with a fixed status and body, counting requests."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(str(request.url))
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@dataclass
class ForwardProxy:
    """A plain HTTP forward proxy: takes absolute-form requests (`POST http://host/path`),
    records the target and relays the request with its own client (which ignores the
    environment, so the proxy never proxies itself)."""

    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = str(request.url)
        self.seen.append(target)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("host", "proxy-connection", "proxy-authorization")
        }
        async with (
            aiohttp.ClientSession(trust_env=False) as client,
            client.request(
                request.method, target, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            return web.Response(
                status=answer.status,
                body=body,
                content_type=answer.content_type,
            )


def canary(name: str, namespace: str = "default", **analysis: Any) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 1, **analysis},
            },
        }
    )
