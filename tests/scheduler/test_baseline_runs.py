"""A fresh baseline through the scheduler (issue 19): while the run analyses the router gets
primary 100 - 2w, canary w, baseline w; the step arithmetic, the status and the promotion are the
two-way ones; a restart mid-run carries on from the live three-way split."""

from __future__ import annotations

from coalmine.routers.base import Routes

from .fakes import Rig, make_canary

ANALYSIS = {
    "interval": "1m",
    "threshold": 10,
    "stepWeight": 10,
    "maxWeight": 30,
    "stepWeightPromotion": 20,
    "baseline": {"enabled": True},
}


async def test_the_baseline_takes_the_canary_share_from_the_primary_until_promotion() -> None:
    rig = Rig(make_canary("Deployment", ANALYSIS))
    await rig.new_revision()
    await rig.cycles(4)
    assert rig.router.history == [
        Routes(80, 10, False, 10),
        Routes(60, 20, False, 20),
        Routes(40, 30, False, 30),
    ]
    assert rig.status.canary_weight == 30
    assert rig.metrics.weights == {"podinfo-primary": 40, "podinfo": 30}
    await rig.cycles(2)  # promote, then the promotion's first traffic step
    assert rig.phase == "Promoting"
    # the promotion counts the baseline's share as the primary's and gives it back at once
    assert rig.router.history[-1] == Routes(90, 10, False, 0)
    await rig.cycles(3)
    assert rig.phase == "Succeeded"
    assert rig.router.history[-1] == Routes(100, 0, False, 0)


async def test_a_restart_mid_run_steps_on_from_the_live_three_way_split() -> None:
    rig = Rig(make_canary("Deployment", ANALYSIS))
    await rig.new_revision()
    await rig.cycles(3)
    assert rig.router.routes == Routes(60, 20, False, 20)
    rig.restart()
    await rig.cycle()
    assert rig.router.history[-1] == Routes(40, 30, False, 30)


async def test_a_rollback_routes_everything_to_the_primary() -> None:
    rig = Rig(make_canary("Deployment", {**ANALYSIS, "threshold": 1}))
    await rig.new_revision()
    await rig.cycles(2)
    rig.analyzer.fail_with("latency too high")
    await rig.cycles(3)
    assert rig.phase == "Failed"
    assert rig.router.history[-1] == Routes(100, 0, False, 0)


async def test_without_a_baseline_the_splits_are_two_way() -> None:
    analysis = {k: v for k, v in ANALYSIS.items() if k != "baseline"}
    rig = Rig(make_canary("Deployment", analysis))
    await rig.new_revision()
    await rig.cycles(4)
    assert rig.router.history == [Routes(90, 10), Routes(80, 20), Routes(70, 30)]
