"""The MetricProvider seam: one module per backend, a registry by type name, shared HTTP plumbing.

Every provider speaks HTTP through one `aiohttp.ClientSession` owned by the caller, with a timeout
on each request and a per-backend semaphore, so a slow or hanging backend only ever delays the
canaries that query it: the wait for the semaphore counts against the request's own timeout.
Answers are read up to `ProviderContext.max_response_bytes`; texts from a backend reach messages
only through `coalmine.outbound.safe_text`, URLs only through `redact_url`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from coalmine.api.models import MetricTemplateProvider, parse_go_duration
from coalmine.outbound import redact_url, safe_text
from coalmine.outbound.http import MAX_METRIC_RESPONSE_BYTES, ResponseTooLarge, read_text_capped

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_BACKEND_CONCURRENCY = 8
NO_VALUES_FOUND = "no values found"

Credentials = Mapping[str, bytes | str]


class AnalysisError(Exception):
    """Base of every error this package reports; the message is meant for an event."""


class ProviderError(AnalysisError):
    """A backend answered with an error, or could not be reached."""


class NoValuesFound(ProviderError):
    """The query ran but matched nothing: a Warning (no traffic yet?), not an Error."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{NO_VALUES_FOUND}: {detail}" if detail else NO_VALUES_FOUND)


class ProviderConfigError(AnalysisError):
    """The MetricTemplate's provider section or its Secret cannot make a working provider."""


class MetricProvider(Protocol):
    """One metrics backend, configured from a MetricTemplate provider section and its Secret."""

    async def run_query(self, query: str) -> float:
        """The query's single value; raises NoValuesFound or ProviderError."""
        ...

    async def is_online(self) -> bool:
        """Whether the backend answers (Flagger's `IsOnline`); raises ProviderError with the cause."""
        ...


class RangeMetricProvider(Protocol):
    """A backend that can also answer range queries (the judge and `aggregate:` need them)."""

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """Every sample of every series in [start, end] (unix seconds) at `step`, time-ordered
        per series, NaN kept as NaN; an empty list when nothing matched; raises ProviderError."""
        ...


def provider_type(provider: object) -> str:
    """The MetricTemplate type a provider object serves (for messages)."""
    return str(getattr(provider, "provider_type", "") or type(provider).__name__)


def sample_value(value: Any, what: str = "sample") -> float:
    """One range sample as a float: null (a gap) is NaN, as the judge expects; text that is not
    a number is a ProviderError."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ProviderError(f"{what} {value!r:.50} is not a number") from error


def range_capable(provider: object) -> RangeMetricProvider | None:
    """`provider` as a RangeMetricProvider, or None when its backend has no range queries."""
    if callable(getattr(provider, "run_range_query", None)):
        return provider  # type: ignore[return-value]
    return None


class BackendLimiter:
    """One semaphore per backend (scheme://host:port) so a flood of queries to one backend queues
    behind that backend only."""

    def __init__(self, per_backend: int = DEFAULT_BACKEND_CONCURRENCY) -> None:
        if per_backend < 1:
            raise ValueError("per-backend concurrency must be at least 1")
        self.per_backend = per_backend
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def for_url(self, url: str) -> asyncio.Semaphore:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        semaphore = self._semaphores.get(key)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.per_backend)
            self._semaphores[key] = semaphore
        return semaphore


@dataclass
class ProviderContext:
    """What every provider shares: the caller's HTTP session, the limiter and the clock."""

    session: aiohttp.ClientSession
    limiter: BackendLimiter = field(default_factory=BackendLimiter)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    clock: Callable[[], float] = time.time
    # The Kubernetes API server for providers that read it (externalmetrics, keptn): the caller
    # supplies the base URL and a bearer token derived from its own kube configuration.
    kube_api: str | None = None
    kube_token: str | None = None
    kube_ssl: ssl.SSLContext | None = None
    max_response_bytes: int = MAX_METRIC_RESPONSE_BYTES


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    reason: str
    text: str

    def json_or_empty(self) -> Any:
        """The body as JSON, `{}` when empty or not JSON (error answers may be anything)."""
        try:
            return json.loads(self.text) if self.text else {}
        except ValueError:
            return {}

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError as error:
            raise ProviderError(
                f"error unmarshaling result: {error}, '{safe_text(self.text, 200)}'"
            ) from error


async def http_request(
    context: ProviderContext,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    data: bytes | str | None = None,
    verify_tls: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - a per-request budget, not a cancel scope
) -> HTTPResponse:
    """One request under the backend's semaphore, all within one total timeout (the wait for the
    semaphore included), its answer read up to the context's cap; transport failures become
    ProviderError so callers only ever see this package's errors."""
    seconds = timeout if timeout is not None else context.timeout
    shown = redact_url(url)
    try:
        async with (
            asyncio.timeout(seconds),
            context.limiter.for_url(url),
            context.session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=data,
                ssl=ssl_context if ssl_context is not None and verify_tls else verify_tls,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response,
        ):
            text = await read_text_capped(response, context.max_response_bytes)
            return HTTPResponse(response.status, response.reason or "", text)
    except TimeoutError as error:
        raise ProviderError(f"request to {shown} timed out after {seconds:g}s") from error
    except ResponseTooLarge as error:
        raise ProviderError(f"request to {shown} failed: {error}") from error
    except (aiohttp.ClientError, ValueError) as error:
        raise ProviderError(f"request to {shown} failed: {safe_text(str(error))}") from error


async def request_ok(
    context: ProviderContext,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    data: bytes | str | None = None,
) -> HTTPResponse:
    """`http_request` that must be answered 200: the vendor APIs' check (datadog, dynatrace,
    newrelic, splunk), failing with Flagger's `error response: <body>: status <code>`."""
    response = await http_request(context, method, url, params=params, headers=headers, data=data)
    if response.status != 200:
        raise ProviderError(
            f"error response: {safe_text(response.text, 500)}: status {response.status}"
        )
    return response


def credential(credentials: Credentials | None, key: str) -> str | None:
    """A Secret value as text (Secrets hold bytes; tests and callers may pass str)."""
    if not credentials or key not in credentials:
        return None
    value = credentials[key]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as error:
            raise ProviderConfigError(f"secret key {key} is not UTF-8 text") from error
    return value


def require_credential(credentials: Credentials, key: str, provider: str) -> str:
    value = credential(credentials, key)
    if not value:
        raise ProviderConfigError(f"{provider} credentials does not contain {key}")
    return value


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def validated_address(spec: MetricTemplateProvider, default: str | None = None) -> str:
    """The provider address, required to be an absolute http(s) URL (Flagger's message)."""
    address = spec.address or default
    if not address:
        raise ProviderConfigError(f"{spec.type} address is required")
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderConfigError(
            f"{spec.type} address {safe_text(redact_url(address), 200)} is not a valid URL"
        )
    return address.rstrip("/")


def interval_seconds(interval: str, provider: str) -> float:
    """The metric interval as seconds; providers that need it fail like Flagger on bad input."""
    seconds = parse_go_duration(interval)
    if seconds is None or seconds <= 0:
        raise ProviderConfigError(f"{provider}: error parsing metric interval {interval!r}")
    return seconds


def to_float(value: Any, what: str) -> float:
    """A backend's number (JSON number or numeric string); NaN and null are 'no values'."""
    if value is None:
        raise NoValuesFound(f"{what} is null")
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ProviderError(f"{what} {value!r} is not a number") from error
    if math.isnan(number):
        raise NoValuesFound(f"{what} is NaN")
    return number


def requesting_error(provider: str, status: int, text: str) -> ProviderError:
    """The cloud APIs' failure (cloudwatch, stackdriver): `error requesting <provider>: status …`."""
    return ProviderError(f"error requesting {provider}: status {status}: {safe_text(text, 500)}")


def error_response(response: HTTPResponse) -> ProviderError:
    return ProviderError(
        f"error response: Status {response.status} {safe_text(response.reason, 100)}: "
        f"{safe_text(response.text, 500)}"
    )


ProviderFactory = Callable[
    [MetricTemplateProvider, Credentials, ProviderContext, str], MetricProvider
]

_REGISTRY: dict[str, ProviderFactory] = {}


def register(type_name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def decorator(factory: ProviderFactory) -> ProviderFactory:
        _REGISTRY[type_name] = factory
        return factory

    return decorator


def registered_factories() -> Mapping[str, ProviderFactory]:
    """The factories registered so far; `providers.registry` imports every backend first."""
    return _REGISTRY
