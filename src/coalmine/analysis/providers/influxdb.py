"""InfluxDB 2.x: a Flux query over the v2 query API; the first record's `_value`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    credential,
    error_response,
    http_request,
    register,
    sample_value,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider

QUERY_TIMEOUT_SECONDS = 15.0


def _values(annotated_csv: str) -> Iterator[str]:
    """`_value` of every record of every table of Influx's CSV answer (tables separated by blank
    lines, each with a header row; annotation rows start with `#`)."""
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(annotated_csv)):
        if not row or all(cell == "" for cell in row):
            header = None
            continue
        if row[0].startswith("#"):
            continue
        if header is None:
            header = row
            continue
        if "_value" in header:
            yield row[header.index("_value")]


def first_value(annotated_csv: str) -> str | None:
    """`_value` of the first record of Influx's CSV answer; None when there is no record."""
    return next(_values(annotated_csv), None)


def all_values(annotated_csv: str) -> list[str]:
    """`_value` of every record of every table of Influx's CSV answer."""
    return list(_values(annotated_csv))


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InfluxDBProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec)
        self.headers = {"Content-Type": "application/json", "Accept": "application/csv"}
        self.org: str | None = None
        if spec.secret_ref is not None:
            token = credential(credentials, "token")
            self.org = credential(credentials, "org")
            if not token or not self.org:
                raise ProviderConfigError("influxdb credentials must contain both token and org")
            self.headers["Authorization"] = f"Token {token}"
        self.context = context

    async def _query(self, flux: str, flux_params: dict[str, str] | None = None) -> str:
        params = {"org": self.org} if self.org else None
        payload: dict[str, object] = {"query": flux, "type": "flux"}
        if flux_params:
            payload["params"] = flux_params
        body = json.dumps(payload)
        response = await http_request(
            self.context,
            "POST",
            f"{self.address}/api/v2/query",
            params=params,
            headers=self.headers,
            data=body,
            timeout=QUERY_TIMEOUT_SECONDS,
        )
        if response.status >= 400:
            raise error_response(response)
        return response.text

    async def run_query(self, query: str) -> float:
        value = first_value(await self._query(query))
        if value is None or value == "":
            # Flagger returns 0 here; coalmine treats an empty answer as "no values" (see
            # docs/decisions.md, 'Metric interval and empty results').
            raise NoValuesFound()
        return to_float(value, "_value")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """The Flux query with `params.start`, `params.stop` (RFC 3339) and `params.every`
        (`15s`) bound: every `_value` of every table (empty values as NaN). The query places
        them: `range(start: time(v: params.start), stop: time(v: params.stop))`."""
        flux_params = {
            "start": _rfc3339(start),
            "stop": _rfc3339(end),
            "every": f"{max(1, round(step))}s",
        }
        values = all_values(await self._query(query, flux_params))
        return [sample_value(value or None, "_value") for value in values]

    async def is_online(self) -> bool:
        await self._query('from(bucket: "default") |> range(start: -2h)')
        return True


register("influxdb")(InfluxDBProvider)
