"""Splunk Observability (SignalFx): a SignalFlow program executed over the streaming API.

Flagger drives SignalFlow over its websocket; coalmine uses the same backend's HTTP execute
endpoint, which streams the same messages as server-sent events.
"""

from __future__ import annotations

import json
from typing import Any

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


def stream_address(address: str) -> str:
    """SignalFx realms serve the API at `api.<realm>` and SignalFlow at `stream.<realm>`."""
    return address.replace("://api.", "://stream.", 1)


def api_address(address: str) -> str:
    return address.replace("://stream.", "://api.", 1)


def server_sent_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of an SSE stream; multi-line data is joined with newlines."""
    events: list[tuple[str, str]] = []
    event: str = "message"
    data: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    return events


class SplunkProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        address = validated_address(spec)
        self.stream = stream_address(address)
        self.api = api_address(address)
        self.window = 10 * interval_seconds(interval, "splunk")
        self.headers = {"X-SF-Token": require_credential(credentials, "sf_token_key", "splunk")}
        self.context = context

    async def _execute(self, query: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """The `data` messages of a SignalFlow execution (instant and range queries alike)."""
        response = await request_ok(
            self.context,
            "POST",
            f"{self.stream}/v2/signalflow/execute",
            params={**params, "immediate": "true"},
            headers={**self.headers, "Content-Type": "text/plain"},
            data=query,
        )
        return _data_messages(response.text)

    async def run_query(self, query: str) -> float:
        now_ms = int(self.context.clock() * 1000)
        window = {"start": str(now_ms - int(self.window * 1000)), "stop": str(now_ms)}
        series: set[str] = set()
        value: Any = None
        for message in await self._execute(query, window):
            for point in message.get("data") or []:
                if point.get("value") is None:
                    continue
                series.add(str(point.get("tsId")))
                value = point["value"]
        if len(series) > 1:
            raise ProviderError("query returned multiple values")
        if value is None:
            raise NoValuesFound()
        return to_float(value, "value")

    async def run_range_query(
        self, query: str, start: float, end: float, step: float
    ) -> list[float]:
        """SignalFlow from `start` to `stop` at `resolution` (ms): every value of every
        series, in the order the data messages came."""
        params = {
            "start": str(int(start * 1000)),
            "stop": str(int(end * 1000)),
            "resolution": str(int(max(step, 1) * 1000)),
        }
        return [
            sample_value(point.get("value"))
            for message in await self._execute(query, params)
            for point in message.get("data") or []
        ]

    async def is_online(self) -> bool:
        await request_ok(
            self.context,
            "GET",
            f"{self.api}/v2/metric",
            params={"limit": "1"},
            headers=self.headers,
        )
        return True


def _data_messages(text: str) -> list[dict[str, Any]]:
    """The `data` messages of a SignalFlow stream; an error message is a ProviderError."""
    found: list[dict[str, Any]] = []
    for event, data in server_sent_events(text):
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if event == "error" or (isinstance(message, dict) and message.get("type") == "error"):
            raise ProviderError(f"signalflow error: {data[:300]}")
        if event == "data" and isinstance(message, dict):
            found.append(message)
    return found


register("splunk")(SplunkProvider)
