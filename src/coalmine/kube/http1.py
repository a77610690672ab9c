"""The hot writes' own kept-alive HTTP/1.1 connections to the API server.

Why: with the hot writes on aiohttp, aiohttp's per-request machinery (request and response
objects, header multidicts, trace hooks, timer handles, a task per request) was the largest
share of an analysing cycle left (about 15 % of the controller's CPU at 1,000 canaries). A status
merge patch or an Event needs none of it: one small request on a connection kept alive, one JSON
answer. Here a request is one `transport.write` of bytes built from a prepared head, and the
answer is parsed by httptools (llhttp, the parser of Node.js and uvicorn); the parsing is never
done by hand.

Scope: direct connections, plain or TLS with the SSL context lightkube builds from the kubeconfig.
Through a proxy the writes stay on aiohttp, which speaks CONNECT (`kube.hotpath`).

A connection is used by one request at a time and goes back to the idle list when its answer is
complete and the server keeps it alive. A request that fails, times out or is cancelled closes
its connection: what else may still arrive on it is unknown. An idle connection the server
closed is noticed (`connection_lost`) and never reused. Like aiohttp (and client-go) for a POST
or a PATCH, a request is never sent twice: a connection closed under a request is an error the
caller sees, and the controller's next cycle writes again.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools


class Reply(NamedTuple):
    """A complete answer; header names as the server sent them (HTTP/1.1: any case)."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


class MalformedReply(ConnectionError):
    """The server's bytes are not an HTTP/1.1 answer: the connection is dropped."""


class _Connection(asyncio.Protocol):
    """One connection: at most one request in flight; httptools calls the `on_*` methods."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(MalformedReply(f"malformed answer from the API server: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(
                exc or ConnectionResetError("the API server closed the connection")
            )

    # --- httptools' callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        reply = Reply(self._parser.get_status_code(), b"".join(self._body), self._headers)
        self._headers, self._body = [], []
        if waiter is None or waiter.done() or not self._parser.should_keep_alive():
            self.close()  # an answer nobody asked for, or the server's last one
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    # --- the pool's side ----------------------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None, "sent before connected"
        assert self._waiter is None, "one request at a time"
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()
        self.closed = True


class ConnectionPool:
    """Kept-alive connections to one server (`https://host:port/prefix`), opened on demand.

    The number open at once is bounded by the caller's own in-flight limit (`KubeApi`): a request
    takes an idle connection or opens one, and gives it back when its answer is complete."""

    def __init__(self, server: str, ssl_context: ssl.SSLContext, *, timeout: float) -> None:
        parsed = urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"API server URL {server!r}: expected http(s)://host[:port][/path]")
        self._host = parsed.hostname
        tls = parsed.scheme == "https"
        self._port = parsed.port or (443 if tls else 80)
        self._ssl = ssl_context if tls else None
        self.prefix = parsed.path.rstrip("/")
        """A path the server URL carries (an API server behind a path-routing proxy)."""
        self.host_header = parsed.netloc.rpartition("@")[2]
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def request(self, head: bytes, body: bytes) -> Reply:
        """Send a request (its head ends with the blank line) and wait for the whole answer,
        within the pool's timeout, connecting included."""
        async with asyncio.timeout(self._timeout):
            connection = await self._acquire()
            try:
                reply = await connection.send(head + body)
            except BaseException:
                connection.close()  # failed, timed out or cancelled: its state is unknown
                raise
        if not connection.closed:
            self._idle.append(connection)
        return reply

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._idle, self._loop = [], loop
        while self._idle:
            connection = self._idle.pop()  # the most recent: the least likely to be timed out
            if not connection.closed:
                return connection
        _, connection = await loop.create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl is not None else None,
        )
        return connection
