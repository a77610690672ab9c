"""Canary webhooks: payloads, calls, and the gates the scheduler consults.

This package's top level is free of HTTP libraries so the pure scheduler can import the seam:
`HookRunner`, `GateResult` (and `HookEvent`, `HookAlert`, `WebhookResult`), plus the pure payload
builders. The I/O lives in submodules the controller imports:
`coalmine.hooks.gates.WebhookRunner` (the `HookRunner` implementation), `run_gate`, `send_event`,
`call_event_webhook`, and `coalmine.hooks.client.create_session` / `call_webhook` / `post_json`.
"""

from __future__ import annotations

from coalmine.hooks.base import (
    GATING_HOOK_TYPES,
    GateResult,
    HookAlert,
    HookEvent,
    HookRunner,
    HookType,
    WebhookResult,
    hooks_of_type,
)
from coalmine.hooks.payloads import (
    EventType,
    canary_checksum,
    checksum_of,
    event_payload,
    webhook_payload,
)

__all__ = [
    "GATING_HOOK_TYPES",
    "EventType",
    "GateResult",
    "HookAlert",
    "HookEvent",
    "HookRunner",
    "HookType",
    "WebhookResult",
    "canary_checksum",
    "checksum_of",
    "event_payload",
    "hooks_of_type",
    "webhook_payload",
]
