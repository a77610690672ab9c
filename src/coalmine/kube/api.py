"""The one door to the API server: lightkube's async client, speaking plain dicts; the hot
writes (on their own connections, `kube.http1`) and every watch (aiohttp) take the lean path of
`kube.hotpath`.

Every request goes through `KubeApi` so that timeouts, request counting (the scale benchmark
reports API requests per canary cycle) and error translation live in one place.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import httpx2
import msgspec
from httpx2 import HTTPStatusError
from lightkube import ApiError, AsyncClient, KubeConfig, SingleConfig
from lightkube.types import PatchType

from coalmine.kube import reads
from coalmine.kube.hotpath import ErrorReply, JsonClient
from coalmine.kube.kinds import EVENT, Kind
from coalmine.kube.ratelimit import RequestGate

Object = dict[str, Any]

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_IN_FLIGHT = 20
"""Requests (watches aside) in flight at once: httpx's keep-alive pool size. When 1,000 canaries
cycle at the same instant, the rest wait on an O(1) semaphore instead of in httpx's pool queue,
which is rescanned on every request start and end (quadratic in the burst), and the pool never
opens connections it would close again as surplus a moment later."""
FIELD_MANAGER = "coalmine"


@dataclass(frozen=True)
class ListResult:
    items: list[Object]
    resource_version: str


class NotFound(LookupError):
    """The object does not exist (HTTP 404)."""


class Conflict(RuntimeError):
    """A write lost a race (HTTP 409): re-read and decide again."""


class Gone(RuntimeError):
    """A watch resourceVersion is too old (HTTP 410): relist."""


class KubeApiError(RuntimeError):
    """Any other refusal of the API server, with its status code and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


REQUEST_ERRORS: tuple[type[Exception], ...] = (
    KubeApiError,
    NotFound,
    Conflict,
    Gone,
    httpx2.HTTPError,
    aiohttp.ClientError,
    OSError,
)
"""What a request may raise: the server's refusals, and transport errors (unreachable, reset,
timed out) of lightkube's httpx and of the hot path's aiohttp (writes and watches)."""


def _refusal(code: int, reason: str, message: str) -> Exception:
    if code == 404:
        return NotFound(message)
    if code == 409:
        return Conflict(message)
    if code == 410:
        return Gone(message)
    return KubeApiError(code, reason, message)


def _translate(error: ApiError | HTTPStatusError) -> Exception:
    if not isinstance(error, ApiError):
        # kube-apiserver answers paths outside every served group/version (a CRD that is not
        # installed) with a plain-text 404, which lightkube raises as an HTTP error
        code = error.response.status_code
        text = error.response.text.strip() or str(error)
        return _refusal(code, "", text)
    status = error.status
    return _refusal(int(status.code or 0), status.reason or "", status.message or str(error))


def _translate_reply(error: ErrorReply) -> Exception:
    """The hot path's refusal, worded as lightkube's: the Status's message, else the raw text.
    A watch's `ERROR` event carries its Status already decoded."""
    status = error.status
    if status is None:
        try:
            decoded = msgspec.json.decode(error.body)
        except msgspec.DecodeError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status = decoded
    if status is not None:
        message = status.get("message") or f"HTTP {error.code}"
        return _refusal(int(status.get("code") or error.code), status.get("reason") or "", message)
    text = error.body.decode(errors="replace").strip() or f"HTTP {error.code}"
    return _refusal(error.code, "", text)


def to_dict(obj: Any) -> Object:
    """lightkube's generic objects are dicts already; typed ones (Status) convert."""
    if isinstance(obj, dict):
        return dict(obj)
    converted: Object = obj.to_dict()
    return converted


def with_type(obj: Object, kind: Kind) -> Object:
    """kube-apiserver leaves `apiVersion` and `kind` out of the items of a built-in kind's list
    (watch events and single objects carry them); code that tells objects apart by kind needs
    them, as client-go's unstructured lists fill them in."""
    obj.setdefault("apiVersion", kind.api_version)
    obj.setdefault("kind", kind.kind)
    return obj


def load_config(
    kubeconfig: str | None = None, context: str | None = None, master: str | None = None
) -> KubeConfig | SingleConfig:
    """The given kubeconfig; else $KUBECONFIG when set; else inside a pod the service account;
    else ~/.kube/config.
    `master` (Flagger's `-master`) is an API server URL that wins over the kubeconfig's server;
    alone, it is an unauthenticated server (as client-go's BuildConfigFromFlags)."""
    if master and not kubeconfig:
        return KubeConfig.from_server(master)
    config = _load_config(kubeconfig, context)
    if not master:
        return config
    selected = config if isinstance(config, SingleConfig) else config.get()
    if selected is None:
        raise ValueError(f"{kubeconfig} has no current context")
    return selected._replace(cluster=msgspec.structs.replace(selected.cluster, server=master))


def _load_config(kubeconfig: str | None, context: str | None) -> KubeConfig | SingleConfig:
    if kubeconfig:
        config = KubeConfig.from_file(kubeconfig)
        if context is None:
            return config
        selected = config.get(context_name=context)
        if selected is None:
            raise ValueError(f"context {context!r} is not in {kubeconfig}")
        return selected
    # $KUBECONFIG wins when set (as for kubectl), then the pod's service account.
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return KubeConfig.from_service_account()
    return KubeConfig.from_env()


class KubeApi:
    """Async CRUD, patch, watch and subresources on dict objects."""

    def __init__(
        self,
        config: KubeConfig | SingleConfig,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        field_manager: str = FIELD_MANAGER,
        max_in_flight: int = MAX_IN_FLIGHT,
        qps: float = 0.0,
        burst: int = 0,
    ) -> None:
        self._client = AsyncClient(config=config, timeout=httpx2.Timeout(timeout))
        self._hot = JsonClient(
            self._client.config,
            timeout=timeout,
            max_connections=max_in_flight,
            field_manager=field_manager,
        )
        self._timeout = timeout
        self._in_flight = RequestGate(max_in_flight, qps, burst)
        self.field_manager = field_manager
        self.requests: Counter[str] = Counter()

    async def close(self) -> None:
        await self._hot.close()
        await self._client.close()

    @property
    def server(self) -> str:
        """The API server's URL, as the kubeconfig (or `--master`) gives it."""
        return str(self._client.config.cluster.server)

    async def version(self, within: float) -> Object:
        """`GET /version`: allowed to every identity, so it proves the server answers without
        needing any RBAC rule. lightkube has no call for it; its HTTP client carries the
        server's address and credentials."""
        self.requests["get version"] += 1
        http: httpx2.AsyncClient = self._client._client._client
        response = await http.get("/version", timeout=within)
        if response.status_code >= 400:
            raise KubeApiError(response.status_code, "", response.text.strip())
        body: Object = response.json()
        return body

    def _count(self, verb: str, kind: Kind) -> None:
        self.requests[f"{verb} {kind}"] += 1
        reads.spoil()  # a cycle that talks to the server is not a pure function of the caches

    @property
    def request_total(self) -> int:
        return sum(self.requests.values())

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Object:
        self._count("get", kind)
        try:
            async with self._in_flight:
                obj = await self._client.get(kind.resource, name, namespace=namespace)
            return to_dict(obj)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error

    async def get_or_none(
        self, kind: Kind, name: str, namespace: str | None = None
    ) -> Object | None:
        try:
            return await self.get(kind, name, namespace)
        except NotFound:
            return None

    async def list(
        self, kind: Kind, namespace: str | None = None, *, labels: str | None = None
    ) -> ListResult:
        self._count("list", kind)
        params: dict[str, Any] = {}
        if labels:
            params["labels"] = _parse_equality_selector(labels)
        try:
            async with self._in_flight:
                iterable = self._client.list(
                    kind.resource, namespace=_list_namespace(kind, namespace), **params
                )
                items = [with_type(to_dict(item), kind) async for item in iterable]
            return ListResult(items, iterable.resourceVersion)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        *,
        server_timeout: int = 300,
    ) -> AsyncGenerator[tuple[str, Object], None]:
        """Events after `resource_version` until the server closes the stream (after
        `server_timeout` seconds at the latest). Through the hot path's own watch pool: every
        status write comes back as a watch event, and lightkube's stream decoding cost more than
        the write. An `ERROR` event raises as a refusal (410 → `Gone`); a lost connection raises
        aiohttp's or the OS's error (in `REQUEST_ERRORS`)."""
        self._count("watch", kind)
        try:
            async for event in self._hot.watch(
                kind, _watch_namespace(kind, namespace), resource_version, server_timeout
            ):
                yield event
        except ErrorReply as error:
            raise _translate_reply(error) from error

    async def create(self, kind: Kind, obj: Mapping[str, Any]) -> Object:
        self._count("create", kind)
        if kind == EVENT:
            return await self._hot_write(partial(self._hot.create, kind, dict(obj)))
        try:
            async with self._in_flight:
                created = await self._client.create(
                    kind.resource(obj), field_manager=self.field_manager
                )
            return to_dict(created)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error

    async def replace(self, kind: Kind, obj: Mapping[str, Any]) -> Object:
        """PUT the whole object; carries `resourceVersion`, so a stale copy is a Conflict."""
        self._count("replace", kind)
        try:
            async with self._in_flight:
                replaced = await self._client.replace(
                    kind.resource(obj), field_manager=self.field_manager
                )
            return to_dict(replaced)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = PatchType.MERGE,
        status: bool = False,
    ) -> Object:
        """Merge patch by default; `status=True` writes through the status subresource.

        The hot writes (merge patches of a status, of an Event) take the lean path."""
        self._count("patch-status" if status else "patch", kind)
        if patch_type is PatchType.MERGE and (status or kind == EVENT):
            return await self._hot_write(
                partial(self._hot.merge_patch, kind, name, patch, namespace, status=status)
            )
        resource: Any = kind.resource.Status if status else kind.resource
        try:
            async with self._in_flight:
                patched = await self._client.patch(
                    resource,
                    name,
                    patch,
                    namespace=namespace,
                    patch_type=patch_type,
                    field_manager=self.field_manager,
                    force=patch_type is PatchType.APPLY,
                )
            return to_dict(patched)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error

    async def _hot_write(self, request: Callable[[], Awaitable[Object]]) -> Object:
        try:
            async with self._in_flight:
                return await request()
        except ErrorReply as error:
            raise _translate_reply(error) from error

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        self._count("delete", kind)
        try:
            async with self._in_flight:
                await self._client.delete(kind.resource, name, namespace=namespace)
        except (ApiError, HTTPStatusError) as error:
            raise _translate(error) from error


def _list_namespace(kind: Kind, namespace: str | None) -> str | None:
    """lightkube's namespace argument of a list: every namespace is `*`, and a
    cluster-scoped kind takes none."""
    if not kind.namespaced:
        return None
    return namespace or "*"


def _watch_namespace(kind: Kind, namespace: str | None) -> str | None:
    """`_list_namespace` for a URL path: None (every namespace, or a cluster-scoped kind) or
    the one namespace."""
    listed = _list_namespace(kind, namespace)
    return None if listed == "*" else listed


def _parse_equality_selector(text: str) -> dict[str, str]:
    """`a=b,c=d` into lightkube's mapping form (the controller only uses equality selectors)."""
    selector: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, _, value = part.partition("=")
        selector[key.strip()] = value.strip()
    return selector
