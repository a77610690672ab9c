"""The watch stream's transport edges, against a real local HTTP server (aiohttp) that streams
what kube-apiserver can stream but a test cannot make it do on demand: lines cut anywhere by
chunk boundaries, an `ERROR` event of any code, a connection lost mid-line, a token rotated
between two requests. The client under test is the real `KubeApi`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from coalmine.kube.api import (
    REQUEST_ERRORS,
    Conflict,
    Gone,
    KubeApi,
    KubeApiError,
    NotFound,
    load_config,
)
from coalmine.kube.kinds import CANARY, CONFIG_MAP, EVENT, NAMESPACE, TRAFFIC_ROUTE

Stream = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


@dataclass
class StubServer:
    """Answers every GET with `stream` (a watch body written as it likes); notes each request."""

    url: str = ""
    stream: Stream | None = None
    token_file: Path | None = None
    accepted_token: str = ""
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        assert self.stream is not None
        await self.stream(request, response)
        return response

    async def write(self, request: web.Request) -> web.StreamResponse:
        """A status merge patch or a create: answered with the body it carried, as stored."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        written = await request.json()
        return web.json_response({**written, "metadata": {"name": "a", "resourceVersion": "9"}})

    def _refused(self, request: web.Request) -> web.StreamResponse | None:
        authorization = request.headers.get("Authorization", "")
        self.requests.append((request.path, dict(request.query), authorization))
        if self.accepted_token and authorization != f"Bearer {self.accepted_token}":
            if self.token_file is not None:  # the kubelet rotates the token meanwhile
                self.token_file.write_text(self.accepted_token)
            return web.json_response(
                {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "no"},
                status=401,
            )
        return None


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    server = StubServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    app.router.add_route("*", "/{tail:.*}", server.write)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def kubeconfig(tmp_path: Path, stub: StubServer, user: dict[str, Any] | None = None) -> str:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": stub.url}}],
        "users": [{"name": "stub", "user": user or {}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        "current-context": "stub",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
async def api(tmp_path: Path, stub: StubServer) -> AsyncIterator[KubeApi]:
    client = KubeApi(load_config(kubeconfig(tmp_path, stub)))
    yield client
    await client.close()


def event(kind: str, name: str, rv: int, **data: str) -> bytes:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "data": data,
    }
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def error_event(code: int, reason: str, message: str) -> bytes:
    status = {"kind": "Status", "status": "Failure", "code": code, "reason": reason}
    return json.dumps({"type": "ERROR", "object": {**status, "message": message}}).encode() + b"\n"


def pieces(*parts: bytes) -> Stream:
    """A stream written as these pieces, each its own chunk, a moment apart."""

    async def write(request: web.Request, response: web.StreamResponse) -> None:
        for part in parts:
            await response.write(part)
            await asyncio.sleep(0.005)

    return write


async def collect(
    api: KubeApi, namespace: str | None = "ns", seen: list[tuple[str, str, str]] | None = None
) -> list[tuple[str, str, str]]:
    """The events of one watch as (type, name, data.v); into `seen` as they come when given."""
    seen = [] if seen is None else seen
    async with contextlib.aclosing(api.watch(CONFIG_MAP, namespace, "7")) as events:
        async for kind, obj in events:
            seen.append((kind, obj["metadata"]["name"], obj["data"].get("v", "")))
    return seen


async def test_lines_are_decoded_wherever_the_chunks_cut_them(
    api: KubeApi, stub: StubServer
) -> None:
    first, second = event("ADDED", "a", 8, v="1"), event("MODIFIED", "a", 9, v="2")
    big = "x" * 300_000
    long_line = event("ADDED", "big", 10, v=big)
    third = event("DELETED", "a", 11, v="2")
    stub.stream = pieces(
        first[:10],
        first[10:] + second[:5],  # a line's end and the next one's start in one chunk
        second[5:] + b"\n\r\n",  # blank lines between events are skipped
        *(long_line[i : i + 40_000] for i in range(0, len(long_line), 40_000)),
        third.rstrip(b"\n"),  # the last line without its newline
    )
    assert await collect(api) == [
        ("ADDED", "a", "1"),
        ("MODIFIED", "a", "2"),
        ("ADDED", "big", big),
        ("DELETED", "a", "2"),
    ]


async def test_a_watch_sends_lightkubes_parameters_and_asks_for_bookmarks(
    api: KubeApi, stub: StubServer
) -> None:
    stub.stream = pieces()
    await collect(api)
    await collect(api, None)  # every namespace
    async with contextlib.aclosing(api.watch(NAMESPACE, "ns", "7", server_timeout=60)) as events:
        assert [item async for item in events] == []
    async with contextlib.aclosing(api.watch(TRAFFIC_ROUTE, None, "7")) as events:
        assert [item async for item in events] == []
    watch = {
        "watch": "true",
        "resourceVersion": "7",
        "timeoutSeconds": "300",
        "allowWatchBookmarks": "true",
    }
    assert [(path, query) for path, query, _ in stub.requests] == [
        ("/api/v1/namespaces/ns/configmaps", watch),
        ("/api/v1/configmaps", watch),
        ("/api/v1/namespaces", {**watch, "timeoutSeconds": "60"}),
        ("/apis/kuma.io/v1alpha1/trafficroutes", watch),
    ]


@pytest.mark.parametrize(
    ("code", "reason", "message", "error"),
    [
        (410, "Expired", "too old resource version: 7 (12)", Gone),
        (500, "InternalError", "Timeout: Too large resource version: 99, current: 12", None),
        (404, "NotFound", "the server could not find the requested resource", NotFound),
        (409, "Conflict", "conflict", Conflict),
    ],
)
async def test_an_error_event_raises_the_refusal_its_status_names(
    api: KubeApi,
    stub: StubServer,
    code: int,
    reason: str,
    message: str,
    error: type[Exception] | None,
) -> None:
    stub.stream = pieces(event("ADDED", "a", 8, v="1"), error_event(code, reason, message))
    seen: list[tuple[str, str, str]] = []
    with pytest.raises(error or KubeApiError) as refused:
        await collect(api, "ns", seen)
    assert seen == [("ADDED", "a", "1")]
    assert str(refused.value) == message
    if error is None:
        assert isinstance(refused.value, KubeApiError)
        assert (refused.value.code, refused.value.reason) == (code, reason)


async def test_a_connection_lost_mid_line_is_a_transport_error_not_a_refusal(
    api: KubeApi, stub: StubServer
) -> None:
    """The informer re-lists after a transport error (the server may have lost its state) but
    resumes after a refusal, so the two must not be confused."""

    async def cut(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(event("ADDED", "a", 8, v="1") + b'{"type":"MODIFIED","obj')
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()

    stub.stream = cut
    with pytest.raises(REQUEST_ERRORS) as lost:
        await collect(api)
    assert not isinstance(lost.value, KubeApiError | NotFound | Conflict | Gone)


async def _watch(api: KubeApi) -> object:
    return await collect(api)


async def _status_write(api: KubeApi) -> object:
    written = await api.patch(CANARY, "a", {"status": {"iterations": 2}}, "ns", status=True)
    return written["status"]


async def _event(api: KubeApi) -> object:
    body = {"metadata": {"name": "e", "namespace": "ns"}, "reason": "Synced"}
    return (await api.create(EVENT, body))["reason"]


# A watch streams on aiohttp; the hot writes go on connections of their own: one auth flow.
AUTHORIZED = pytest.mark.parametrize(
    ("call", "answer"),
    [
        (_watch, [("ADDED", "a", "1")]),
        (_status_write, {"iterations": 2}),
        (_event, "Synced"),
    ],
    ids=["watch", "status write", "event"],
)


@AUTHORIZED
async def test_a_401_rereads_the_token_file_and_the_request_is_sent_again(
    tmp_path: Path, stub: StubServer, call: Callable[[KubeApi], Awaitable[object]], answer: object
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("expired")
    stub.token_file, stub.accepted_token = token_file, "rotated"
    stub.stream = pieces(event("ADDED", "a", 8, v="1"))
    api = KubeApi(load_config(kubeconfig(tmp_path, stub, {"tokenFile": str(token_file)})))
    try:
        assert await call(api) == answer
    finally:
        await api.close()
    assert [authorization for _, _, authorization in stub.requests] == [
        "Bearer expired",
        "Bearer rotated",
    ]


@AUTHORIZED
async def test_a_401_the_auth_flow_cannot_cure_is_a_401_refusal(
    tmp_path: Path, stub: StubServer, call: Callable[[KubeApi], Awaitable[object]], answer: object
) -> None:
    stub.accepted_token = "the-real-one"
    api = KubeApi(load_config(kubeconfig(tmp_path, stub, {"token": "wrong"})))
    try:
        with pytest.raises(KubeApiError) as refused:
            await call(api)
    finally:
        await api.close()
    assert (refused.value.code, str(refused.value)) == (401, "no")
    assert len(stub.requests) == 1


async def test_the_hot_writes_keep_the_path_the_server_url_carries(
    tmp_path: Path, stub: StubServer
) -> None:
    """An API server behind a path-routing proxy (`server: https://proxy/k8s/clusters/c-1`)."""
    stub.url += "/k8s/clusters/c-1"
    api = KubeApi(load_config(kubeconfig(tmp_path, stub)))
    try:
        await api.patch(CANARY, "a", {"status": {"iterations": 1}}, "ns", status=True)
    finally:
        await api.close()
    path, query, _ = stub.requests[0]
    assert path == "/k8s/clusters/c-1/apis/flagger.app/v1beta1/namespaces/ns/canaries/a/status"
    assert query == {"fieldManager": "coalmine"}
