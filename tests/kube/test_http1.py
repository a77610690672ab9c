"""The hot writes' own connections (`kube.http1`) against servers on loopback that answer with
exact bytes: keep-alive, a server's close, chunked answers, timeouts, cancellation, bad bytes."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from coalmine.kube.http1 import ConnectionPool, MalformedReply

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
HEAD = b"PATCH /apis/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"


@dataclass
class Server:
    """Answers each request it reads with `answer(n)` (n counts requests on all connections)."""

    answer: Callable[[int], Awaitable[bytes | None]]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""
    close_after_answer: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                answer = await self.answer(len(self.requests))
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(answer: Callable[[int], Awaitable[bytes | None]]) -> AsyncIterator[Server]:
    server = Server(answer)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    async with listening:
        yield server
        listening.close()


def _pool(server: Server, timeout: float = 5.0, path: str = "") -> ConnectionPool:
    return ConnectionPool(server.url + path, ssl.create_default_context(), timeout=timeout)


async def _always(answer: bytes) -> AsyncIterator[Server]:
    async def reply(_: int) -> bytes:
        return answer

    async for server in _serve(reply):
        yield server


@pytest.fixture
async def ok_server() -> AsyncIterator[Server]:
    async for server in _always(OK):
        yield server


async def test_requests_in_turn_share_one_kept_alive_connection(ok_server: Server) -> None:
    pool = _pool(ok_server)
    replies = [await pool.request(HEAD, b"{}") for _ in range(3)]
    await pool.close()
    assert [(r.status, r.body) for r in replies] == [(200, b"{}")] * 3
    assert ok_server.connections == 1
    assert ok_server.requests[0] == HEAD + b"{}"


async def test_requests_at_once_each_get_their_own_answer_on_their_own_connection() -> None:
    async def echo(n: int) -> bytes:
        await asyncio.sleep(0.05 if n % 2 else 0)  # answers complete out of order
        body = str(n).encode()
        return b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async for server in _serve(echo):
        pool = _pool(server)
        replies = await asyncio.gather(*(pool.request(HEAD, b"{}") for _ in range(4)))
        await pool.close()
        assert sorted(int(r.body) for r in replies) == [1, 2, 3, 4]
        assert server.connections == 4


async def test_a_chunked_answer_is_joined_and_its_headers_kept() -> None:
    chunked = (
        b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n'
    )
    async for server in _always(chunked):
        pool = _pool(server)
        reply = await pool.request(HEAD, b"{}")
        await pool.close()
        assert (reply.status, reply.body) == (401, b'{"a": 1}')
        assert (b"Www-Authenticate", b"Bearer") in reply.headers


async def test_after_the_servers_connection_close_answer_the_next_request_reconnects() -> None:
    closing = OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    async for server in _always(closing):
        pool = _pool(server)
        first = await pool.request(HEAD, b"{}")
        second = await pool.request(HEAD, b"{}")
        await pool.close()
        assert (first.status, second.status) == (200, 200)
        assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused(ok_server: Server) -> None:
    ok_server.close_after_answer = True  # as a server does at its idle timeout
    pool = _pool(ok_server)
    await pool.request(HEAD, b"{}")
    await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
    reply = await pool.request(HEAD, b"{}")
    await pool.close()
    assert reply.status == 200
    assert ok_server.connections == 2


async def test_a_server_that_never_answers_times_out_and_its_connection_is_dropped() -> None:
    async def silent(n: int) -> bytes | None:
        await asyncio.sleep(3600)
        return None

    async for server in _serve(silent):
        pool = _pool(server, timeout=0.2)
        with pytest.raises(TimeoutError):
            await pool.request(HEAD, b"{}")
        assert pool._idle == []
        await pool.close()


async def test_a_cancelled_request_never_hands_its_late_answer_to_the_next() -> None:
    async def slow_first(n: int) -> bytes:
        if n == 1:
            await asyncio.sleep(0.3)
            return OK.replace(b"{}", b"[]")
        return OK

    async for server in _serve(slow_first):
        pool = _pool(server)
        first = asyncio.create_task(pool.request(HEAD, b"{}"))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        reply = await pool.request(HEAD, b"{}")
        await pool.close()
        assert reply.body == b"{}"
        assert server.connections == 2


async def test_a_connection_closed_under_a_request_is_a_connection_error() -> None:
    async def hang_up(n: int) -> None:
        return None

    async for server in _serve(hang_up):
        pool = _pool(server)
        with pytest.raises(ConnectionError):
            await pool.request(HEAD, b"{}")
        await pool.close()


async def test_bytes_that_are_not_http_are_a_malformed_reply_not_a_hang() -> None:
    async for server in _always(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"):
        pool = _pool(server)
        with pytest.raises(MalformedReply):
            await pool.request(HEAD, b"{}")
        assert pool._idle == []
        await pool.close()


async def test_the_server_urls_path_and_host_are_kept(ok_server: Server) -> None:
    pool = _pool(ok_server, path="/k8s/clusters/c-1/")
    assert pool.prefix == "/k8s/clusters/c-1"
    assert pool.host_header == ok_server.url.removeprefix("http://")


def test_a_server_url_without_http_or_a_host_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unix:///run/k\.sock"):
        ConnectionPool("unix:///run/k.sock", ssl.create_default_context(), timeout=1.0)


async def test_an_unreachable_server_is_a_refused_connection() -> None:
    pool = ConnectionPool("http://127.0.0.1:9", ssl.create_default_context(), timeout=2.0)
    with pytest.raises(ConnectionRefusedError):
        await pool.request(HEAD, b"{}")


def test_a_pool_used_again_under_another_event_loop_opens_new_connections() -> None:
    """A CLI verb may run `asyncio.run` twice with one client: an idle connection of the first
    loop (still open: the server here lives in a thread of its own) cannot serve the second."""

    class KeepAlive(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pool = ConnectionPool(
            f"http://127.0.0.1:{server.server_address[1]}",
            ssl.create_default_context(),
            timeout=5.0,
        )
        first = asyncio.run(pool.request(HEAD, b"{}"))
        second = asyncio.run(pool.request(HEAD, b"{}"))
        assert (first.status, second.status) == (200, 200)
    finally:
        server.shutdown()
        server.server_close()
