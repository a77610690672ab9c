"""Canary webhooks: payloads, calls, and the gates the scheduler consults.

The scheduler depends only on the `HookRunner` Protocol below; the controller passes it a
`WebhookRunner` (real HTTP on one shared aiohttp session) and tests of the pure scheduler pass fakes.

How the scheduler uses each method (Flagger §3.2/§3.7; events and alerts to emit come in the
result, the status changes are the scheduler's):

* `confirm_rollout` — new revision detected (phase Initialized/Succeeded/Failed/Waiting). Not
  approved: set phase `Waiting` (if not already), record `result.events`, send `result.alert`,
  end the cycle. Approved: record the "passed" events and start the run.
* `pre_rollout` — first analysis cycle (weight 0, iterations 0). Not approved: failedChecks + 1,
  end the cycle.
* `rollout` — every later analysis cycle, before metrics. Not approved: failedChecks + 1 (once
  per cycle), end the cycle; metrics are not queried.
* `confirm_traffic_increase` — before every weight increase (canary strategy). Not approved: end
  the cycle; no phase change.
* `confirm_promotion` — before promotion. Not approved: phase `WaitingPromotion` if not already,
  else (A/B, B/G) iterations - 1; end the cycle.
* `post_rollout(canary, "Succeeded" | "Failed")` — after promotion, rollback, failed promotion or
  skip-analysis promotion. Only events; no effect on the outcome.
* `rollback` — in Progressing, Waiting and WaitingPromotion (decision 7).
  `result.rollback_requested`: alert `Rolling back manual webhook invoked` (warn) and roll back.
* `event` — every recorded event; never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from coalmine.api.models import Canary
from coalmine.hooks.client import (
    DEFAULT_TIMEOUT_SECONDS,
    WebhookResult,
    call_webhook,
    create_session,
    post_json,
    webhook_timeout_seconds,
)
from coalmine.hooks.gates import (
    GateResult,
    HookAlert,
    HookEvent,
    HookType,
    WebhookRunner,
    call_event_webhook,
    hooks_of_type,
    run_gate,
    send_event,
)
from coalmine.hooks.payloads import (
    EventType,
    canary_checksum,
    checksum_of,
    event_payload,
    stable_hash,
    webhook_payload,
)


class HookRunner(Protocol):
    """What the scheduler calls; see the module docstring for the semantics of each result."""

    async def confirm_rollout(self, canary: Canary) -> GateResult: ...

    async def pre_rollout(self, canary: Canary) -> GateResult: ...

    async def rollout(self, canary: Canary) -> GateResult: ...

    async def confirm_traffic_increase(self, canary: Canary) -> GateResult: ...

    async def confirm_promotion(self, canary: Canary) -> GateResult: ...

    async def post_rollout(
        self, canary: Canary, phase: Literal["Succeeded", "Failed"]
    ) -> GateResult: ...

    async def rollback(self, canary: Canary) -> GateResult: ...

    async def event(
        self, canary: Canary, event_type: EventType, message: str, phase: str | None = None
    ) -> Sequence[WebhookResult]: ...


__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "EventType",
    "GateResult",
    "HookAlert",
    "HookEvent",
    "HookRunner",
    "HookType",
    "WebhookResult",
    "WebhookRunner",
    "call_event_webhook",
    "call_webhook",
    "canary_checksum",
    "checksum_of",
    "create_session",
    "event_payload",
    "hooks_of_type",
    "post_json",
    "run_gate",
    "send_event",
    "stable_hash",
    "webhook_payload",
    "webhook_timeout_seconds",
]
