"""Decisions a run waits for (docs/analysis.md): an inconclusive measurement or a marginal judge
score enters WaitingDecision until `coalmine promote`/`abort` or confirm-decision hooks decide."""

from __future__ import annotations

from coalmine.analysis.record import final_score_verdict
from coalmine.scheduler import status as st
from coalmine.scheduler.gates import gate
from coalmine.scheduler.promotion import promote
from coalmine.scheduler.run import Run


async def wait_for_decision(run: Run, reason: str) -> None:
    """Enter WaitingDecision: no step is taken until a person (or a hook) decides."""
    await run.write(run.with_phase("WaitingDecision"))
    await run.event(
        "Warning",
        f"Halt {run.key} advancement waiting for a decision: {reason} "
        "(coalmine promote or coalmine abort)",
    )
    await run.alert(f"Canary analysis is inconclusive, waiting for a decision: {reason}", "warn")


async def await_decision(run: Run) -> None:
    """WaitingDecision: confirm-decision hooks that all approve resume the analysis."""
    hooks = run.webhooks("confirm-decision")
    if not hooks:
        return
    refused = await gate(run, "confirm-decision", "WaitingDecision", "Confirm-decision")
    if refused is not None:
        return
    await run.event("Normal", f"Decision approved for {run.key}: the analysis carries on")
    await run.write(run.with_phase("Progressing"))


async def judged_promotion(run: Run) -> None:
    """The last analysis must reach the judge's pass score (Kayenta); marginal waits for a
    decision, below fails the run; canaries without judged metrics promote as before."""
    verdict = final_score_verdict(run.canary)
    score = run.status.judge_score
    if verdict == "Inconclusive":
        await wait_for_decision(run, f"judge score {score:g} is marginal")
        return
    if verdict == "Fail":
        await run.event("Warning", f"Halt {run.key} advancement judge score {score:g}")
        await run.write(st.set_failed_checks(run.status, run.threshold, now=run.now()))
        return
    await promote(run)
