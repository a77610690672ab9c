"""Graphite: the render API in JSON; the query is the render parameters (`target=...&from=...`)."""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import parse_qsl

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    basic_auth,
    credential,
    error_response,
    http_request,
    register,
    sample_value,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider


def _targets(query: str) -> list[tuple[str, str]]:
    """The query's parameters; templates spread targets over indented lines, Graphite wants
    them joined."""
    joined = re.sub(r"\s*\n\s*", "", query.strip())
    return parse_qsl(joined, keep_blank_values=True)


class GraphiteProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec)
        self.headers: dict[str, str] = {}
        if spec.secret_ref is not None:
            username = credential(credentials, "username")
            password = credential(credentials, "password")
            if not username or not password:
                raise ProviderConfigError(
                    "graphite credentials must contain both username and password"
                )
            self.headers["Authorization"] = basic_auth(username, password)
        self.verify_tls = not spec.insecure_skip_verify
        self.context = context

    async def _render(self, params: list[tuple[str, str]]) -> Any:
        """`/render` with these parameters as JSON (instant and range queries alike)."""
        response = await http_request(
            self.context,
            "GET",
            f"{self.address}/render",
            params=[*params, ("format", "json")],
            headers=self.headers,
            verify_tls=self.verify_tls,
        )
        if response.status >= 400:
            raise error_response(response)
        return response.json()

    async def run_query(self, query: str) -> float:
        body = await self._render(_targets(query))
        value = None
        for series in body if isinstance(body, list) else []:
            for point in series.get("datapoints") or []:
                if point and point[0] is not None:
                    value = point[0]
        if value is None:
            raise NoValuesFound()
        return to_float(value, "datapoint")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """`/render` from `start` until `end` (the query's own from/until are replaced): every
        datapoint of every series, nulls as NaN (Graphite's storage resolution sets the step)."""
        kept = [(k, v) for k, v in _targets(query) if k not in ("from", "until", "format")]
        body = await self._render([*kept, ("from", str(int(start))), ("until", str(int(end)))])
        return [
            sample_value(point[0], "datapoint")
            for series in (body if isinstance(body, list) else [])
            for point in series.get("datapoints") or []
            if point
        ]

    async def is_online(self) -> bool:
        with contextlib.suppress(NoValuesFound):
            await self.run_query("target=test")
        return True


register("graphite")(GraphiteProvider)
