"""The seam between the scheduler and webhooks: `HookRunner` and the results it returns.

No HTTP library is imported here, so the pure scheduler can depend on this module. The controller
passes the scheduler a `coalmine.hooks.gates.WebhookRunner` (real HTTP on one shared aiohttp
session); tests of the pure scheduler pass fakes.

How the scheduler uses each method (Flagger §3.2/§3.7). For every result: record
`result.events` in order (each also goes to `event`), send `result.alert` when set, then act on
`result.approved`; the status changes below are the scheduler's:

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
  `result.rollback_requested`: record the events (`Rollback check <hook> passed`, `Rolling back
  <canary>.<ns> manual webhook invoked`), send the alert (warn, not mutable) and roll back.
* `event` — every recorded event; never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from coalmine.api.models import Canary, CanaryWebhook
from coalmine.hooks.payloads import EventType
from coalmine.notify.message import Severity

HookType = Literal[
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
]
GATING_HOOK_TYPES: tuple[HookType, ...] = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
)


@dataclass(frozen=True)
class HookEvent:
    """A Kubernetes event the scheduler records on the Canary (and forwards to event webhooks)."""

    event_type: EventType
    message: str


@dataclass(frozen=True)
class HookAlert:
    """An alert the scheduler sends through the `Alerter` (already filtered by `muteAlert`)."""

    message: str
    severity: Severity


@dataclass(frozen=True)
class GateResult:
    """Outcome of all webhooks of one type for one cycle.

    `approved` is the gate's answer: True when every hook answered 2xx (or none is configured).
    For `rollback` hooks it means the opposite of a gate: True when a hook asked for a rollback
    (see `rollback_requested`). `failure` is the call that decided a negative outcome.
    """

    hook_type: HookType
    approved: bool
    results: tuple[WebhookResult, ...] = ()
    events: tuple[HookEvent, ...] = ()
    alert: HookAlert | None = None
    failure: WebhookResult | None = None
    hooks: tuple[CanaryWebhook, ...] = field(default=(), repr=False)

    @property
    def rollback_requested(self) -> bool:
        return self.hook_type == "rollback" and self.approved

    @property
    def error(self) -> str:
        return self.failure.error if self.failure else ""


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


def hooks_of_type(canary: Canary, hook_type: str) -> list[CanaryWebhook]:
    """The canary's webhooks of a type in spec order; an empty `type` means `rollout`."""
    analysis = canary.spec.analysis
    if analysis is None or not analysis.webhooks:
        return []
    return [hook for hook in analysis.webhooks if hook.effective_type == hook_type]


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
