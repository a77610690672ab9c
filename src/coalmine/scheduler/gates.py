"""Gates and hooks of a run (Flagger's `scheduler_hooks.go`, and `runAnalysis` of
`scheduler_metrics.go`): confirm-* approvals, pre-rollout, rollout checks with the metric analysis,
rollback requests and post-rollout notifications."""

from __future__ import annotations

from coalmine.analysis import AnalysisOutcome
from coalmine.analysis.record import with_measurements
from coalmine.api.models import CanaryWebhook, Phase
from coalmine.scheduler import status as st
from coalmine.scheduler.run import Run


async def call(run: Run, hook: CanaryWebhook, phase: Phase) -> BaseException | None:
    """Call one hook; its error (a refusal) is returned, not raised."""
    try:
        await run.deps.webhooks.call(run.canary, hook, phase)
    except Exception as error:
        return error
    return None


async def gate(
    run: Run, hook_type: str, phase: Phase, passed: str | None
) -> tuple[CanaryWebhook, BaseException] | None:
    """Call the hooks of `hook_type` in spec order; the first refusal stops the calls.

    Each success records Normal `<passed> check <hook> passed` (nothing when `passed` is None,
    as for rollout hooks). Returns the refusing hook and its error, or None when all passed.
    """
    for hook in run.webhooks(hook_type):
        error = await call(run, hook, phase)
        if error is not None:
            return hook, error
        if passed is not None:
            await run.event("Normal", f"{passed} check {hook.name} passed")
    return None


async def halt(run: Run, hook: CanaryWebhook, reason: str, alert: str | None = None) -> None:
    """Flagger's `Halt <canary> advancement <reason>` Warning, and its alert unless muted."""
    await run.event("Warning", f"Halt {run.key} advancement {reason}")
    if alert is not None and not hook.mute_alert:
        await run.alert(alert, "warn")


async def confirm_rollout(run: Run) -> bool:
    refused = await gate(run, "confirm-rollout", run.phase, "Confirm-rollout")
    if refused is None:
        return True
    hook, _ = refused
    if run.phase != "Waiting":
        await run.write(run.with_phase("Waiting"))
        await halt(
            run, hook, f"waiting for approval {hook.name}", "Canary is waiting for approval."
        )
    return False


async def confirm_traffic_increase(run: Run) -> bool:
    refused = await gate(run, "confirm-traffic-increase", "Progressing", "Confirm-traffic-increase")
    if refused is None:
        return True
    hook, _ = refused
    await halt(
        run,
        hook,
        f"waiting for traffic increase approval {hook.name}",
        "Canary traffic increase is waiting for approval.",
    )
    return False


async def confirm_promotion(run: Run) -> bool:
    refused = await gate(run, "confirm-promotion", "Progressing", "Confirm-promotion")
    if refused is None:
        return True
    hook, _ = refused
    if run.phase != "WaitingPromotion":
        await run.write(run.with_phase("WaitingPromotion"))
        await halt(
            run,
            hook,
            f"waiting for promotion approval {hook.name}",
            "Canary promotion is waiting for approval.",
        )
    else:
        # Keep iterating (A/B, blue/green) while the approval is pending.
        again = max(run.iterations - 1, 0)
        if (run.status.iterations or 0) != again:
            await run.write(st.set_iterations(run.status, again, now=run.now()))
    return False


async def pre_rollout(run: Run) -> bool:
    refused = await gate(run, "pre-rollout", "Progressing", "Pre-rollout")
    if refused is not None:
        hook, error = refused
        await halt(run, hook, f"pre-rollout check {hook.name} failed {error}")
        return False
    return True


async def run_checks(run: Run) -> bool:
    """Flagger's `runAnalysis`: rollout webhooks, then the metric checks; the first failure
    stops."""
    refused = await gate(run, "rollout", "Progressing", None)
    if refused is not None:
        hook, error = refused
        await halt(run, hook, f"external check {hook.name} failed {error}")
        return False
    try:
        route = run.fingerprint.route if run.fingerprint is not None else None
        outcome = await run.deps.analyzer.analyse(run.canary, route=route)
    except Exception as error:
        await run.warn(error)
        return False
    await record_measurements(run, outcome)
    if outcome.failure is not None:
        await run.event("Warning", outcome.failure.message)
        if outcome.fatal:
            # A critical judged metric or a judge score at or below marginal fails the run:
            # the increment by the caller reaches the threshold, the next cycle rolls back.
            failed = max(run.threshold - 1, run.status.failed_checks or 0)
            await run.write(st.set_failed_checks(run.status, failed, now=run.now()))
        return False
    if outcome.inconclusive:
        first = next(r for r in outcome.results if r.effective_verdict == "Inconclusive")
        run.decision_needed = first.message or f"metric {first.name} is inconclusive"
    return True


async def record_measurements(run: Run, outcome: AnalysisOutcome) -> None:
    """Measurements on record (docs/analysis.md): the last ones per metric in the status."""
    if not outcome.results:
        return
    stamp = st.timestamp(run.now())
    await run.write(with_measurements(run.status, outcome, time=stamp))


async def rollback_requested(run: Run) -> bool:
    for hook in run.webhooks("rollback"):
        if await call(run, hook, run.phase) is not None:
            await run.event("Normal", f"Rollback hook {hook.name} not signaling a rollback")
            continue
        await run.event("Warning", f"Rollback check {hook.name} passed")
        return True
    return False


async def post_rollout(run: Run, phase: Phase) -> None:
    for hook in run.webhooks("post-rollout"):
        error = await call(run, hook, phase)
        if error is not None:
            await run.event("Warning", f"Post-rollout hook {hook.name} failed {error}")
        else:
            await run.event("Normal", f"Post-rollout check {hook.name} passed")
