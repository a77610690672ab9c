"""Dynatrace: the metrics v2 query API with an API token."""

from __future__ import annotations

from typing import Any

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderContext,
    interval_seconds,
    register,
    request_ok,
    require_credential,
    sample_value,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider


class DynatraceProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec)
        self.window = 10 * interval_seconds(interval, "dynatrace")
        token = require_credential(credentials, "dynatrace_token", "dynatrace")
        self.headers = {"Authorization": f"Api-Token {token}", "Accept": "application/json"}
        self.context = context

    async def _series(self, query: str, resolution: str, start_ms: int, end_ms: int) -> list[Any]:
        """The `result` series of `/api/v2/metrics/query` (instant and range queries alike)."""
        params = {
            "metricSelector": " ".join(query.split()),
            "resolution": resolution,
            "from": str(start_ms),
            "to": str(end_ms),
        }
        response = await request_ok(
            self.context,
            "GET",
            f"{self.address}/api/v2/metrics/query",
            params=params,
            headers=self.headers,
        )
        body = response.json()
        return (body.get("result") if isinstance(body, dict) else None) or []

    async def run_query(self, query: str) -> float:
        now_ms = int(self.context.clock() * 1000)
        results = await self._series(query, "Inf", now_ms - int(self.window * 1000), now_ms)
        if not results:
            raise NoValuesFound("no result")
        data = results[0].get("data") or []
        if not data or not data[-1].get("values"):
            raise NoValuesFound("no data")
        return to_float(data[-1]["values"][0], "value")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """`/api/v2/metrics/query` from `start` to `end` at `step` (Dynatrace's finest
        resolution is one minute): every value of every series, nulls as NaN."""
        resolution = f"{max(1, round(step / 60))}m"
        return [
            sample_value(value)
            for result in await self._series(query, resolution, int(start * 1000), int(end * 1000))
            for data in result.get("data") or []
            for value in data.get("values") or []
        ]

    async def is_online(self) -> bool:
        await request_ok(
            self.context,
            "GET",
            f"{self.address}/api/v2/metrics",
            params={"pageSize": "1"},
            headers=self.headers,
        )
        return True


register("dynatrace")(DynatraceProvider)
