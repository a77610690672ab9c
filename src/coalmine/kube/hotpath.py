"""The controller's hot writes (a Canary's status, its Events) as raw JSON over aiohttp.

Why: at 1,000 analysing canaries the two writes of every cycle were 60 % of the controller's
CPU, nearly all of it lightkube → httpx → httpcore → anyio building, sending and decoding two
small requests. The same requests through aiohttp's connection pool, with the body encoded
once by msgspec and the answer decoded once, cost about a quarter of the CPU each. Everything
else (reads, lists, watches, other writes) stays on lightkube.

The connection is configured exactly as lightkube configures httpx from the kubeconfig: the
server URL, lightkube's SSL context (cluster CA, client certificate, `insecure-skip-tls-verify`)
and lightkube's httpx `Auth` (bearer token, token file re-read on 401, exec plugin, basic),
driven through httpx's auth-flow protocol so that its retry on 401 works as it does there.
Proxies come from the environment (`HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, `NO_PROXY`), read
once, as httpx's `trust_env` reads them when lightkube's client is made.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import httpx2
import msgspec
from lightkube import SingleConfig
from lightkube.config.client_adapter import ConnectionParams

from coalmine.kube.kinds import Kind

Object = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"


class ErrorReply(Exception):
    """A refusal: status code and the raw body; `kube.api` turns it into its error classes."""

    def __init__(self, code: int, body: bytes) -> None:
        super().__init__(code)
        self.code = code
        self.body = body


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, or None (no proxy, or `NO_PROXY` matches)."""
    parsed = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return proxies.get(parsed.scheme) or proxies.get("all")


def object_path(kind: Kind, namespace: str | None, name: str | None = None) -> str:
    """The URL path of a collection (no name) or of one object."""
    path = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    if kind.namespaced and namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{kind.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    return path


class JsonWrites:
    """POST and merge-PATCH of plain dicts on one kept-alive aiohttp connection pool."""

    def __init__(
        self, config: SingleConfig, *, timeout: float, max_connections: int, field_manager: str
    ) -> None:
        params = ConnectionParams().httpx_params(config)
        self._base = config.cluster.server.rstrip("/")
        self._ssl = params["verify"]
        self._auth: httpx2.Auth | None = params["auth"]
        self._proxy = environment_proxy(self._base)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._query = f"?fieldManager={quote(field_manager, safe='')}"
        self._session: aiohttp.ClientSession | None = None

    @property
    def proxy(self) -> str | None:
        return self._proxy

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def create(self, kind: Kind, obj: Object) -> Object:
        namespace = obj.get("metadata", {}).get("namespace")
        return await self._send("POST", object_path(kind, namespace), obj, JSON)

    async def merge_patch(
        self, kind: Kind, name: str, patch: Any, namespace: str | None, *, status: bool
    ) -> Object:
        path = object_path(kind, namespace, name) + ("/status" if status else "")
        return await self._send("PATCH", path, patch, MERGE_PATCH)

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (KubeApi may be built outside one).
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def _send(self, method: str, path: str, body: Any, content_type: str) -> Object:
        url = f"{self._base}{path}{self._query}"
        data = msgspec.json.encode(body)
        headers = {"Content-Type": content_type, "Accept": JSON}
        flow = await self._authorize(method, url, headers)
        try:
            while True:
                code, content, reply_headers = await self._once(method, url, data, headers)
                if (
                    code != 401
                    or flow is None
                    or not await self._retry(flow, code, content, reply_headers, headers)
                ):
                    break
        finally:
            if flow is not None:
                await flow.aclose()
        if code >= 400:
            raise ErrorReply(code, content)
        decoded: Object = msgspec.json.decode(content)
        return decoded

    async def _once(
        self, method: str, url: str, data: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        async with self._session_now().request(
            method, url, data=data, headers=headers, proxy=self._proxy
        ) as reply:
            content = await reply.read()
            return reply.status, content, dict(reply.headers) if reply.status == 401 else {}

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


def _copy_authorization(request: httpx2.Request, headers: dict[str, str]) -> None:
    value = request.headers.get("Authorization")
    if value is not None:
        headers["Authorization"] = value
