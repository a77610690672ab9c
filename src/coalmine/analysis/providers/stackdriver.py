"""Google Cloud Monitoring (Stackdriver): MQL through `projects.timeSeries.query`.

Credentials come from google-auth (the optional extra `coalmine[gcp]`): the Secret's
`serviceAccountKey` when set, else google-auth's default chain, as Google's client libraries and
Flagger use it: `GOOGLE_APPLICATION_CREDENTIALS` (a key or a workload identity federation file),
gcloud's application default credentials, then the metadata server (GKE Workload Identity, GCE;
`GCE_METADATA_HOST` moves it). google-auth's token calls block, so they run in a worker thread;
the token is kept until it expires. Queries go through the shared aiohttp session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    credential,
    http_request,
    register,
    requesting_error,
    sample_value,
    to_float,
)
from coalmine.api.models import MetricTemplateProvider
from coalmine.outbound import safe_text

DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
MISSING_EXTRA = "the stackdriver provider needs google-auth: install coalmine[gcp]"

DEFAULT_CHAIN_ENVIRONMENT = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
)
_credentials: dict[str, Any] = {}
"""google-auth credentials by source (a key's digest, or the default chain): tokens outlive a
provider instance, which lives for one check."""


def _google() -> Any:
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
        import google.oauth2.service_account
    except ImportError as error:
        raise ProviderConfigError(MISSING_EXTRA) from error
    return google


def _token(google: Any, source: str, key: dict[str, Any] | None) -> str:
    """Blocking: a valid access token, refreshed by google-auth when due."""
    credentials = _credentials.get(source)
    if credentials is None:
        if key is not None:
            credentials = google.oauth2.service_account.Credentials.from_service_account_info(
                key, scopes=[SCOPE]
            )
        else:
            credentials, _project = google.auth.default(scopes=[SCOPE])
        _credentials[source] = credentials
    if not credentials.valid:
        credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


class StackdriverProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        project = credential(credentials, "project")
        if spec.secret_ref is not None and not project:
            raise ProviderConfigError("stackdriver credentials does not contain project")
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise ProviderConfigError("stackdriver project is not set (Secret key project)")
        self.address = (spec.address or DEFAULT_ADDRESS).rstrip("/")
        self.url = f"{self.address}/v3/projects/{project}/timeSeries:query"
        self.google = _google()
        self.key: dict[str, Any] | None = None
        self.source = "default:" + ";".join(
            os.environ.get(name, "") for name in DEFAULT_CHAIN_ENVIRONMENT
        )
        raw_key = credential(credentials, "serviceAccountKey")
        if raw_key:
            try:
                self.key = json.loads(raw_key)
            except ValueError as error:
                raise ProviderConfigError(f"serviceAccountKey is not JSON: {error}") from error
            missing = [
                k
                for k in ("client_email", "private_key", "token_uri")
                if not (self.key or {}).get(k)
            ]
            if missing:
                raise ProviderConfigError(f"serviceAccountKey lacks {', '.join(missing)}")
            self.source = hashlib.sha256(raw_key.encode()).hexdigest()
        self.context = context

    async def _access_token(self) -> str:
        errors = self.google.auth.exceptions
        try:
            return await asyncio.to_thread(_token, self.google, self.source, self.key)
        except errors.DefaultCredentialsError as error:
            raise ProviderConfigError(
                f"no Google credentials: set serviceAccountKey in the Secret, or give the "
                f"controller Workload Identity or GOOGLE_APPLICATION_CREDENTIALS: {error}"
            ) from error
        except (errors.GoogleAuthError, ValueError) as error:
            raise ProviderError(f"error getting access token: {safe_text(str(error))}") from error

    async def _query(self, mql: str) -> tuple[int, Any, str]:
        token = await self._access_token()
        response = await http_request(
            self.context,
            "POST",
            self.url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=json.dumps({"query": mql}),
        )
        return response.status, response.json_or_empty(), response.text

    async def run_query(self, query: str) -> float:
        status, body, text = await self._query(query)
        if status != 200:
            raise requesting_error("stackdriver", status, text)
        series = body.get("timeSeriesData") if isinstance(body, dict) else None
        if not series:
            raise NoValuesFound("no time series")
        points = series[0].get("pointData") or []
        if not points or not points[0].get("values"):
            raise NoValuesFound("no points")
        return to_float(points[0]["values"][0].get("doubleValue"), "doubleValue")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """The MQL query with `| every {step}s | within d'start', d'end'` appended (so the
        query must not set its own `within`): every point of every series, oldest first."""
        mql = (
            f"{query.strip()} | every {max(1, round(step))}s "
            f"| within d'{_mql_time(start)}', d'{_mql_time(end)}'"
        )
        status, body, text = await self._query(mql)
        if status != 200:
            raise requesting_error("stackdriver", status, text)
        values: list[float] = []
        for series in (body.get("timeSeriesData") if isinstance(body, dict) else None) or []:
            points = series.get("pointData") or []
            for point in reversed(points):  # the API lists the newest point first
                first = (point.get("values") or [{}])[0]
                raw = first.get("doubleValue", first.get("int64Value"))
                values.append(sample_value(raw))
        return values

    async def is_online(self) -> bool:
        status, body, text = await self._query("")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if status == 200 or (status == 400 and error.get("status") == "INVALID_ARGUMENT"):
            return True
        raise requesting_error("stackdriver", status, text)


def _mql_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y/%m/%d %H:%M:%S")


register("stackdriver")(StackdriverProvider)
