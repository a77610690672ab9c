"""Measurements on record and the WaitingDecision state, cycle by cycle with the fakes.

An inconclusive measurement pauses the run for `coalmine promote|abort` or a confirm-decision
hook; a fatal judge result rolls back at once; the last judge score must reach the pass score.
"""

from __future__ import annotations

from typing import Any

from coalmine.analysis import AnalysisOutcome, MetricResult

from .fakes import make_canary
from .test_verbs import PASSING, VerbRig, progressing

INCONCLUSIVE = AnalysisOutcome(
    (
        MetricResult(
            "latency",
            0.42,
            True,
            "Metric latency 0.42 is inconclusive (success: result < 0.4; failure: result > 0.5)",
            verdict="Inconclusive",
            threshold="success: result < 0.4; failure: result > 0.5",
        ),
    )
)


def judged_analysis(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 25,
        "maxWeight": 50,
        "metrics": [{"name": "latency", "query": "q", "judge": {}}],
    }
    body.update(extra)
    return body


def scored(score: float, *, fatal: bool = False) -> AnalysisOutcome:
    passed = not fatal
    return AnalysisOutcome(
        (
            MetricResult("latency", 110.0, True, verdict="High" if score < 100 else "Pass"),
            MetricResult(
                "judge-score", score, passed, "" if passed else "Halt low score", fatal=fatal
            ),
        ),
        score=score,
    )


async def test_every_check_is_recorded_in_the_status_with_value_threshold_and_verdict() -> None:
    rig = VerbRig(make_canary())
    rig.analyzer.default = AnalysisOutcome(
        (MetricResult("request-success-rate", 99.5, True, threshold=">= 99"),)
    )
    await progressing(rig, steps=4)
    records = rig.status.metrics or []
    assert [r.name for r in records] == ["request-success-rate"]
    last = (records[0].measurements or [])[-1]
    assert (last.value, last.threshold, last.verdict) == (99.5, ">= 99", "Pass")


async def test_the_record_keeps_only_the_last_ten_measurements() -> None:
    rig = VerbRig(make_canary(analysis=judged_analysis(stepWeight=1, maxWeight=50)))
    await progressing(rig)
    await rig.cycles(14)
    records = rig.status.metrics or []
    assert len(records[0].measurements or []) == 10


async def test_inconclusive_measurement_waits_for_a_decision_and_promote_goes_on() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.analyzer.script = [INCONCLUSIVE]
    await rig.cycle()
    assert rig.phase == "WaitingDecision"
    weights = rig.weights
    calls = rig.analyzer.calls
    await rig.cycles(3)
    assert rig.phase == "WaitingDecision"
    assert rig.analyzer.calls == calls  # no analysis, no step while waiting
    assert rig.weights == weights
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.phase == "Promoting"
    assert rig.result(action_id) == ("done", "promoting")
    await rig.run_until("Succeeded")


async def test_inconclusive_measurement_then_abort_rolls_back() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.analyzer.script = [INCONCLUSIVE]
    await rig.cycle()
    assert rig.phase == "WaitingDecision"
    rig.request("abort")
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)


async def test_confirm_decision_hook_approval_resumes_the_analysis() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 10,
        "maxWeight": 50,
        "webhooks": [{"name": "decide", "type": "confirm-decision", "url": "http://hooks/decide"}],
    }
    rig = VerbRig(make_canary(analysis=analysis))
    rig.webhooks.failing["decide"] = "not yet"
    await progressing(rig)
    rig.analyzer.script = [INCONCLUSIVE]
    await rig.cycle()
    await rig.cycles(2)
    assert rig.phase == "WaitingDecision"
    del rig.webhooks.failing["decide"]
    await rig.cycle()
    assert rig.phase == "Progressing"
    rig.analyzer.default = PASSING
    await rig.run_until("Succeeded")


async def test_fatal_judge_result_rolls_back_without_waiting_for_the_threshold() -> None:
    rig = VerbRig(make_canary(analysis=judged_analysis()))
    await progressing(rig)
    rig.analyzer.script = [scored(0.0, fatal=True)]
    await rig.cycle()
    assert rig.status.failed_checks == 10
    await rig.cycle()
    assert rig.phase == "Failed"


async def test_last_score_below_pass_but_above_marginal_waits_for_a_decision() -> None:
    rig = VerbRig(make_canary(analysis=judged_analysis(judge={"passScore": 95})))
    rig.analyzer.default = scored(80.0)
    await rig.new_revision()
    await rig.run_until("WaitingDecision", "Promoting")
    assert rig.phase == "WaitingDecision"
    assert rig.status.judge_score == 80.0
    assert rig.target.promotions == 0


async def test_last_score_at_pass_promotes() -> None:
    rig = VerbRig(make_canary(analysis=judged_analysis()))
    rig.analyzer.default = scored(100.0)
    await rig.new_revision()
    await rig.run_until("Succeeded")


async def test_a_new_revision_while_waiting_for_a_decision_restarts_the_run() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.analyzer.script = [INCONCLUSIVE]
    await rig.cycle()
    assert rig.phase == "WaitingDecision"
    rig.target.set_image("podinfo:3.0.0")
    await rig.cycle()
    assert rig.phase == "Progressing"
    assert rig.weights == (100, 0)
    assert any(
        m.startswith("New revision detected! Restarting analysis") for m in rig.recorder.messages
    )
