"""New Relic Insights: NRQL over the query API with the account's query key."""

from __future__ import annotations

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderContext,
    ProviderError,
    interval_seconds,
    register,
    request_ok,
    require_credential,
    sample_value,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider

DEFAULT_ADDRESS = "https://insights-api.newrelic.com"


class NewRelicProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec, DEFAULT_ADDRESS)
        self.since = int(interval_seconds(interval, "newrelic"))
        account = require_credential(credentials, "newrelic_account_id", "newrelic")
        self.url = f"{self.address}/v1/accounts/{account}/query"
        self.headers = {
            "X-Query-Key": require_credential(credentials, "newrelic_query_key", "newrelic"),
            "Accept": "application/json",
        }
        self.context = context

    async def _query(self, nrql: str) -> object:
        response = await request_ok(
            self.context, "GET", self.url, params={"nrql": nrql}, headers=self.headers
        )
        return response.json()

    async def run_query(self, query: str) -> float:
        body = await self._query(f"{query.strip()} SINCE {self.since} seconds ago")
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
            raise NoValuesFound("expected exactly one result")
        if results[0].get("result") is None:
            raise NoValuesFound("result is null")
        return to_float(results[0]["result"], "result")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """NRQL with `SINCE start UNTIL end TIMESERIES step` (epoch milliseconds): the first
        value of each bucket, null buckets as NaN."""
        seconds = max(1, round(step))
        nrql = (
            f"{query.strip()} SINCE {int(start * 1000)} UNTIL {int(end * 1000)} "
            f"TIMESERIES {seconds} seconds"
        )
        body = await self._query(nrql)
        buckets = body.get("timeSeries") if isinstance(body, dict) else None
        if not isinstance(buckets, list):
            raise ProviderError("answer without timeSeries (the query may already have one)")
        return [_bucket_value(bucket) for bucket in buckets]

    async def is_online(self) -> bool:
        await self._query("SELECT * FROM Metric")
        return True


register("newrelic")(NewRelicProvider)


def _bucket_value(bucket: object) -> float:
    """A TIMESERIES bucket's value: its first result's only (or first) field."""
    results = bucket.get("results") if isinstance(bucket, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise ProviderError(f"unexpected bucket {bucket!r:.200}")
    values = list(results[0].values())
    return sample_value(values[0] if values else None, "result")
