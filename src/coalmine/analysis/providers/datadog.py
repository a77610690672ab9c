"""Datadog: the v1 timeseries query API, keys from the Secret."""

from __future__ import annotations

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderContext,
    ProviderError,
    http_request,
    interval_seconds,
    register,
    request_ok,
    require_credential,
    sample_value,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider
from coalmine.outbound import safe_text

DEFAULT_ADDRESS = "https://api.datadoghq.com"
API_KEY = "datadog_api_key"
APPLICATION_KEY = "datadog_application_key"


class DatadogProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec, DEFAULT_ADDRESS)
        self.window = 10 * interval_seconds(interval, "datadog")
        self.headers = {
            "DD-API-KEY": require_credential(credentials, API_KEY, "datadog"),
            "DD-APPLICATION-KEY": require_credential(credentials, APPLICATION_KEY, "datadog"),
        }
        self.context = context

    async def run_query(self, query: str) -> float:
        now = int(self.context.clock())
        params = {"from": str(int(now - self.window)), "to": str(now), "query": query}
        response = await request_ok(
            self.context, "GET", f"{self.address}/api/v1/query", params=params, headers=self.headers
        )
        body = response.json()
        series = body.get("series") if isinstance(body, dict) else None
        if not series:
            raise NoValuesFound("invalid response: no series")
        points = series[0].get("pointlist") or []
        if not points:
            raise NoValuesFound("invalid response: no points")
        return to_float(points[0][1], "value")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """`/api/v1/query` over [start, end]: every point of every series (Datadog picks the
        rollup interval for the span; `.rollup(avg, N)` in the query sets it)."""
        params = {"from": str(int(start)), "to": str(int(end)), "query": query}
        response = await request_ok(
            self.context, "GET", f"{self.address}/api/v1/query", params=params, headers=self.headers
        )
        body = response.json()
        if isinstance(body, dict) and body.get("status") == "error":
            raise ProviderError(f"query error: {safe_text(str(body.get('error')), 300)}")
        series = body.get("series") if isinstance(body, dict) else None
        return [
            sample_value(point[1], "point")
            for one in series or []
            for point in one.get("pointlist") or []
            if isinstance(point, list) and len(point) == 2
        ]

    async def is_online(self) -> bool:
        response = await http_request(
            self.context, "GET", f"{self.address}/api/v1/validate", headers=self.headers
        )
        if response.status != 200:
            raise ProviderError(f"error response: {safe_text(response.text, 500)}")
        return True


register("datadog")(DatadogProvider)
