"""Fixtures of the load tester tests: in-process load testers (signed by default) and a target."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from coalmine.loadtester import LoadTesterConfig, create_app

from .loadtester_client import KEY, Client, MakeClient, Target


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(**config: Any) -> Client:
        config.setdefault("signing_keys", (KEY,))
        client = Client(TestServer(create_app(LoadTesterConfig(**config))))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    peer = Target()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", peer.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield peer, f"http://{host}:{port}/"
    if peer.release is not None:
        peer.release.set()
    await runner.cleanup()
