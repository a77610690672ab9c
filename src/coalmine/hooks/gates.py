"""Running a canary's webhooks of one type and judging them the way Flagger's scheduler does.

The result carries the events (Flagger's exact texts) and the alert the scheduler must emit, so the
wording lives here once; the scheduler keeps the decisions that touch status (phase changes,
failed-check counting, rollback).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import aiohttp

from coalmine.api.models import Canary, CanaryWebhook
from coalmine.hooks.base import (
    GateResult,
    HookAlert,
    HookEvent,
    HookRunner,
    HookType,
    WebhookResult,
    hooks_of_type,
)
from coalmine.hooks.client import RETRY_WAIT_MAX_SECONDS, RETRY_WAIT_MIN_SECONDS, call_webhook
from coalmine.hooks.payloads import EventType, checksum_of, current_phase, event_payload
from coalmine.hooks.payloads import webhook_payload as build_payload

log = logging.getLogger(__name__)

PROGRESSING = "Progressing"


def _phase_sent(canary: Canary, hook_type: HookType, phase: str | None) -> str:
    if phase is not None:
        return phase
    if hook_type in ("confirm-rollout", "rollback"):
        return current_phase(canary)
    return PROGRESSING


async def run_gate(
    session: aiohttp.ClientSession,
    canary: Canary,
    hook_type: HookType,
    phase: str | None = None,
    checksum: str | None = None,
    *,
    retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
    retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
) -> GateResult:
    """Call every webhook of `hook_type` in spec order and judge them as Flagger does (§3.7).

    `phase` is what the payload reports; by default the canary's current phase for
    `confirm-rollout`/`rollback` and `Progressing` otherwise (`post-rollout` callers pass
    `Succeeded` or `Failed`). Calls stop at the first failure, except `rollback`, which stops at
    the first success (that hook asks for a rollback).
    """
    hooks = hooks_of_type(canary, hook_type)
    if not hooks:
        return GateResult(hook_type, approved=hook_type != "rollback")
    sent_phase = _phase_sent(canary, hook_type, phase)
    checksum = checksum if checksum is not None else checksum_of(canary)
    results: list[WebhookResult] = []
    events: list[HookEvent] = []
    for hook in hooks:
        payload = build_payload(canary, sent_phase, checksum, hook.metadata)
        result = await call_webhook(
            session, hook, payload, retry_wait_min=retry_wait_min, retry_wait_max=retry_wait_max
        )
        results.append(result)
        if hook_type == "rollback":
            if result.ok:
                events.append(HookEvent("Warning", f"Rollback check {hook.name} passed"))
                events.append(
                    HookEvent("Warning", f"Rolling back {canary.key} manual webhook invoked")
                )
                return GateResult(
                    hook_type,
                    True,
                    tuple(results),
                    tuple(events),
                    alert=HookAlert("Rolling back manual webhook invoked", "warn"),
                    hooks=tuple(hooks),
                )
            events.append(
                HookEvent("Normal", f"Rollback hook {hook.name} not signaling a rollback")
            )
            continue
        if result.ok:
            passed = _passed_event(hook_type, hook.name)
            if passed:
                events.append(HookEvent("Normal", passed))
            continue
        event, alert = _failure_outputs(canary, hook_type, hook, result)
        if event is not None:
            events.append(event)
        return GateResult(
            hook_type,
            False,
            tuple(results),
            tuple(events),
            alert=alert,
            failure=result,
            hooks=tuple(hooks),
        )
    return GateResult(
        hook_type, hook_type != "rollback", tuple(results), tuple(events), hooks=tuple(hooks)
    )


_PASSED_PREFIX: dict[str, str] = {
    "confirm-rollout": "Confirm-rollout",
    "confirm-traffic-increase": "Confirm-traffic-increase",
    "confirm-promotion": "Confirm-promotion",
    "pre-rollout": "Pre-rollout",
    "post-rollout": "Post-rollout",
}


def _passed_event(hook_type: HookType, hook_name: str) -> str | None:
    prefix = _PASSED_PREFIX.get(hook_type)
    return f"{prefix} check {hook_name} passed" if prefix else None


def _failure_outputs(
    canary: Canary, hook_type: HookType, hook: CanaryWebhook, result: WebhookResult
) -> tuple[HookEvent | None, HookAlert | None]:
    key = canary.key
    phase = current_phase(canary)
    muted = bool(hook.mute_alert)
    if hook_type == "confirm-rollout":
        if phase == "Waiting":
            return None, None
        alert = None if muted else HookAlert("Canary is waiting for approval.", "warn")
        return HookEvent(
            "Warning", f"Halt {key} advancement waiting for approval {hook.name}"
        ), alert
    if hook_type == "confirm-traffic-increase":
        alert = (
            None if muted else HookAlert("Canary traffic increase is waiting for approval.", "warn")
        )
        return HookEvent(
            "Warning", f"Halt {key} advancement waiting for traffic increase approval {hook.name}"
        ), alert
    if hook_type == "confirm-promotion":
        if phase == "WaitingPromotion":
            return None, None
        alert = None if muted else HookAlert("Canary promotion is waiting for approval.", "warn")
        return HookEvent(
            "Warning", f"Halt {key} advancement waiting for promotion approval {hook.name}"
        ), alert
    if hook_type == "pre-rollout":
        return HookEvent(
            "Warning",
            f"Halt {key} advancement pre-rollout check {hook.name} failed {result.error}",
        ), None
    if hook_type == "rollout":
        return HookEvent(
            "Warning", f"Halt {key} advancement external check {hook.name} failed {result.error}"
        ), None
    # post-rollout: reported, no effect on the release.
    return HookEvent("Warning", f"Post-rollout hook {hook.name} failed {result.error}"), None


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


class WebhookRunner:
    """The `HookRunner` the controller hands to the scheduler: real HTTP calls on one session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        event_webhook_url: str | None = None,
        retry_wait_min: float = RETRY_WAIT_MIN_SECONDS,
        retry_wait_max: float = RETRY_WAIT_MAX_SECONDS,
    ) -> None:
        self._session = session
        self._event_webhook_url = event_webhook_url or None
        self._retry_wait_min = retry_wait_min
        self._retry_wait_max = retry_wait_max

    async def _gate(self, canary: Canary, hook_type: HookType, phase: str | None) -> GateResult:
        return await run_gate(
            self._session,
            canary,
            hook_type,
            phase,
            retry_wait_min=self._retry_wait_min,
            retry_wait_max=self._retry_wait_max,
        )

    async def confirm_rollout(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "confirm-rollout", None)

    async def pre_rollout(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "pre-rollout", None)

    async def rollout(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "rollout", None)

    async def confirm_traffic_increase(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "confirm-traffic-increase", None)

    async def confirm_promotion(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "confirm-promotion", None)

    async def post_rollout(
        self, canary: Canary, phase: Literal["Succeeded", "Failed"]
    ) -> GateResult:
        return await self._gate(canary, "post-rollout", phase)

    async def rollback(self, canary: Canary) -> GateResult:
        return await self._gate(canary, "rollback", None)

    async def event(
        self,
        canary: Canary,
        event_type: EventType,
        message: str,
        phase: str | None = None,
    ) -> Sequence[WebhookResult]:
        return await send_event(
            self._session,
            canary,
            event_type,
            message,
            phase=phase,
            global_webhook=self._event_webhook_url,
            retry_wait_min=self._retry_wait_min,
            retry_wait_max=self._retry_wait_max,
        )


if TYPE_CHECKING:
    _WEBHOOK_RUNNER_IS_A_HOOK_RUNNER: type[HookRunner] = WebhookRunner
