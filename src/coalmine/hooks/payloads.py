"""What coalmine POSTs to webhooks: Flagger's `CanaryWebhookPayload`, built by pure functions.

Receivers written for Flagger (the load tester, approval services, ChatOps bots) parse these
bodies, so the keys, their order and the omission of empty metadata follow Flagger exactly.
`hooks_of_type` is `Canary.webhooks_of_type`, the rule the scheduler uses too (it imports no hooks
module).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from coalmine.analysis.record import payload_block
from coalmine.api.hashing import release_checksum
from coalmine.api.models import Canary, CanaryWebhook, EventType


def canary_checksum(
    tracked_configs: Mapping[str, str] | None, last_applied_spec: str | None
) -> str:
    """The payload `checksum`: changes when the target spec or a tracked ConfigMap/Secret changes.

    `None` configs (never tracked) hash differently from `{}` (tracked, none referenced), as in
    Flagger, where the field is a pointer to a map.
    """
    return release_checksum(last_applied_spec, tracked_configs)


def checksum_of(canary: Canary) -> str:
    status = canary.status
    if status is None:
        return canary_checksum(None, None)
    return canary_checksum(status.tracked_configs, status.last_applied_spec)


def hooks_of_type(canary: Canary, hook_type: str) -> list[CanaryWebhook]:
    """The canary's webhooks of a type in spec order; an empty `type` means `rollout`."""
    return canary.webhooks_of_type(hook_type)


def current_phase(canary: Canary) -> str:
    return (canary.status.phase if canary.status else None) or ""


def webhook_payload(
    canary: Canary,
    phase: str,
    checksum: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Body of a gating/rollout webhook call; `metadata` is omitted when empty (Go `omitempty`)."""
    payload: dict[str, Any] = {
        "name": canary.name,
        "namespace": canary.namespace,
        "phase": phase,
        "checksum": checksum if checksum is not None else checksum_of(canary),
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    measured = payload_block(canary)
    if measured:
        # Not in Flagger's payload: the last measurement per metric (docs/analysis.md); absent
        # until a metric was measured, so Flagger-shaped receivers see the same body as before.
        payload["metrics"] = measured
    return payload


def event_payload(
    canary: Canary,
    event_type: EventType,
    message: str,
    hook_metadata: Mapping[str, str] | None = None,
    phase: str | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """Body of an event webhook call.

    `eventMessage`, `eventType` and `timestamp` (unix milliseconds, as a string) come first and the
    hook's own metadata cannot override them. `phase` defaults to the canary's phase; callers pass
    the phase the event describes when it differs (Flagger reports `New revision detected!` as
    Progressing before the status is written).
    """
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    metadata = {
        "eventMessage": message,
        "eventType": event_type,
        "timestamp": str(timestamp_ms),
    }
    for key, value in (hook_metadata or {}).items():
        metadata.setdefault(key, value)
    return webhook_payload(
        canary, phase if phase is not None else current_phase(canary), metadata=metadata
    )
