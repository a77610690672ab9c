"""Amazon CloudWatch GetMetricData, signed with AWS Signature Version 4.

The request uses CloudWatch's JSON protocol (`X-Amz-Target: GraniteServiceVersion20100801.
GetMetricData`); the MetricTemplate query is the JSON list of MetricDataQuery objects, as in
Flagger. SigV4 is the small documented algorithm, implemented here with hashlib/hmac instead of
pulling in botocore.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

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
    to_float,
)
from coalmine.api.models import MetricTemplateProvider

TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((_encode(_unquote(key)), _encode(_unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def sigv4_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    when: dt.datetime,
    session_token: str | None = None,
) -> dict[str, str]:
    """The request's headers plus `X-Amz-Date`, `Authorization` (and the session token), per
    AWS's documented Signature Version 4 algorithm."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    parts = urlsplit(url)
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed.setdefault("host", parts.netloc)
    signed["x-amz-date"] = amz_date
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/-_.~"),
            canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_key).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    result = dict(headers)
    result["X-Amz-Date"] = amz_date
    if session_token:
        result["X-Amz-Security-Token"] = session_token
    result["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return result


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
        self.region = spec.region
        self.endpoint = (spec.address or f"https://monitoring.{self.region}.amazonaws.com").rstrip(
            "/"
        )
        self.window = 10 * interval_seconds(interval, "cloudwatch")
        # Secret keys first (an explicit choice in the template), then the standard environment.
        self.access_key = credential(credentials, "aws_access_key_id") or os.environ.get(
            "AWS_ACCESS_KEY_ID"
        )
        self.secret_key = credential(credentials, "aws_secret_access_key") or os.environ.get(
            "AWS_SECRET_ACCESS_KEY"
        )
        self.session_token = credential(credentials, "aws_session_token") or os.environ.get(
            "AWS_SESSION_TOKEN"
        )
        if not self.access_key or not self.secret_key:
            raise ProviderConfigError(
                "no AWS credentials: set aws_access_key_id and aws_secret_access_key in the "
                "Secret, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
            )
        self.context = context

    async def _call(self, payload: dict[str, object]) -> tuple[int, object, str]:
        body = json.dumps(payload).encode()
        url = f"{self.endpoint}/"
        headers = sigv4_headers(
            "POST",
            url,
            {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
            body,
            access_key=self.access_key or "",
            secret_key=self.secret_key or "",
            session_token=self.session_token,
            region=self.region,
            service="monitoring",
            when=dt.datetime.fromtimestamp(self.context.clock(), dt.UTC),
        )
        response = await http_request(self.context, "POST", url, headers=headers, data=body)
        return response.status, response.json_or_empty(), response.text

    async def run_query(self, query: str) -> float:
        try:
            queries = json.loads(query)
        except ValueError as error:
            raise ProviderError(f"error unmarshaling query: {error}") from error
        if not isinstance(queries, list):
            raise ProviderError("error unmarshaling query: expected a JSON list of MetricDataQuery")
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


register("cloudwatch")(CloudWatchProvider)
