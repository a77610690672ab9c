"""Calling an in-process load tester as the controller does (signed) or as a stranger (unsigned)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from coalmine.hooks.signing import sign_headers

KEY = b"test-signing-key-0123456789abcdef"
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Coroutine[Any, Any, Client]]


def payload(metadata: dict[str, Any] | None = None, namespace: str = "test") -> dict[str, Any]:
    body: dict[str, Any] = {"name": "podinfo", "namespace": namespace, "phase": "Progressing"}
    if metadata is not None:
        body["metadata"] = metadata
    return body


async def post(
    client: Client,
    path: str,
    body: Any,
    *,
    signed: bool = True,
    key: bytes = KEY,
    signed_at: float | None = None,
) -> tuple[int, str]:
    """POST `body` as JSON, signed with `key` at `signed_at` (now) unless `signed` is False."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        headers.update(
            sign_headers([key], raw, now=time.time() if signed_at is None else signed_at)
        )
    response = await client.post(path, data=raw, headers=headers)
    return response.status, await response.text()


class Target:
    """The service under load: counts requests; can hold them until released."""

    def __init__(self) -> None:
        self.requests = 0
        self.release: asyncio.Event | None = None
        self.arrivals: asyncio.Queue[None] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.arrivals.put_nowait(None)
        if self.release is not None:
            await self.release.wait()
        if request.path == "/token":
            return web.json_response({"token": "abc"})
        return web.Response(text="ok")
