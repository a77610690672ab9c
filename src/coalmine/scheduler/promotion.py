"""Promotion (the promotion steps of Flagger's `advanceCanary` and `runPromotionTrafficShift`):
copy the canary onto the primary, shift the traffic back to it, scale the canary down and declare
success; or all at once without analysis."""

from __future__ import annotations

import logging

from coalmine.api.hashing import release_checksum
from coalmine.scheduler import status as st
from coalmine.scheduler import texts
from coalmine.scheduler.gates import post_rollout
from coalmine.scheduler.run import Run
from coalmine.scheduler.weights import TOTAL_WEIGHT, promotion_step

log = logging.getLogger(__name__)


async def promote(run: Run) -> None:
    """Copy the canary spec onto the primary once, then enter Promoting."""
    await run.event("Normal", f"Copying {run.target_key} template spec to {run.primary_key}")
    if not await copy_to_primary(run):
        return
    await run.write(run.with_phase("Promoting"))


async def copy_to_primary(run: Run) -> bool:
    """`promote` unless the primary already carries this revision (a crash after promoting)."""
    fingerprint = run.fingerprint
    assert fingerprint is not None
    revision = release_checksum(fingerprint.spec_hash, fingerprint.tracked_configs)
    if fingerprint.primary_revision == revision:
        log.info("%s: primary already promoted to %s", run.key, revision)
        return True
    return await run.attempt(run.target.promote(run.canary, revision))


async def promotion_traffic(run: Run) -> None:
    """Step 21: route traffic back to the promoted primary, then Finalising."""
    analysis = run.analysis
    if run.kubernetes:
        await run.write(run.with_phase("Finalising"))
        return
    if not (analysis and analysis.step_weight_promotion):
        await run.event("Normal", "Routing all traffic to primary")
        if not await run.set_routes(TOTAL_WEIGHT, 0, False):
            return
        await run.write(run.with_phase("Finalising"))
        return
    routes = run.routes
    if routes.canary_weight <= 0:
        # All traffic is already on the primary (a restart after the last shift was written
        # but before Finalising was): Flagger would stay in Promoting for ever.
        await run.write(run.with_phase("Finalising"))
        return
    primary, canary = promotion_step(analysis, routes.primary_share, routes.canary_weight)
    if not await run.set_routes(primary, canary, False):
        return
    await run.event("Normal", f"Advance {run.key} primary weight {primary}")
    if primary == TOTAL_WEIGHT:
        await run.write(run.with_phase("Finalising"))
    else:
        await run.write(st.set_weight(run.status, canary, now=run.now()))


async def finish(run: Run) -> None:
    """Step 22: scale the canary down and declare success."""
    if run.scaler is not None and not await run.attempt(run.scaler.pause_target_scaler(run.canary)):
        return
    if not await run.attempt(run.target.scale_to_zero(run.canary)):
        return
    await run.write(run.with_phase("Succeeded"))
    run.deps.metrics.inc_successes(run.canary, run.strategy, "completed")
    await post_rollout(run, "Succeeded")
    await run.event("Normal", texts.promotion_completed(run.kind, run.target_key, run.primary_key))
    await run.alert("Canary analysis completed successfully, promotion finished.", "info")


async def promote_without_analysis(run: Run) -> None:
    """Step 19 (skipAnalysis): promote, scale down and succeed in one cycle."""
    if not await run.set_routes(TOTAL_WEIGHT, 0, False):
        return
    await run.event("Normal", f"Copying {run.target_key} template spec to {run.primary_key}")
    if not await copy_to_primary(run):
        return
    if run.scaler is not None:
        if not await run.attempt(run.scaler.reconcile_primary_scaler(run.canary, init=False)):
            return
        if not await run.attempt(run.scaler.pause_target_scaler(run.canary)):
            return
    if not await run.attempt(run.target.scale_to_zero(run.canary)):
        return
    await run.write(run.with_phase("Succeeded"))
    run.deps.metrics.inc_successes(run.canary, run.strategy, "skipped")
    await post_rollout(run, "Succeeded")
    await run.event(
        "Normal", f"Promotion completed! Canary analysis was skipped for {run.target_key}"
    )
    await run.alert("Canary analysis was skipped, promotion finished.", "info")
