"""The analysis step and the traffic strategies (Flagger's `runCanary`, `runAB` and `runBlueGreen`
in `scheduler.go`): after the checks, one step of canary weights, A/B iterations or blue/green
iterations, and the promotion gate when the step is the last."""

from __future__ import annotations

import logging

from coalmine.api.models import KUBERNETES_PROVIDER_ITERATIONS, CanaryAnalysis
from coalmine.scheduler import status as st
from coalmine.scheduler.decisions import judged_promotion, wait_for_decision
from coalmine.scheduler.gates import (
    confirm_promotion,
    confirm_traffic_increase,
    pre_rollout,
    run_checks,
)
from coalmine.scheduler.run import Run
from coalmine.scheduler.weights import TOTAL_WEIGHT, canary_step, max_weight, next_step_weight

log = logging.getLogger(__name__)


async def analyse_and_step(run: Run) -> None:
    """Steps 25-27: checks (or pre-rollout hooks on the first cycle), then one traffic step."""
    analysis = run.analysis
    assert analysis is not None  # skip_analysis returned earlier
    routes = run.routes
    first_cycle = (
        routes.canary_weight == 0
        and (run.status.iterations or 0) == 0
        and not (run.mirror and routes.mirrored)
    )
    if first_cycle:
        await run.event("Normal", f"Starting canary analysis for {run.target_key}")
        passed = await pre_rollout(run)
    else:
        passed = await run_checks(run)
    if run.decision_needed:
        await wait_for_decision(run, run.decision_needed)
        return
    if not passed:
        failed = (run.status.failed_checks or 0) + 1
        await run.write(st.set_failed_checks(run.status, failed, now=run.now()))
        return
    await _step(run, analysis)


async def _step(run: Run, analysis: CanaryAnalysis) -> None:
    """Step 27: the strategy the analysis asks for (as far as the provider can route it)."""
    has_match, iterations = await _kubernetes_limits(run, bool(analysis.match))
    run.iterations = iterations
    if has_match and iterations > 0:
        await ab_testing(run)
    elif iterations > 0:
        await blue_green(run)
    elif next_step_weight(analysis, run.routes.canary_weight) > 0:
        if (
            not run.routes.mirrored
            and run.phase not in {"Promoting", "WaitingPromotion", "Finalising"}
            and not await confirm_traffic_increase(run)
        ):
            return
        await canary(run)


async def _kubernetes_limits(run: Run, has_match: bool) -> tuple[bool, int]:
    """Step 26: the kubernetes provider cannot split traffic: blue/green only."""
    assert run.analysis is not None
    iterations = run.analysis.effective_iterations
    if not run.kubernetes:
        return has_match, iterations
    if has_match:
        await run.event(
            "Warning", "A/B testing is not supported when using the kubernetes provider"
        )
        has_match = False
    if iterations < 1:
        await run.event(
            "Warning", "Progressive traffic is not supported when using the kubernetes provider"
        )
        await run.event(
            "Warning", f"Setting canaryAnalysis.iterations: {KUBERNETES_PROVIDER_ITERATIONS}"
        )
        iterations = KUBERNETES_PROVIDER_ITERATIONS
    return has_match, iterations


async def canary(run: Run) -> None:
    routes = run.routes
    if routes.canary_weight < max_weight(run.analysis):
        step = canary_step(
            run.analysis,
            routes.primary_share,
            routes.canary_weight,
            routes.mirrored,
            mirror=run.mirror,
        )
        if not await run.set_routes(step.primary_weight, step.canary_weight, step.mirrored):
            return
        await run.write(st.set_weight(run.status, step.canary_weight, now=run.now()))
        await run.event("Normal", f"Advance {run.key} canary weight {step.canary_weight}")
        return
    if not await confirm_promotion(run):
        return
    await judged_promotion(run)


async def ab_testing(run: Run) -> None:
    done = run.status.iterations or 0
    if run.iterations > done:
        if not await run.set_routes(0, TOTAL_WEIGHT, False):
            return
        await next_iteration(run, done)
        return
    if not await confirm_promotion(run):
        return
    if done == run.iterations:
        await judged_promotion(run)


async def next_iteration(run: Run, done: int) -> None:
    await run.write(st.set_iterations(run.status, done + 1, now=run.now()))
    await run.event("Normal", f"Advance {run.key} canary iteration {done + 1}/{run.iterations}")


async def blue_green(run: Run) -> None:
    mirror = run.mirror
    done = run.status.iterations or 0
    if run.iterations > done:
        if not run.kubernetes and mirror and not run.routes.mirrored:
            log.info("Start traffic mirroring for %s", run.key)
            if not await run.set_routes(TOTAL_WEIGHT, 0, True):
                return
        await next_iteration(run, done)
        return
    if not await confirm_promotion(run):
        return
    if done == run.iterations:
        if not run.kubernetes:
            message = (
                "Stop traffic mirroring and route all traffic to canary"
                if mirror
                else "Routing all traffic to canary"
            )
            await run.event("Normal", message)
            if not await run.set_routes(0, TOTAL_WEIGHT, False):
                return
        await run.write(st.set_iterations(run.status, done + 1, now=run.now()))
        return
    if done > run.iterations:
        await judged_promotion(run)
