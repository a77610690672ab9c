"""Flagger's status writers as pure functions: old status in, new status out.

The scheduler computes every status it writes with these and hands the result to the
`StatusWriter`, so what is written (and in which order) is decided in one place and testable
without an API server. Semantics follow Flagger's `SyncStatus` / `SetStatus*`
except where docs/decisions.md decides otherwise ('Weight while waiting for promotion').
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from coalmine.api.models import CanaryStatus, Condition, Phase
from coalmine.scheduler import texts

ConditionStatus = Literal["True", "False", "Unknown"]

PROMOTED_CONDITION = "Promoted"
# A failed run whose target went back to the promoted spec (docs/state-machine.md).
REVERTED_CONDITION = "Reverted"
REVERTED_REASON = "TargetMatchesPromoted"

# Phases whose weight and iterations SetStatusPhase leaves alone.
_KEEPS_COUNTERS: frozenset[str] = frozenset(
    {"Progressing", "Waiting", "Promoting", "WaitingDecision"}
)
# Phases after which the applied spec counts as promoted.
_PROMOTES: frozenset[str] = frozenset({"Initialized", "Succeeded"})


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with seconds, as the API server stores `metav1.Time`."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition_for(phase: Phase | str, kind: str) -> tuple[ConditionStatus, str]:
    """(status, message) of the `Promoted` condition for `phase` (Flagger's MakeStatusConditions)."""
    match phase:
        case "Initialized":
            return "True", f"{kind} initialization completed."
        case "Waiting" | "WaitingPromotion":
            return "Unknown", "Waiting for approval."
        case "WaitingDecision":
            return "Unknown", "Canary analysis is inconclusive, waiting for a decision."
        case "Progressing":
            return "Unknown", "New revision detected, progressing canary analysis."
        case "Promoting":
            return "Unknown", "Canary analysis completed, starting primary rolling update."
        case "Finalising":
            return "Unknown", "Canary analysis completed, routing all traffic to primary."
        case "Succeeded":
            return "True", "Canary analysis completed successfully, promotion finished."
        case "Failed":
            return "False", texts.failed_condition(kind)
        case _:
            # Initializing, Terminating and anything else: Flagger's default branch.
            return "Unknown", f"New {kind} detected, starting initialization."


def make_conditions(
    existing: list[Condition] | None, phase: Phase | str, kind: str, now: str
) -> list[Condition]:
    """The conditions list after entering `phase`.

    Unchanged when the `Promoted` condition already has the same status and reason; the old
    `lastTransitionTime` survives when only the reason changes.
    """
    status, message = condition_for(phase, kind)
    # `Reverted` describes the status it was written with; any later write makes it stale.
    existing = [c for c in existing or [] if c.type != REVERTED_CONDITION]
    current = next((c for c in existing if c.type == PROMOTED_CONDITION), None)
    if current is not None and current.status == status and current.reason == phase:
        return [c.model_copy() for c in existing]
    transition = now
    if current is not None and current.status == status and current.last_transition_time:
        transition = current.last_transition_time
    condition = Condition(
        type=PROMOTED_CONDITION,
        status=status,
        reason=phase,
        message=message,
        last_update_time=now,
        last_transition_time=transition,
    )
    others = [c.model_copy() for c in existing or [] if c.type != PROMOTED_CONDITION]
    return [condition, *others]


def with_condition(
    status: CanaryStatus | None,
    kind: str,
    condition_status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
) -> CanaryStatus:
    """`status` with the condition `kind` set (replaced when it differs; times kept otherwise)."""
    new = _copy(status)
    stamp = timestamp(now)
    conditions = list(new.conditions or [])
    current = next((c for c in conditions if c.type == kind), None)
    if (
        current is not None
        and current.status == condition_status
        and current.reason == reason
        and current.message == message
    ):
        return new
    transition = stamp
    if current is not None and current.status == condition_status and current.last_transition_time:
        transition = current.last_transition_time
    condition = Condition(
        type=kind,
        status=condition_status,
        reason=reason,
        message=message,
        last_update_time=stamp,
        last_transition_time=transition,
    )
    new.conditions = [*(c for c in conditions if c.type != kind), condition]
    return new


def mark_reverted(status: CanaryStatus | None, now: datetime) -> CanaryStatus:
    """A Failed canary whose target is back on the promoted revision: nothing left to release."""
    return with_condition(status, REVERTED_CONDITION, "True", REVERTED_REASON, texts.REVERTED, now)


def _copy(status: CanaryStatus | None) -> CanaryStatus:
    """A copy whose fields the builders may reassign. Shallow: a status is a value here, and no
    builder edits a condition, a measurement or the tracked configs in place (they build new
    ones); deep copies of the conditions were about 3 % of an analysing cycle's profile."""
    return status.model_copy() if status is not None else CanaryStatus()


def initial_status(status: CanaryStatus | None, kind: str, now: datetime) -> CanaryStatus:
    """What the controller writes when it first sees a canary (`status.conditions` is nil)."""
    new = _copy(status)
    stamp = timestamp(now)
    new.phase = "Initializing"
    new.last_transition_time = stamp
    new.conditions = make_conditions(None, "Initializing", kind, stamp)
    return new


def sync_status(
    status: CanaryStatus | None,
    *,
    phase: Phase,
    canary_weight: int,
    failed_checks: int,
    iterations: int,
    spec_hash: str,
    tracked_configs: Mapping[str, str] | None,
    kind: str,
    now: datetime,
) -> CanaryStatus:
    """Flagger's `SyncStatus`: the four counters as given plus the target's current fingerprint."""
    new = _copy(status)
    stamp = timestamp(now)
    new.phase = phase
    new.canary_weight = canary_weight
    new.failed_checks = failed_checks
    new.iterations = iterations
    new.last_applied_spec = spec_hash
    if phase == "Initialized":
        new.last_promoted_spec = spec_hash
    if tracked_configs is not None:
        new.tracked_configs = dict(tracked_configs)
    new.last_transition_time = stamp
    new.conditions = make_conditions(new.conditions, phase, kind, stamp)
    return new


def set_phase(
    status: CanaryStatus | None,
    phase: Phase,
    *,
    kind: str,
    now: datetime,
    analysis_iterations: int = 0,
    routed_canary_weight: int | None = None,
) -> CanaryStatus:
    """Flagger's `SetStatusPhase`.

    Outside Progressing/Waiting/Promoting the weight and iteration counters reset, except in
    WaitingPromotion: the iterations become `analysis_iterations - 1` (never negative) so A/B and
    blue/green keep iterating, and the weight stays at `routed_canary_weight`, the split actually
    live (see docs/decisions.md, 'Weight while waiting for promotion'; Flagger shows 0).
    """
    new = _copy(status)
    stamp = timestamp(now)
    new.phase = phase
    if phase == "WaitingPromotion":
        new.iterations = max(analysis_iterations - 1, 0)
        if routed_canary_weight is not None:
            new.canary_weight = routed_canary_weight
    elif phase not in _KEEPS_COUNTERS:
        new.canary_weight = 0
        new.iterations = 0
    if phase in _PROMOTES:
        new.last_promoted_spec = new.last_applied_spec
    new.last_transition_time = stamp
    new.conditions = make_conditions(new.conditions, phase, kind, stamp)
    return new


def set_weight(status: CanaryStatus | None, weight: int, *, now: datetime) -> CanaryStatus:
    """Flagger's `SetStatusWeight`."""
    new = _copy(status)
    new.canary_weight = weight
    new.last_transition_time = timestamp(now)
    return new


def set_failed_checks(status: CanaryStatus | None, value: int, *, now: datetime) -> CanaryStatus:
    """Flagger's `SetStatusFailedChecks`."""
    new = _copy(status)
    new.failed_checks = value
    new.last_transition_time = timestamp(now)
    return new


def set_iterations(status: CanaryStatus | None, value: int, *, now: datetime) -> CanaryStatus:
    """Flagger's `SetStatusIterations`."""
    new = _copy(status)
    new.iterations = value
    new.last_transition_time = timestamp(now)
    return new


def adopt_hashes(
    status: CanaryStatus | None, spec_hash: str, *, adopt_promoted: bool, now: datetime
) -> CanaryStatus:
    """Replace hashes another controller wrote by our hash of the current target spec."""
    new = _copy(status)
    new.last_applied_spec = spec_hash
    if adopt_promoted:
        new.last_promoted_spec = spec_hash
    new.last_transition_time = timestamp(now)
    return new


def has_spec_changed(status: CanaryStatus | None, current_hash: str) -> bool:
    """Flagger's `hasSpecChanged`: a return to the promoted spec never counts as a change."""
    applied = status.last_applied_spec if status else None
    if not applied:
        return True
    if status is not None and current_hash == status.last_promoted_spec:
        return False
    return current_hash != applied


def have_configs_changed(
    current: Mapping[str, str] | None, tracked: Mapping[str, str] | None
) -> bool:
    """Flagger's config tracker change detection over `status.trackedConfigs`."""
    if current is None:
        return False
    if tracked is None:
        return bool(current)
    if len(current) != len(tracked):
        return True
    return any(tracked.get(key) != value for key, value in current.items())


def phase_gauge(phase: Phase | str | None) -> int:
    """`flagger_canary_status`: 0 while Progressing, 2 when Failed, 1 otherwise."""
    if phase == "Progressing":
        return 0
    if phase == "Failed":
        return 2
    return 1
