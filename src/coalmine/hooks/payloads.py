"""What coalmine POSTs to webhooks: Flagger's `CanaryWebhookPayload`, built by pure functions.

Receivers written for Flagger (the load tester, approval services, ChatOps bots) parse these
bodies, so the keys, their order and the omission of empty metadata follow Flagger exactly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any, Literal

from coalmine.api.models import Canary

EventType = Literal["Normal", "Warning"]

# Flagger's `SafeEncodeString` alphabet: no vowels (no accidental words), no look-alikes (0/1/3).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HASH_LENGTH = 10


def safe_encode(digest: bytes, length: int = _HASH_LENGTH) -> str:
    """A short, DNS- and label-safe string from a digest, in Flagger's alphabet."""
    number = int.from_bytes(digest, "big")
    characters = []
    for _ in range(length):
        number, index = divmod(number, len(SAFE_ALPHABET))
        characters.append(SAFE_ALPHABET[index])
    return "".join(characters)


def stable_hash(value: Any) -> str:
    """Hash of a JSON-able value that is the same in every process and on every machine.

    Sorted-key compact JSON makes the serialisation canonical; only equality of hashes is ever
    used, so the exact digest (unlike Flagger's spew dump) only needs to be stable.
    """
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return safe_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def canary_checksum(
    tracked_configs: Mapping[str, str] | None, last_applied_spec: str | None
) -> str:
    """The payload `checksum`: changes when the target spec or a tracked ConfigMap/Secret changes.

    `None` configs (never tracked) hash differently from `{}` (tracked, none referenced), as in
    Flagger, where the field is a pointer to a map.
    """
    configs = None if tracked_configs is None else dict(tracked_configs)
    return stable_hash({"trackedConfigs": configs, "lastAppliedSpec": last_applied_spec or ""})


def checksum_of(canary: Canary) -> str:
    status = canary.status
    if status is None:
        return canary_checksum(None, None)
    return canary_checksum(status.tracked_configs, status.last_applied_spec)


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
