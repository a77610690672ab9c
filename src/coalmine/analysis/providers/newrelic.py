"""New Relic Insights: NRQL over the query API with the account's query key."""

from __future__ import annotations

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderContext,
    interval_seconds,
    register,
    request_ok,
    require_credential,
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

    async def is_online(self) -> bool:
        await self._query("SELECT * FROM Metric")
        return True


register("newrelic")(NewRelicProvider)
