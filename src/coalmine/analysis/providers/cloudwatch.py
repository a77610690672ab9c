"""Amazon CloudWatch GetMetricData, signed by botocore with credentials from botocore's chain.

The request uses CloudWatch's JSON protocol (`X-Amz-Target: GraniteServiceVersion20100801.
GetMetricData`); the MetricTemplate query is the JSON list of MetricDataQuery objects, as in
Flagger. Keys in the template's Secret win; without them, botocore's default chain applies, as
the AWS SDK does for Flagger: environment, web identity (IRSA, EKS Pod Identity), shared config
and credentials files, the container endpoint (ECS) and the instance metadata service (IMDS).
botocore is the optional extra `coalmine[aws]`; its resolution and refresh calls block, so they
run in a worker thread. The request itself goes through the shared aiohttp session.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    credential,
    http_request,
    interval_seconds,
    register,
    requesting_error,
    sample_value,
    to_float,
)
from coalmine.api.models import MetricTemplateProvider
from coalmine.outbound import safe_text

TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"
MISSING_EXTRA = "the cloudwatch provider needs botocore: install coalmine[aws]"

_chains: dict[tuple[tuple[str, str], ...], Any] = {}
"""botocore's resolved (self-refreshing) credentials per AWS_* environment: one STS or metadata
round trip per process, not per query."""


def _botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError as error:
        raise ProviderConfigError(MISSING_EXTRA) from error
    return botocore


def _chain_credentials(botocore: Any) -> Any:
    """Blocking: the default chain's current (refreshed if due) credentials."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    resolved = _chains.get(key)
    if resolved is None:
        resolved = botocore.session.Session().get_credentials()
        if resolved is None:
            raise ProviderConfigError(
                "no AWS credentials: set aws_access_key_id and aws_secret_access_key in the "
                "Secret, or give the controller credentials through the standard chain "
                "(environment, IRSA web identity, shared config, ECS container or instance role)"
            )
        _chains[key] = resolved
    return resolved.get_frozen_credentials()


class CloudWatchProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        if not spec.region:
            raise ProviderConfigError("region not specified")
        self.botocore = _botocore()
        self.region = spec.region
        self.endpoint = (spec.address or f"https://monitoring.{self.region}.amazonaws.com").rstrip(
            "/"
        )
        self.window = 10 * interval_seconds(interval, "cloudwatch")
        access_key = credential(credentials, "aws_access_key_id")
        secret_key = credential(credentials, "aws_secret_access_key")
        if bool(access_key) != bool(secret_key):
            raise ProviderConfigError(
                "the Secret must hold both aws_access_key_id and aws_secret_access_key"
            )
        self.static = None
        if access_key and secret_key:
            self.static = self.botocore.credentials.ReadOnlyCredentials(
                access_key, secret_key, credential(credentials, "aws_session_token") or None
            )
        self.context = context

    async def _credentials(self) -> Any:
        if self.static is not None:
            return self.static
        errors = self.botocore.exceptions
        try:
            return await asyncio.to_thread(_chain_credentials, self.botocore)
        except (errors.BotoCoreError, errors.ClientError) as error:
            raise ProviderError(
                f"error getting AWS credentials: {safe_text(str(error))}"
            ) from error

    async def _call(self, payload: dict[str, object]) -> tuple[int, object, str]:
        body = json.dumps(payload).encode()
        url = f"{self.endpoint}/"
        request = self.botocore.awsrequest.AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
        )
        signer = self.botocore.auth.SigV4Auth(await self._credentials(), "monitoring", self.region)
        signer.add_auth(request)
        headers = {name: str(value) for name, value in request.headers.items()}
        response = await http_request(self.context, "POST", url, headers=headers, data=body)
        return response.status, response.json_or_empty(), response.text

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """GetMetricData from `start` to `end`: every value of every result (the queries'
        `Period` is their resolution), in time order."""
        status, body, text = await self._call(
            {
                "MetricDataQueries": _queries(query),
                "StartTime": int(start),
                "EndTime": int(end),
                "ScanBy": "TimestampAscending",
            }
        )
        if status != 200:
            raise requesting_error("cloudwatch", status, text)
        results = body.get("MetricDataResults") if isinstance(body, dict) else None
        return [
            sample_value(value)
            for result in results or []
            if result.get("ReturnData", True)
            for value in result.get("Values") or []
        ]

    async def run_query(self, query: str) -> float:
        queries = _queries(query)
        now = self.context.clock()
        status, body, text = await self._call(
            {
                "MetricDataQueries": queries,
                "StartTime": int(now - self.window),
                "EndTime": int(now),
                "MaxDatapoints": 20,
            }
        )
        if status != 200:
            raise requesting_error("cloudwatch", status, text)
        results = body.get("MetricDataResults") if isinstance(body, dict) else None
        if not results:
            raise NoValuesFound("invalid response: no MetricDataResults")
        values = results[0].get("Values") or []
        if not values:
            raise NoValuesFound("invalid response: no values")
        return to_float(values[0], "value")

    async def is_online(self) -> bool:
        status, _, text = await self._call({})
        if status in (200, 400):
            return True
        raise requesting_error("cloudwatch", status, text)


def _queries(query: str) -> list[Any]:
    """The template's JSON list of MetricDataQuery."""
    try:
        queries = json.loads(query)
    except ValueError as error:
        raise ProviderError(f"error unmarshaling query: {error}") from error
    if not isinstance(queries, list):
        raise ProviderError("error unmarshaling query: expected a JSON list of MetricDataQuery")
    return queries


register("cloudwatch")(CloudWatchProvider)
