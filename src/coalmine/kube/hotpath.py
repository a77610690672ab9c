"""The controller's hot traffic as raw JSON: its two writes per cycle (a Canary's status, its
Events) on connections of its own (`kube.http1`; through a proxy, on aiohttp), and every watch
on aiohttp.

Why: at 1,000 analysing canaries the two writes of every cycle were 60 % of the controller's
CPU, nearly all of it lightkube → httpx → httpcore → anyio building, sending and decoding two
small requests. The same requests through aiohttp's connection pool, with the body encoded
once by msgspec and the answer decoded once, cost about a quarter of the CPU each; aiohttp's
own per-request machinery was then the largest share left, so the writes moved to connections
of their own (`kube.http1`), where a request is one prepared buffer. Each status
write then comes back as a watch event of the Canary: lightkube's watch (httpx line iteration,
its event and object decoding) was the next largest cost, so watches stream here too, each line
decoded once by msgspec into plain dicts. Everything else (reads, lists, other writes) stays on
lightkube.

The connection is configured exactly as lightkube configures httpx from the kubeconfig: the
server URL, lightkube's SSL context (cluster CA, client certificate, `insecure-skip-tls-verify`)
and lightkube's httpx `Auth` (bearer token, token file re-read on 401, exec plugin, basic),
driven through httpx's auth-flow protocol so that its retry on 401 works as it does there.
Proxies come from the environment (`HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, `NO_PROXY`), read
once, as httpx's `trust_env` reads them when lightkube's client is made.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import httpx2
import msgspec
from aiohttp.payload import BytesPayload
from lightkube import SingleConfig
from lightkube.config.client_adapter import ConnectionParams

from coalmine.kube.http1 import ConnectionPool, Reply
from coalmine.kube.kinds import Kind

Object = dict[str, Any]
_Reply = TypeVar("_Reply")

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"
WATCH_READ_GRACE_SECONDS = 30.0
"""A watch's socket may stay silent this long past the server's `timeoutSeconds` before the
connection counts as lost (the server ends a quiet watch at its timeout)."""


class ErrorReply(Exception):
    """A refusal: status code and the raw body, or the Status of a watch's `ERROR` event;
    `kube.api` turns it into its error classes."""

    def __init__(self, code: int, body: bytes, status: Object | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.body = body
        self.status = status


class WatchEvent(msgspec.Struct):
    """One line of a watch stream."""

    type: str
    object: Object


_decode_event = msgspec.json.Decoder(WatchEvent).decode
_decode_object = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, or None (no proxy, or `NO_PROXY` matches)."""
    parsed = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return proxies.get(parsed.scheme) or proxies.get("all")


def object_path(kind: Kind, namespace: str | None, name: str | None = None) -> str:
    """The URL path of a collection (no name; every namespace without one) or of one object."""
    path = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    if kind.namespaced and namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{kind.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    return path


class JsonClient:
    """POST and merge-PATCH of plain dicts on kept-alive connections of their own (through a
    proxy: an aiohttp pool), and watches on an aiohttp pool of their own.

    The writes' connections are bounded by the controller's in-flight limit (through a proxy,
    aiohttp's pool is capped at `max_connections`); a watch holds its connection for minutes, so
    it must not take one of those places: watches use a pool without a limit, with no total
    timeout and a read timeout just above the server's."""

    def __init__(
        self, config: SingleConfig, *, timeout: float, max_connections: int, field_manager: str
    ) -> None:
        params = ConnectionParams().httpx_params(config)
        self._base = config.cluster.server.rstrip("/")
        self._ssl = params["verify"]
        self._auth: httpx2.Auth | None = params["auth"]
        self._proxy = environment_proxy(self._base)
        self._connect_timeout = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._query = f"?fieldManager={quote(field_manager, safe='')}"
        self._pool = None if self._proxy else ConnectionPool(self._base, self._ssl, timeout=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None

    @property
    def proxy(self) -> str | None:
        return self._proxy

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()
        self._session = self._watch_session = None

    async def create(self, kind: Kind, obj: Object) -> Object:
        namespace = obj.get("metadata", {}).get("namespace")
        return await self._send("POST", object_path(kind, namespace), obj, JSON)

    async def merge_patch(
        self, kind: Kind, name: str, patch: Any, namespace: str | None, *, status: bool
    ) -> Object:
        path = object_path(kind, namespace, name) + ("/status" if status else "")
        return await self._send("PATCH", path, patch, MERGE_PATCH)

    async def watch(
        self, kind: Kind, namespace: str | None, resource_version: str, server_timeout: int
    ) -> AsyncGenerator[tuple[str, Object], None]:
        """`(type, object)` of each event until the server ends the stream. A refusal before
        the stream, or an `ERROR` event in it, raises `ErrorReply`; a lost connection raises
        aiohttp's (or the OS's) error. Parameters as lightkube's watch sends them, and bookmarks
        asked for: a quiet kind's watch then resumes from a recent resourceVersion (`Informer`)."""
        query = urlencode(
            {
                "allowWatchBookmarks": "true",
                "timeoutSeconds": server_timeout,
                "resourceVersion": resource_version,
                "watch": "true",
            }
        )
        url = f"{self._base}{object_path(kind, namespace)}?{query}"
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._connect_timeout,
            sock_read=server_timeout + WATCH_READ_GRACE_SECONDS,
        )
        headers = {"Accept": JSON}
        reply = await self._request(self._watch_session_now(), "GET", url, None, headers, timeout)
        try:
            if reply.status >= 400:
                raise ErrorReply(reply.status, await reply.read())
            async for line in _lines(reply.content):
                event = _decode_event(line)
                if event.type == "ERROR":
                    status = event.object
                    raise ErrorReply(int(status.get("code") or 0), line, status)
                yield event.type, event.object
        finally:
            reply.release()  # closes the connection unless the stream was read to its end

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (KubeApi may be built outside one).
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, skip_auto_headers=("User-Agent",)
            )
        return self._session

    def _watch_session_now(self) -> aiohttp.ClientSession:
        if self._watch_session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl)
            self._watch_session = aiohttp.ClientSession(
                connector=connector,
                # each watch passes its own; never aiohttp's default 5-minute total
                timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout),
                skip_auto_headers=("User-Agent",),
            )
        return self._watch_session

    async def _send(self, method: str, path: str, body: Any, content_type: str) -> Object:
        payload = _encode(body)
        headers = {"Accept": JSON, "Content-Type": content_type}
        if self._pool is None:
            status, content = await self._send_via_proxy(method, path, payload, headers)
        else:
            status, content = await self._send_direct(self._pool, method, path, payload, headers)
        if status >= 400:
            raise ErrorReply(status, content)
        decoded: Object = _decode_object(content)
        return decoded

    async def _send_direct(
        self,
        pool: ConnectionPool,
        method: str,
        path: str,
        payload: bytes,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        target = f"{pool.prefix}{path}{self._query}"
        tail = f"Content-Length: {len(payload)}\r\n\r\n"

        def send() -> Awaitable[Reply]:
            # built at each try: a retry after a 401 carries the auth flow's fresh credentials
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            head = f"{method} {target} HTTP/1.1\r\nHost: {pool.host_header}\r\n{lines}{tail}"
            return pool.request(head.encode("latin-1"), payload)

        async def refusal(reply: Reply) -> tuple[int, bytes, dict[str, str]] | None:
            if reply.status != 401:
                return None
            decoded = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in reply.headers
            }
            return reply.status, reply.body, decoded

        url = f"{self._base}{path}{self._query}"
        reply = await self._signed(method, url, headers, send, refusal)
        return reply.status, reply.body

    async def _send_via_proxy(
        self, method: str, path: str, payload: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """Through aiohttp, which speaks to proxies (CONNECT tunnels for TLS)."""
        url = f"{self._base}{path}{self._query}"
        # A payload made here skips aiohttp's lookup of a payload type for `bytes`.
        data = BytesPayload(payload, content_type=headers.pop("Content-Type"))
        reply = await self._request(self._session_now(), method, url, data, headers, None)
        try:
            content = await reply.read()
        finally:
            reply.release()
        return reply.status, content

    async def _request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        data: BytesPayload | None,
        headers: dict[str, str],
        deadlines: aiohttp.ClientTimeout | None,
    ) -> aiohttp.ClientResponse:
        """The aiohttp reply (its body unread, unless it is a final 401)."""
        extra: dict[str, Any] = {} if deadlines is None else {"timeout": deadlines}

        def send() -> Awaitable[aiohttp.ClientResponse]:
            return session.request(
                method, url, data=data, headers=headers, proxy=self._proxy, **extra
            )

        async def refusal(
            reply: aiohttp.ClientResponse,
        ) -> tuple[int, bytes, dict[str, str]] | None:
            if reply.status != 401:
                return None
            return reply.status, await reply.read(), dict(reply.headers)

        return await self._signed(method, url, headers, send, refusal)

    async def _signed(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        send: Callable[[], Awaitable[_Reply]],
        refusal: Callable[[_Reply], Awaitable[tuple[int, bytes, dict[str, str]] | None]],
    ) -> _Reply:
        """`send()`'s reply: lightkube's auth flow signs `headers` and, on a 401 (`refusal`
        gives its code, body and headers), may have the request sent once more with fresh
        credentials."""
        flow = await self._authorize(method, url, headers)
        try:
            while True:
                reply = await send()
                if flow is None:
                    return reply
                refused = await refusal(reply)
                if refused is None or not await self._retry(flow, *refused, headers):
                    return reply
        finally:
            if flow is not None:
                await flow.aclose()

    async def _authorize(
        self, method: str, url: str, headers: dict[str, str]
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response] | None:
        """Start lightkube's auth flow and copy its Authorization header (None without auth)."""
        if self._auth is None:
            return None
        flow = self._auth.async_auth_flow(httpx2.Request(method, url))
        request = await anext(flow)
        _copy_authorization(request, headers)
        return flow

    @staticmethod
    async def _retry(
        flow: AsyncGenerator[httpx2.Request, httpx2.Response],
        code: int,
        content: bytes,
        reply_headers: dict[str, str],
        headers: dict[str, str],
    ) -> bool:
        """Hand the 401 to the auth flow; True when it wants the request sent again."""
        try:
            request = await flow.asend(
                httpx2.Response(code, headers=reply_headers, content=content)
            )
        except StopAsyncIteration:
            return False
        _copy_authorization(request, headers)
        return True


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The stream's non-blank lines, split here: an object's line can be far longer than
    aiohttp's line-length limit. A long line's pieces are joined once, not re-copied per chunk."""
    pending: list[bytes] = []
    async for chunk in stream.iter_any():
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
        lines = chunk.split(b"\n")
        rest = lines.pop()
        pending = [rest] if rest else []
        for line in lines:
            if line and not line.isspace():
                yield line
    tail = b"".join(pending)
    if tail and not tail.isspace():
        yield tail


def _copy_authorization(request: httpx2.Request, headers: dict[str, str]) -> None:
    value = request.headers.get("Authorization")
    if value is not None:
        if "\r" in value or "\n" in value:  # it would end the header and start another
            raise ValueError("the credentials' Authorization header carries a line break")
        headers["Authorization"] = value
