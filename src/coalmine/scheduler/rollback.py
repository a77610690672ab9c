"""Rolling a run back (Flagger's `rollback` in `scheduler.go`): all traffic to the primary, the
canary scaled down, phase Failed; and the promotion that failed because the primary cannot serve."""

from __future__ import annotations

from collections.abc import Awaitable

from coalmine.scheduler import texts
from coalmine.scheduler.gates import post_rollout
from coalmine.scheduler.run import Run
from coalmine.scheduler.weights import TOTAL_WEIGHT
from coalmine.targets.base import is_retriable


async def attempt_or_roll_back(run: Run, action: Awaitable[None]) -> bool:
    """`Run.attempt` for readiness: an error waiting cannot heal (a missed deadline) rolls back."""
    try:
        await action
    except Exception as error:
        await run.warn(error)
        if not is_retriable(error):
            await rollback(run)
        return False
    return True


async def manual_rollback(run: Run) -> None:
    await run.event("Warning", f"Rolling back {run.key} manual webhook invoked")
    await run.alert("Rolling back manual webhook invoked", "warn")
    await rollback(run)


async def rollback(run: Run) -> None:
    """Flagger's rollback: all traffic to the primary, canary scaled down, phase Failed."""
    failed_checks = run.status.failed_checks or 0
    if failed_checks >= run.threshold:
        await run.event(
            "Warning", f"Rolling back {run.key} failed checks threshold reached {failed_checks}"
        )
        await run.alert(f"Failed checks threshold reached {failed_checks}", "error")
    if not await run.set_routes(TOTAL_WEIGHT, 0, False):
        return
    await run.event("Warning", texts.canary_failed(run.kind, run.key, run.primary_key), "Failed")
    if run.scaler is not None and not await run.attempt(run.scaler.pause_target_scaler(run.canary)):
        return
    if not await run.attempt(run.target.scale_to_zero(run.canary)):
        return
    if await run.read_fingerprint() is None:
        return
    await run.write(run.sync("Failed", 0, 0, 0))
    run.deps.metrics.inc_failures(run.canary, run.strategy, "completed")
    await post_rollout(run, "Failed")


async def failed_promotion(run: Run, error: BaseException) -> None:
    """The promoted primary cannot become ready: keep serving from the canary, phase Failed."""
    await run.event("Warning", f"Promotion of {run.target_key} failed, primary not ready: {error}")
    await run.alert(f"Promotion failed, primary not ready: {error}", "error")
    if not await run.set_routes(0, TOTAL_WEIGHT, False):
        return
    await run.write(run.sync("Failed", TOTAL_WEIGHT, 0, 0))
    run.deps.metrics.inc_failures(run.canary, run.strategy, "completed")
    await post_rollout(run, "Failed")
