"""The one HTTP POST every chat tool shares, the incoming-webhook notifier they build on, and
validation of their settings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from coalmine.notify.base import NotificationError, NotifierConfigError
from coalmine.notify.message import AlertMessage
from coalmine.outbound import redact_url, safe_text
from coalmine.outbound.http import MAX_WEBHOOK_RESPONSE_BYTES, ResponseTooLarge, read_text_capped

NOTIFICATION_TIMEOUT_SECONDS = 5.0


def validate_url(address: str, kind: str) -> str:
    """Reject an address that is not an absolute http(s) URL, naming the tool.

    The address often comes from a Secret: the message shows it redacted, and printable.
    """
    shown = safe_text(redact_url(address), 200)
    try:
        url = urlsplit(address)
        host = url.hostname
    except ValueError as error:
        raise NotifierConfigError(
            f"invalid {kind} URL {shown!r}: {safe_text(str(error), 200)}"
        ) from error
    if url.scheme not in ("http", "https") or not host or " " in address:
        raise NotifierConfigError(f"invalid {kind} URL {shown!r}: expected an absolute http(s) URL")
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
            status = response.status
            text = await read_text_capped(response, MAX_WEBHOOK_RESPONSE_BYTES)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, ResponseTooLarge) as error:
        reason = safe_text(str(error)) or type(error).__name__
        if isinstance(error, asyncio.TimeoutError):
            reason = f"timeout after {timeout_seconds:g}s"
        raise NotificationError(f"sending notification failed: {reason}") from error
    if not 200 <= status <= 299:
        raise NotificationError(f"sending notification bad response {status}: {safe_text(text)}")


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
