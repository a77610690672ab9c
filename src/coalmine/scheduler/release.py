"""Release verbs acted on by the cycle (docs/release-verbs.md): pause/resume freeze the canary
before a run starts; promote, abort and retry act at the step where the same transition happens
on its own. Every request is acknowledged (done or refused) through the action log."""

from __future__ import annotations

import logging

from coalmine.api import naming
from coalmine.api.models import (
    ANALYSING_PHASES,
    PRE_PROMOTION_PHASES,
    PROMOTING_PHASES,
    RELEASE_PHASES,
    Canary,
)
from coalmine.scheduler import verbs
from coalmine.scheduler.promotion import promote
from coalmine.scheduler.rollback import rollback
from coalmine.scheduler.run import Dependencies, Run, record

log = logging.getLogger(__name__)


async def pause_or_resume(deps: Dependencies, canary: Canary) -> tuple[Canary, bool]:
    """`coalmine.dev/paused` freezes the canary like `spec.suspend`; acknowledges pause/resume.

    Returns the canary (with the acknowledgement) and whether this cycle must stop here.
    """
    annotations = verbs.annotations_of(canary)
    action = verbs.pending_action(annotations)
    if verbs.is_paused(annotations):
        if action is not None and action.verb == "pause":
            await record(
                deps,
                canary,
                "Normal",
                "Paused by coalmine pause: no step is taken until coalmine resume",
                None,
            )
            return await handled(deps, canary, action, verbs.DONE, "paused"), True
        await record(
            deps,
            canary,
            "Normal",
            f"skipping canary run as object is paused ({naming.PAUSED_ANNOTATION})",
            None,
        )
        return canary, True
    if action is not None and action.verb == "resume":
        await record(
            deps, canary, "Normal", "Resumed by coalmine resume: the canary run carries on", None
        )
        canary = await handled(deps, canary, action, verbs.DONE, "resumed")
    elif action is not None and action.verb == "pause":
        canary = await handled(
            deps,
            canary,
            action,
            verbs.REFUSED,
            f"the {naming.PAUSED_ANNOTATION} annotation was removed before the pause was seen",
        )
    return canary, False


async def take_action(run: Run) -> bool:
    """Act on a pending promote/abort/retry; False when the cycle ends here (abort).

    Promote and retry only mark the run: they act at the step where the same transition
    happens on its own (promotion after canary readiness, a new run at step 16). A request
    whose transition already happened (a crash after the status write, before the
    acknowledgement) is acknowledged as done; one that makes no sense in the phase is refused.
    """
    action = verbs.pending_action(verbs.annotations_of(run.canary))
    if action is None or action.verb in ("pause", "resume") or run.deps.actions is None:
        return True
    run.action = action
    acted: bool | None
    if action.verb == "promote":
        acted = await _promote_action(run)
    elif action.verb == "abort":
        acted = await _abort_action(run)
        if acted is False:
            return False
    else:
        acted = await _retry_action(run)
    if acted:
        return True
    reason = verbs.refusal(action.verb, run.phase, paused=False) or f"phase {run.phase}"
    await run.event("Warning", f"coalmine {action.verb} refused for {run.key}: {reason}")
    await resolve_action(run, verbs.REFUSED, reason)
    return True


async def _promote_action(run: Run) -> bool:
    """True when the promote request was taken (or already done); False to refuse it."""
    phase = run.phase
    if phase in ANALYSING_PHASES:
        run.promote_requested = True
        return True
    if phase in PROMOTING_PHASES:
        await resolve_action(run, verbs.DONE, f"already {phase}")
        return True
    return False


async def _abort_action(run: Run) -> bool | None:
    """False when the abort rolled back (the cycle ends), True when already Failed, None to
    refuse it."""
    phase = run.phase
    if phase in PRE_PROMOTION_PHASES:
        await run.event("Warning", f"Rolling back {run.key}: abort requested by coalmine abort")
        await run.alert("Rolling back: abort requested by coalmine abort", "warn")
        await rollback(run)
        if run.phase == "Failed":
            await resolve_action(run, verbs.DONE, "rolled back")
        return False
    if phase == "Failed":
        await resolve_action(run, verbs.DONE, "already Failed")
        return True
    return None


async def _retry_action(run: Run) -> bool:
    """True when the retry request was taken (or a run is already going); False to refuse it."""
    phase = run.phase
    if phase == "Failed":
        run.retry_requested = True
        return True
    if phase in RELEASE_PHASES:
        await resolve_action(run, verbs.DONE, f"a run is in progress, phase {phase}")
        return True
    return False


async def requested_promotion(run: Run) -> None:
    """`coalmine promote`: as if the analysis had completed; confirm-promotion is skipped
    because a person asked for the promotion explicitly (the event records who)."""
    await run.event(
        "Normal", "Promotion requested by coalmine promote: skipping the rest of the analysis"
    )
    await run.alert("Promotion requested by coalmine promote.", "info")
    await promote(run)
    if run.phase == "Promoting":
        await resolve_action(run, verbs.DONE, "promoting")


async def resolve_action(run: Run, outcome: str, message: str) -> None:
    assert run.action is not None
    run.canary = await handled(run.deps, run.canary, run.action, outcome, message)


async def handled(
    deps: Dependencies, canary: Canary, action: verbs.Action, outcome: str, message: str
) -> Canary:
    """Acknowledge `action`; a failed write leaves it pending for the next cycle."""
    if deps.actions is None:
        return canary
    try:
        return await deps.actions.handled(
            canary, verbs.handled_annotations(action.action_id, outcome, message)
        )
    except Exception:
        log.exception("%s: acknowledging coalmine %s failed", canary.key, action.verb)
        return canary
