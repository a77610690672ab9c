"""Prometheus (and anything speaking its HTTP API: Thanos, Mimir, VictoriaMetrics) via the
instant-query endpoint `/api/v1/query`."""

from __future__ import annotations

from typing import Any

from coalmine.analysis.providers.base import (
    Credentials,
    HTTPResponse,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    basic_auth,
    credential,
    error_response,
    http_request,
    register,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider


def collapse_whitespace(query: str) -> str:
    """Templates are written over many indented lines; Prometheus gets one line like Flagger sends."""
    return " ".join(query.split())


class PrometheusProvider:
    def __init__(
        self,
        address: str,
        context: ProviderContext,
        *,
        headers: dict[str, str] | None = None,
        verify_tls: bool = True,
    ) -> None:
        self.address = address
        self.context = context
        self.headers = headers or {}
        self.verify_tls = verify_tls

    @classmethod
    def from_spec(
        cls,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str = "1m",
    ) -> PrometheusProvider:
        address = validated_address(spec)
        headers: dict[str, str] = {}
        for name, values in (spec.headers or {}).items():
            if values:
                headers[name] = ", ".join(values)
        if spec.secret_ref is not None:
            token = credential(credentials, "token")
            if token:
                headers["Authorization"] = f"Bearer {token}"
            else:
                username = credential(credentials, "username")
                password = credential(credentials, "password")
                if not username:
                    raise ProviderConfigError(
                        f"{spec.type} credentials does not contain either username or token"
                    )
                if not password:
                    raise ProviderConfigError(f"{spec.type} credentials does not contain password")
                headers["Authorization"] = basic_auth(username, password)
        return cls(address, context, headers=headers, verify_tls=not spec.insecure_skip_verify)

    async def query_response(self, query: str, at: float | None = None) -> HTTPResponse:
        params = {"query": collapse_whitespace(query)}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return await http_request(
            self.context,
            "GET",
            f"{self.address}/api/v1/query",
            params=params,
            headers=self.headers,
            verify_tls=self.verify_tls,
        )

    async def run_query(self, query: str) -> float:
        return await self.run_query_at(query, None)

    async def run_query_at(self, query: str, at: float | None) -> float:
        """`run_query` at a given evaluation time (tests over backfilled data use it)."""
        response = await self.query_response(query, at)
        if response.status >= 400:
            raise error_response(response)
        return parse_query_result(response.json())

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """`/api/v1/query_range`: the samples of every series, NaN kept (the judge decides)."""
        params = {
            "query": collapse_whitespace(query),
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        response = await http_request(
            self.context,
            "GET",
            f"{self.address}/api/v1/query_range",
            params=params,
            headers=self.headers,
            verify_tls=self.verify_tls,
        )
        if response.status >= 400:
            raise error_response(response)
        return parse_range_result(response.json())

    async def is_online(self) -> bool:
        value = await self.run_query("vector(1)")
        if value != 1:
            raise ProviderError(f"query vector(1) returned {value:g}, expected 1")
        return True


def parse_query_result(body: Any) -> float:
    """Flagger reads the last sample of a vector (or a scalar); a matrix is ambiguous."""
    if not isinstance(body, dict) or body.get("status") not in (None, "success"):
        raise ProviderError(f"query failed: {body!r:.300}")
    data = body.get("data") or {}
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type in ("scalar", "string"):
        if not isinstance(result, list) or len(result) != 2:
            raise NoValuesFound()
        return to_float(result[1], "value")
    if not isinstance(result, list) or not result:
        raise NoValuesFound()
    value: float | None = None
    for sample in result:
        if "values" in sample:
            raise ProviderError("query returned multiple values")
        pair = sample.get("value")
        if not isinstance(pair, list) or len(pair) != 2:
            raise ProviderError(f"unexpected sample {sample!r:.200}")
        try:
            value = to_float(pair[1], "value")
        except NoValuesFound:
            value = None
    if value is None:
        raise NoValuesFound()
    return value


def parse_range_result(body: Any) -> list[float]:
    """A matrix answer's sample values (series after series), as floats with NaN kept."""
    if not isinstance(body, dict) or body.get("status") not in (None, "success"):
        raise ProviderError(f"query failed: {body!r:.300}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ProviderError(f"range query returned {data.get('resultType')!r}, not a matrix")
    values: list[float] = []
    for series in data.get("result") or []:
        for pair in series.get("values") or []:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProviderError(f"unexpected sample {pair!r:.200}")
            try:
                values.append(float(pair[1]))
            except (TypeError, ValueError) as error:
                raise ProviderError(f"sample {pair[1]!r:.50} is not a number") from error
    return values


@register("prometheus")
def _factory(
    spec: MetricTemplateProvider, credentials: Credentials, context: ProviderContext, interval: str
) -> PrometheusProvider:
    return PrometheusProvider.from_spec(spec, credentials, context, interval)
