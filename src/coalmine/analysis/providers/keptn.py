"""Keptn: a KeptnMetric's current value, or the verdict of a Keptn Analysis.

Keptn lives in the cluster, so this provider talks to the Kubernetes API server over plain HTTP
with the URL and token the controller passes in (ProviderContext.kube_api / kube_token).
Queries (lower-cased, like Flagger): `keptnmetric/<ns>/<name>` and
`analysis/<ns>/<definition>[/<duration, default 1m>[/<k=v;k=v>]]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import string

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    error_response,
    http_request,
    register,
    to_float,
)
from coalmine.api.models import MetricTemplateProvider

METRICS_PATH = "/apis/metrics.keptn.sh/v1beta1"
ANALYSIS_PATH = "/apis/metrics.keptn.sh/v1beta1"


class KeptnProvider:
    provider_type = "keptn"
    poll_interval = 1.0
    poll_timeout = 10.0

    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        if not context.kube_api:
            raise ProviderConfigError("keptn needs the controller's Kubernetes API server")
        self.api = context.kube_api.rstrip("/")
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if context.kube_token:
            self.headers["Authorization"] = f"Bearer {context.kube_token}"
        self.context = context

    async def _request(self, method: str, path: str, body: object = None) -> object:
        response = await http_request(
            self.context,
            method,
            f"{self.api}{path}",
            headers=self.headers,
            data=json.dumps(body) if body is not None else None,
            ssl_context=self.context.kube_ssl,
        )
        if response.status == 404:
            raise NoValuesFound(f"{path} not found")
        if response.status >= 400:
            raise error_response(response)
        return response.json() if response.text else {}

    async def run_query(self, query: str) -> float:
        parts = query.strip().lower().split("/")
        kind = parts[0]
        if kind in ("keptnmetric", "keptnmetrics") and len(parts) == 3:
            body = await self._request(
                "GET", f"{METRICS_PATH}/namespaces/{parts[1]}/keptnmetrics/{parts[2]}"
            )
            status = body.get("status") if isinstance(body, dict) else None
            value = (status or {}).get("value")
            if value in (None, ""):
                raise NoValuesFound("KeptnMetric has no value yet")
            return to_float(value, "KeptnMetric value")
        if kind in ("analysis", "analyses") and 3 <= len(parts) <= 5:
            return await self._analysis(parts[1], parts[2], parts[3:])
        raise ProviderConfigError(
            f"invalid keptn query {query!r}: expected keptnmetric/<ns>/<name> or "
            "analysis/<ns>/<definition>[/<duration>[/<k=v;...>]]"
        )

    async def _analysis(self, namespace: str, definition: str, rest: list[str]) -> float:
        duration = rest[0] if rest and rest[0] else "1m"
        args: dict[str, str] = {}
        if len(rest) > 1 and rest[1]:
            for pair in rest[1].split(";"):
                key, _, value = pair.partition("=")
                if key:
                    args[key] = value
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        name = f"{definition}-{suffix}"
        base = f"{ANALYSIS_PATH}/namespaces/{namespace}/analyses"
        await self._request(
            "POST",
            base,
            {
                "apiVersion": "metrics.keptn.sh/v1beta1",
                "kind": "Analysis",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "analysisDefinition": {"name": definition},
                    "timeframe": {"recent": duration},
                    "args": args,
                },
            },
        )
        try:
            waited = 0.0
            while True:
                body = await self._request("GET", f"{base}/{name}")
                status = (body.get("status") if isinstance(body, dict) else None) or {}
                if status.get("state") == "Completed":
                    return 1.0 if status.get("pass") else 0.0
                if waited >= self.poll_timeout:
                    raise ProviderError(f"keptn analysis {name} did not complete in time")
                await asyncio.sleep(self.poll_interval)
                waited += self.poll_interval
        finally:
            with contextlib.suppress(ProviderError, NoValuesFound):
                await self._request("DELETE", f"{base}/{name}")

    async def is_online(self) -> bool:
        return True


register("keptn")(KeptnProvider)
