"""The webhook calls of a cycle, on one shared aiohttp session.

The scheduler owns the gating semantics (which failure halts, waits or rolls back, and the event
texts); this class only performs the calls: `call` implements the scheduler's `WebhookCaller`
port, `forward_event` sends recorded events to event webhooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from coalmine.api.models import Canary, CanaryWebhook
from coalmine.hooks.client import call_webhook
from coalmine.hooks.gates import send_event
from coalmine.hooks.payloads import EventType, webhook_payload

if TYPE_CHECKING:
    from coalmine.scheduler.ports import WebhookCaller


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


if TYPE_CHECKING:
    _IS_A_WEBHOOK_CALLER: type[WebhookCaller] = WebhookClient
