"""Serving the load tester with deadlines aiohttp lacks: a slow client cannot hold a connection.

aiohttp's server has no header timeout: a client that sends headers one byte a minute keeps its
connection (and memory) for ever. `serve` wraps the server's protocol factory: a connection that
has not delivered a complete request head within the header timeout is closed. The body has its
own deadline in the handler; idle keep-alive connections close after `keepalive_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from coalmine.loadtester.server import CONFIG_KEY, SERVED_KEY

KEEPALIVE_TIMEOUT_SECONDS = 15.0


def header_deadline(
    factory: Callable[[], Any], served: set[int], timeout_seconds: float
) -> Callable[[], Any]:
    """A protocol factory whose connections close unless a request head arrives in time."""
    loop = asyncio.get_running_loop()

    def expire(protocol: Any) -> None:
        if id(protocol) in served:
            served.discard(id(protocol))
            return
        transport = getattr(protocol, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.close()

    def make() -> Any:
        protocol = factory()
        loop.call_later(timeout_seconds, expire, protocol)  # keeps `protocol` (and its id) alive
        return protocol

    return make


async def serve(
    app: web.Application, host: str, port: int
) -> tuple[web.AppRunner, asyncio.Server, int]:
    """Start serving `app`; the runner (to clean up), the listening server and its port."""
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS)
    await runner.setup()
    assert runner.server is not None
    factory = header_deadline(
        runner.server, app[SERVED_KEY], app[CONFIG_KEY].header_timeout_seconds
    )
    try:
        server = await asyncio.get_running_loop().create_server(factory, host, port)
    except OSError:
        await runner.cleanup()
        raise
    bound = server.sockets[0].getsockname()[1]
    return runner, server, int(bound)


async def stop(runner: web.AppRunner, server: asyncio.Server) -> None:
    server.close()
    await runner.cleanup()
