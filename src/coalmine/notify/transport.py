"""The one HTTP POST every chat tool shares, the incoming-webhook notifier they build on, and
validation of their settings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from coalmine.hooks.client import read_text_capped
from coalmine.notify.base import NotificationError, NotifierConfigError
from coalmine.notify.message import AlertMessage

NOTIFICATION_TIMEOUT_SECONDS = 5.0
MAX_BODY_CHARS = 1000


def validate_url(address: str, kind: str) -> str:
    """Reject an address that is not an absolute http(s) URL, naming the tool."""
    try:
        url = urlsplit(address)
        host = url.hostname
    except ValueError as error:
        raise NotifierConfigError(f"invalid {kind} URL {address!r}: {error}") from error
    if url.scheme not in ("http", "https") or not host or " " in address:
        raise NotifierConfigError(
            f"invalid {kind} URL {address!r}: expected an absolute http(s) URL"
        )
    return address


def require(value: str | None, what: str) -> str:
    if not value:
        raise NotifierConfigError(f"empty {what}")
    return value


async def post_notification(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    proxy: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float = NOTIFICATION_TIMEOUT_SECONDS,
) -> None:
    """POST a JSON body; any 2xx is success, otherwise `sending notification bad response …`."""
    request_headers = {"Content-type": "application/json"}
    request_headers.update(headers or {})
    try:
        async with session.post(
            url,
            json=dict(body),
            headers=request_headers,
            proxy=proxy or None,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            text = await read_text_capped(response)
            status = response.status
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
        reason = str(error) or type(error).__name__
        if isinstance(error, asyncio.TimeoutError):
            reason = f"timeout after {timeout_seconds:g}s"
        raise NotificationError(f"sending notification failed: {reason}") from error
    if not 200 <= status <= 299:
        if len(text) > MAX_BODY_CHARS:
            text = text[:MAX_BODY_CHARS] + "…"
        raise NotificationError(f"sending notification bad response {status}: {text}")


class WebhookNotifier:
    """A chat tool reached by POSTing `body(message)` to its incoming-webhook URL.

    Subclasses set `type_name` and `body`; the URL names the channel unless a subclass keeps
    `username`, `channel` or `token` (Slack). Every tool takes the same settings so the registry
    can build any of them alike.
    """

    type_name = ""

    def __init__(
        self,
        address: str,
        *,
        username: str = "flagger",
        channel: str = "general",
        proxy: str | None = None,
        token: str | None = None,
    ) -> None:
        self.address = validate_url(address, self.type_name)
        self.proxy = proxy or None

    def body(self, message: AlertMessage) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {}

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None:
        await post_notification(
            session, self.address, self.body(message), proxy=self.proxy, headers=self.headers()
        )
