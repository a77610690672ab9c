"""The steps of one cycle in Flagger's `advanceCanary` order (docs/state-machine.md).

`advance` is the cycle: reconcile the objects (steps 3-11), initialise (12), act on release verbs,
then decide from the persisted phase and the live target what the run does next (13-27). Each
step reads what it needs from the API server through the seams, so a restart anywhere carries on.
"""

from __future__ import annotations

import enum

from coalmine.analysis import AvailabilityOutcome
from coalmine.api import providers
from coalmine.api.hashing import is_foreign_hash
from coalmine.api.models import (
    ANALYSING_PHASES,
    INITIALIZING_PHASES,
    PRE_PROMOTION_PHASES,
    PROMOTING_PHASES,
    RELEASE_PHASES,
    STARTED_PHASES,
)
from coalmine.scheduler import status as st
from coalmine.scheduler import texts, verbs
from coalmine.scheduler.decisions import await_decision
from coalmine.scheduler.gates import confirm_rollout, rollback_requested
from coalmine.scheduler.promotion import finish, promote_without_analysis, promotion_traffic
from coalmine.scheduler.release import requested_promotion, resolve_action, take_action
from coalmine.scheduler.rollback import (
    attempt_or_roll_back,
    failed_promotion,
    manual_rollback,
    rollback,
)
from coalmine.scheduler.run import Run
from coalmine.scheduler.strategies import analyse_and_step
from coalmine.scheduler.weights import TOTAL_WEIGHT
from coalmine.targets.base import TargetFingerprint, is_retriable
from coalmine.targets.service_coverage import COVERAGE_CONDITION, routing_coverage


class Ended(enum.Enum):
    """Where a cycle ended, for what the controller does with it afterwards."""

    EARLY = "early"
    """Before the analysis: initialising, waiting, an error, a new run, a step of a release."""
    AT_REST = "at rest"
    """Step 13 found nothing to do: the same cycle repeats until something it reads changes."""
    ANALYSED = "analysed"
    """Steps 24-27 ran (the cycle's duration is a metric)."""


async def advance(run: Run) -> Ended:
    """Steps 2-27."""
    initializing = run.phase in INITIALIZING_PHASES
    if not await _reconcile(run, initializing):
        return Ended.EARLY
    fingerprint = await run.read_fingerprint()
    if fingerprint is None:
        return Ended.EARLY
    # 12. initialised
    if initializing:
        await initialized(run)
        return Ended.EARLY
    # release verbs: abort acts here; promote and retry mark the run for later steps
    if not await take_action(run):
        return Ended.EARLY
    # 13. anything to do
    if not await _has_work(run, fingerprint):
        return Ended.AT_REST
    # 14.-15. a primary that serves, the live routes
    if not await _primary_serves(run) or not await run.read_routes():
        return Ended.EARLY
    # 16. a new revision starts (or waits for approval)
    run.publish_phase()
    if run.phase not in STARTED_PHASES:
        await _new_run(run)
        return Ended.EARLY
    # 17. a newer revision restarts the run from zero (also one pushed while a decision waits)
    if run.phase in ANALYSING_PHASES and run.revision_changed(fingerprint):
        await _restart(run)
        return Ended.EARLY
    # 18. the canary must serve
    if not await attempt_or_roll_back(run, run.target.is_canary_ready(run.canary)):
        return Ended.EARLY
    return Ended.ANALYSED if await _progress(run) else Ended.EARLY


async def _reconcile(run: Run, initializing: bool) -> bool:
    """Steps 3-11: the objects a run needs, created or brought back to their desired state."""
    appmesh = providers.resolve(run.provider).routes_first
    # 3. selector label and ports
    try:
        run.metadata = await run.target.get_metadata(run.canary)
    except Exception as error:
        await run.warn(error)
        return False
    # 4. <apex>-primary / <apex>-canary Services
    if not await run.attempt(run.service_router.initialize(run.canary, run.metadata)):
        return False
    # 5. metric providers, while initialising only; the outcome is informational
    if initializing and not run.skip_analysis:
        await _check_metric_providers(run)
    # 6. App Mesh needs its virtual nodes before the primary pods exist
    if appmesh and not await run.attempt(run.mesh_router.reconcile(run.canary)):
        return False
    # 7. primary (and its readiness while initialising)
    if not await attempt_or_roll_back(run, run.target.initialize(run.canary)):
        return False
    # 8. autoscalers
    if not await _reconcile_scalers(run, initializing):
        return False
    # 9. apex Service
    if not await run.attempt(run.service_router.reconcile(run.canary, run.metadata)):
        return False
    # 10. the target idles at zero until a new revision arrives
    if initializing and not await _idle_target(run):
        return False
    # 11. routing object
    return appmesh or await run.attempt(run.mesh_router.reconcile(run.canary))


async def _check_metric_providers(run: Run) -> None:
    """Step 5: tell whether the metric providers answer (informational only)."""
    try:
        availability = await run.deps.analyzer.check_availability(run.canary)
    except Exception as error:
        availability = AvailabilityOutcome(ok=False, message=str(error))
    if availability.ok:
        await run.event("Normal", availability.message)
    else:
        await run.event("Warning", f"Error checking metric providers: {availability.message}")


async def _reconcile_scalers(run: Run, initializing: bool) -> bool:
    """Step 8: the primary's autoscaler; the target's is paused while initialising."""
    if run.scaler is None:
        return True
    if not await run.attempt(run.scaler.reconcile_primary_scaler(run.canary, init=True)):
        return False
    return not initializing or await run.attempt(run.scaler.pause_target_scaler(run.canary))


async def _idle_target(run: Run) -> bool:
    """Step 10: scale the target to zero while initialising."""
    try:
        await run.target.scale_to_zero(run.canary)
    except Exception as error:
        await run.event(
            "Warning", f"scaling down canary {run.kind} {run.target_key} failed: {error}"
        )
        return False
    return True


async def initialized(run: Run) -> None:
    """Step 12; a Service target is also told which of its traffic follows the weights."""
    status = run.sync("Initialized", 0, 0, 0)
    coverage = None
    if run.canary.spec.target_ref.is_core_service:
        coverage = routing_coverage(run.canary, run.provider)
        status = st.with_condition(
            status,
            COVERAGE_CONDITION,
            "True" if coverage.complete else "False",
            coverage.reason,
            coverage.sentence,
            run.now(),
        )
    await run.write(status)
    await run.event("Normal", f"Initialization done! {run.key}")
    if coverage is not None:
        await run.event(coverage.event_type, coverage.sentence)
    await run.alert(f"New {run.kind} detected, initialization completed.", "info", metadata=True)


async def _has_work(run: Run, fingerprint: TargetFingerprint) -> bool:
    """Step 13: a run in progress, a retry or a new revision; else the cycle ends here."""
    await adopt_foreign_hashes(run, fingerprint)
    if run.phase in RELEASE_PHASES or run.retry_requested or run.revision_changed(fingerprint):
        return True
    if run.phase == "Failed" and fingerprint.spec_hash != run.status.last_applied_spec:
        await reverted(run)
    run.publish_phase()
    return False


async def _primary_serves(run: Run) -> bool:
    """Step 14: the primary must serve; an error that cannot heal ends the run."""
    if run.skip_analysis:
        return True
    try:
        await run.target.is_primary_ready(run.canary)
    except Exception as error:
        await run.warn(error)
        if is_retriable(error):
            return False
        if run.retry_requested:
            # Still Failed: a retry cannot run while the primary cannot serve, and
            # rolling back again every cycle would repeat hooks, alerts and counts.
            await resolve_action(run, verbs.REFUSED, f"the primary is not ready: {error}")
        elif run.phase in PROMOTING_PHASES:
            await failed_promotion(run, error)
        else:
            await rollback(run)
        return False
    return True


async def _new_run(run: Run) -> None:
    """Step 16 for a phase that has not started (or a retry), acknowledging a retry."""
    if run.retry_requested:
        await run.event(
            "Normal", f"Retry requested by coalmine retry: starting a new run of {run.target_key}"
        )
    await start_run(run)
    if run.retry_requested and run.phase == "Progressing":
        await resolve_action(run, verbs.DONE, "new run started")
    elif run.retry_requested and run.phase == "Waiting":
        await resolve_action(run, verbs.DONE, "new run waiting for confirm-rollout approval")


async def _restart(run: Run) -> None:
    """Step 17: a newer revision arrived during the analysis; start over at weight zero."""
    await run.event("Normal", f"New revision detected! Restarting analysis for {run.target_key}")
    if not await run.set_routes(TOTAL_WEIGHT, 0, False):
        return
    await run.write(run.sync("Progressing", 0, 0, 0))


async def _progress(run: Run) -> bool:
    """Steps 19-27 for a started run whose canary serves; True when the analysis ran."""
    # coalmine promote: skip the rest of the analysis and its gates
    if run.promote_requested:
        await requested_promotion(run)
        return False
    # 19. no analysis: promote straight away
    if run.skip_analysis:
        await promote_without_analysis(run)
        return False
    # 20. manual rollback
    if run.phase in PRE_PROMOTION_PHASES and (await rollback_requested(run)):
        await manual_rollback(run)
        return False
    # 21. shift traffic back to the (promoted) primary
    if run.phase == "Promoting":
        if run.scaler is None or await run.attempt(
            run.scaler.reconcile_primary_scaler(run.canary, init=False)
        ):
            await promotion_traffic(run)
        return False
    # 22. done
    if run.phase == "Finalising":
        await finish(run)
        return False
    # an inconclusive analysis waits for coalmine promote/abort or a confirm-decision hook
    if run.phase == "WaitingDecision":
        await await_decision(run)
        return False
    # 23. too many failed checks
    if run.phase in ANALYSING_PHASES and ((run.status.failed_checks or 0) >= run.threshold):
        await rollback(run)
        return False
    # 24.-27. the analysis proper
    await analyse_and_step(run)
    return True


async def start_run(run: Run) -> None:
    """Step 16 for Initialized/Succeeded/Failed/Waiting: approval, scale up, Progressing."""
    if run.phase == "Waiting" and await rollback_requested(run):
        # A rollback hook can reject a revision still waiting for approval (see
        # docs/decisions.md, 'Rollback hooks while waiting').
        await manual_rollback(run)
        return
    if not await confirm_rollout(run):
        return
    await run.event("Normal", texts.run_started(run.kind, run.target_key), "Progressing")
    await run.alert("New revision detected, progressing canary analysis.", "info", metadata=True)
    if run.scaler is not None and not await run.attempt(
        run.scaler.resume_target_scaler(run.canary)
    ):
        return
    if not await run.attempt(run.target.scale_from_zero(run.canary)):
        return
    await run.write(run.sync("Progressing", 0, 0, 0))


async def reverted(run: Run) -> None:
    """Back to the promoted spec after a failure (a GitOps revert): remember it, so re-applying
    the failed revision later is a change again, and say that nothing is left to release."""
    status = run.sync(
        "Failed",
        run.status.canary_weight or 0,
        run.status.failed_checks or 0,
        run.status.iterations or 0,
    )
    await run.write(st.mark_reverted(status, run.now()))
    await run.event("Normal", texts.REVERTED)


async def adopt_foreign_hashes(run: Run, fingerprint: TargetFingerprint) -> None:
    """A canary taken over from Flagger keeps its state, no spurious run (see docs/decisions.md,
    'Spec hashes and adoption')."""
    previous = run.status.last_applied_spec
    if run.phase not in {
        "Initialized",
        "Succeeded",
        "Failed",
        "Progressing",
        "WaitingPromotion",
    } or not is_foreign_hash(previous):
        return
    promoted = run.phase in {"Initialized", "Succeeded"}
    await run.write(
        st.adopt_hashes(run.status, fingerprint.spec_hash, adopt_promoted=promoted, now=run.now())
    )
    await run.event(
        "Normal",
        f"Adopted {run.key}: spec hash {previous} was written by another controller and cannot "
        f"be compared; the current {run.kind} {run.target_key} spec is taken as "
        f"{'promoted' if promoted else 'applied'}",
    )
