"""The webhook calls of a cycle, on one shared aiohttp session.

The scheduler owns the gating semantics (which failure halts, waits or rolls back, and the event
texts); this module only performs the calls: `WebhookClient.call` implements the scheduler's
`WebhookCaller` port, `WebhookClient.forward_event` (through `send_event`) sends recorded events
to event webhooks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp

from coalmine.api.models import Canary, CanaryWebhook, EventType
from coalmine.hooks.client import (
    RETRY_WAIT_MAX_SECONDS,
    RETRY_WAIT_MIN_SECONDS,
    WebhookResult,
    call_webhook,
)
from coalmine.hooks.payloads import event_payload, hooks_of_type, webhook_payload

if TYPE_CHECKING:
    from coalmine.scheduler.ports import WebhookCaller

log = logging.getLogger(__name__)


class WebhookError(RuntimeError):
    """A webhook did not answer 2xx; the text is what Flagger shows in its events."""


class WebhookClient:
    def __init__(self, session: aiohttp.ClientSession, *, event_webhook_url: str = "") -> None:
        self._session = session
        self._event_webhook_url = event_webhook_url or None

    async def call(self, canary: Canary, webhook: CanaryWebhook, phase: str) -> None:
        """POST Flagger's payload; return on 2xx, raise `WebhookError` with the reason otherwise."""
        result = await call_webhook(
            self._session, webhook, webhook_payload(canary, phase, metadata=webhook.metadata)
        )
        if not result.ok:
            raise WebhookError(result.error or "webhook failed")

    async def forward_event(
        self, canary: Canary, event_type: EventType, message: str, phase: str | None
    ) -> None:
        """Send one event to the canary's event webhooks (else the global one); never raises."""
        await send_event(
            self._session,
            canary,
            event_type,
            message,
            phase=phase,
            global_webhook=self._event_webhook_url,
        )


async def send_event(
    session: aiohttp.ClientSession,
    canary: Canary,
    event_type: EventType,
    message: str,
    *,
    phase: str | None = None,
    global_webhook: str | None = None,
    retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
    retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
) -> list[WebhookResult]:
    """Forward one recorded event to the canary's `event` webhooks, else to the global one.

    Hooks are called concurrently; failures are logged and returned, never raised.
    """
    hooks = hooks_of_type(canary, "event")
    if not hooks and global_webhook:
        hooks = [CanaryWebhook(name="events", url=global_webhook, type="event")]
    if not hooks:
        return []
    results = await asyncio.gather(
        *(
            call_event_webhook(
                session,
                hook,
                canary,
                event_type,
                message,
                phase=phase,
                retry_wait_min=retry_wait_min,
                retry_wait_max=retry_wait_max,
            )
            for hook in hooks
        )
    )
    return list(results)


async def call_event_webhook(
    session: aiohttp.ClientSession,
    hook: CanaryWebhook | str,
    canary: Canary,
    event_type: EventType,
    message: str,
    *,
    phase: str | None = None,
    timestamp_ms: int | None = None,
    retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
    retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
) -> WebhookResult:
    """POST one event to one event webhook (a Canary hook or a bare URL); failures are logged."""
    if isinstance(hook, str):
        hook = CanaryWebhook(name="events", url=hook, type="event")
    payload = event_payload(canary, event_type, message, hook.metadata, phase, timestamp_ms)
    result = await call_webhook(
        session, hook, payload, retry_wait_min=retry_wait_min, retry_wait_max=retry_wait_max
    )
    if not result.ok:
        log.warning(
            "event webhook %s for canary %s failed: %s", hook.name, canary.key, result.error
        )
    return result


if TYPE_CHECKING:
    _IS_A_WEBHOOK_CALLER: type[WebhookCaller] = WebhookClient
