"""Canary webhooks: Flagger's payloads, the calls, and forwarding events to event webhooks.

The gating semantics (which failure halts, waits, counts a failed check or rolls back, and the
event and alert texts) belong to `coalmine.scheduler.gates`; this package only calls. The top
level is free of HTTP libraries: the pure payload builders, the checksum and `hooks_of_type`.
The controller imports the I/O from submodules: `coalmine.hooks.webhooks.WebhookClient` (the
scheduler's `WebhookCaller`, plus `forward_event`), `send_event` / `call_event_webhook`, and
`coalmine.hooks.client.create_session` / `call_webhook` / `post_json` / `WebhookResult`.
Request signing is `coalmine.hooks.signing` (pure) with the process's key in `coalmine.hooks.keys`:
`post_json` signs every body it sends when a key is installed.
"""

from __future__ import annotations

from coalmine.hooks.payloads import (
    canary_checksum,
    checksum_of,
    event_payload,
    hooks_of_type,
    webhook_payload,
)

__all__ = [
    "canary_checksum",
    "checksum_of",
    "event_payload",
    "hooks_of_type",
    "webhook_payload",
]
