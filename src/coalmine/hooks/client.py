"""Calling webhooks: timeouts, retries with backoff, TLS opt-out, and Flagger's error texts.

Every call returns a `WebhookResult` and never raises (except cancellation): the scheduler turns
results into events, failed checks or rollbacks; a broken hook must never crash a canary's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp

from coalmine.api.models import CanaryWebhook, parse_go_duration
from coalmine.hooks import keys as signing_keys
from coalmine.hooks.signing import sign_headers
from coalmine.outbound import redact_url, safe_text
from coalmine.outbound.http import (
    MAX_WEBHOOK_RESPONSE_BYTES,
    ResponseTooLarge,
    create_session,
    read_text_capped,
)

__all__ = [
    "WebhookResult",
    "call_webhook",
    "create_session",
    "post_json",
    "redact_url",
    "webhook_timeout_seconds",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
RETRY_WAIT_MIN_SECONDS = 1.0
RETRY_WAIT_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class WebhookResult:
    """Outcome of one webhook call (all attempts). `error` is the text Flagger puts in events."""

    hook_name: str
    url: str
    ok: bool
    status: int | None
    body: str
    error: str
    attempts: int


def webhook_timeout_seconds(hook: CanaryWebhook) -> float:
    """Per-attempt timeout: Flagger uses 10s when `timeout` is empty or shorter than two characters."""
    if not hook.timeout or len(hook.timeout) < 2:
        return DEFAULT_TIMEOUT_SECONDS
    seconds = parse_go_duration(hook.timeout)
    if seconds is None or seconds <= 0:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


def _is_retryable_status(status: int) -> bool:
    """go-retryablehttp's policy: 429 and 5xx except 501 Not Implemented."""
    return status == 429 or (status >= 500 and status != 501)


def _is_retryable_error(error: BaseException) -> bool:
    """Connection problems are retried; a certificate the client does not trust never heals."""
    return not isinstance(error, aiohttp.ClientSSLError | ssl.SSLCertVerificationError)


def _backoff_seconds(attempt: int, wait_min: float, wait_max: float) -> float:
    return float(min(wait_max, wait_min * (2**attempt)))


def _retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` in seconds (the HTTP-date form is rare for webhooks and ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _short(text: str) -> str:
    """A body or cause as event text: printable, URLs redacted, at most 1,000 characters."""
    return safe_text(text)


def _describe_error(error: BaseException, timeout: float) -> str:
    if isinstance(error, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return f"timeout after {timeout:g}s awaiting the response"
    return safe_text(str(error)) or type(error).__name__


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: Mapping[str, Any],
    *,
    name: str = "",
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retries: int = 0,
    disable_tls: bool = False,
    retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
    retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
) -> WebhookResult:
    """POST `payload` as JSON with Flagger's webhook semantics; success is any 2xx (see
    docs/decisions.md, 'Webhook success').

    Retried (up to `retries` more attempts, exponential backoff) on connection errors, timeouts,
    429 and 5xx except 501. Error text: the response body for a final non-retryable answer (as
    Flagger); `POST <url> giving up after N attempt(s): <cause>` when retries are exhausted (Flagger's
    wording, but keeping the last status and body instead of dropping them).
    """
    retries = max(0, retries)
    shown_url = redact_url(url)
    attempts = 0
    cause = ""
    last_status: int | None = None
    last_body = ""
    while True:
        attempts += 1
        retryable = False
        retry_after: float | None = None
        try:
            body = json.dumps(dict(payload)).encode()  # signed as sent: one serialisation
            headers = {"Content-Type": "application/json"}
            headers.update(sign_headers(signing_keys.installed(), body))
            async with session.post(
                url,
                data=body,
                headers=headers,
                ssl=not disable_tls,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            ) as response:
                last_status = response.status
                last_body = await read_text_capped(response, MAX_WEBHOOK_RESPONSE_BYTES)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if 200 <= last_status <= 299:
                return WebhookResult(name, url, True, last_status, last_body, "", attempts)
            retryable = _is_retryable_status(last_status)
            cause = f"{last_status}: {_short(last_body)}" if last_body.strip() else str(last_status)
            if not retryable:
                error = _short(last_body) or f"{last_status} {_reason(last_status)}".strip()
                return WebhookResult(name, url, False, last_status, last_body, error, attempts)
        except ResponseTooLarge as error:
            return WebhookResult(
                name, url, False, last_status, "", f"POST {shown_url}: {error}", attempts
            )
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError, ValueError) as error:
            retryable = _is_retryable_error(error) and not isinstance(error, ValueError)
            cause = _describe_error(error, timeout_seconds)
            last_status = None
            last_body = ""
            if not retryable:
                return WebhookResult(
                    name, url, False, None, "", f"POST {shown_url}: {cause}", attempts
                )
        if attempts > retries:
            error_text = f"POST {shown_url} giving up after {attempts} attempt(s): {cause}"
            return WebhookResult(name, url, False, last_status, last_body, error_text, attempts)
        wait = _backoff_seconds(attempts - 1, retry_wait_min, retry_wait_max)
        if retry_after is not None and last_status in (429, 503):
            wait = min(retry_wait_max, retry_after)
        log.debug(
            "webhook %s attempt %d failed (%s); retrying in %.1fs", name, attempts, cause, wait
        )
        await asyncio.sleep(wait)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def call_webhook(
    session: aiohttp.ClientSession,
    hook: CanaryWebhook,
    payload: Mapping[str, Any],
    *,
    retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
    retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
) -> WebhookResult:
    """Call one Canary webhook with its own timeout, retries and `disableTLS`."""
    return await post_json(
        session,
        hook.url,
        payload,
        name=hook.name,
        timeout_seconds=webhook_timeout_seconds(hook),
        retries=hook.retries or 0,
        disable_tls=bool(hook.disable_tls),
        retry_wait_min=retry_wait_min,
        retry_wait_max=retry_wait_max,
    )
