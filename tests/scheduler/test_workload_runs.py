"""Flagger's TestScheduler_Deployment* and TestScheduler_DaemonSet* as behaviour of one cycle at a time.

The same scheduler drives both kinds; what differs (how scaling to zero is done, readiness) lives
behind the TargetController seam, so every scenario runs for both.
"""

from __future__ import annotations

import pytest

from coalmine.routers.base import Routes
from coalmine.targets.base import TargetNotReady

from .fakes import Rig, make_canary

WORKLOADS = pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])


@WORKLOADS
async def test_first_cycle_creates_the_primary_and_initialises(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.cycle()
    assert rig.phase == "Initialized"
    assert rig.target.primary_spec == rig.target.target_spec
    assert rig.target.scaled_to_zero
    assert rig.router.exists
    assert rig.status.last_applied_spec == rig.status.last_promoted_spec
    assert rig.status.tracked_configs == rig.target.configs
    assert rig.recorder.messages == [
        "all the metrics providers are available!",
        "Initialization done! podinfo.default",
    ]
    assert rig.alerts.sent == [(f"New {kind} detected, initialization completed.", "info", True)]


@WORKLOADS
async def test_primary_not_ready_during_init_waits_then_initialises(kind: str) -> None:
    rig = Rig(make_canary(kind))
    message = "podinfo-primary.default not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated"
    rig.target.init_errors.append(TargetNotReady(message, retriable=True))
    await rig.cycle()
    assert rig.phase == ""
    assert message in rig.recorder.messages
    await rig.cycle()
    assert rig.phase == "Initialized"


@WORKLOADS
async def test_new_revision_scales_the_target_up_and_starts_progressing(kind: str) -> None:
    rig = Rig(make_canary(kind, autoscaler=True))
    await rig.new_revision()
    assert rig.target.scaled_to_zero
    assert rig.scaler.paused
    await rig.cycle()
    assert rig.phase == "Progressing"
    assert not rig.target.scaled_to_zero
    assert not rig.scaler.paused
    assert rig.status.canary_weight == 0
    assert rig.status.last_applied_spec != rig.status.last_promoted_spec
    assert "New revision detected! Scaling up podinfo.default" in rig.recorder.messages


@WORKLOADS
async def test_unchanged_target_does_not_start_a_run(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.initialise()
    await rig.cycles(3)
    assert rig.phase == "Initialized"
    assert rig.router.history == []


@WORKLOADS
async def test_config_change_alone_starts_a_run(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.initialise()
    rig.target.configs = {"configmap/podinfo-config-env": "bbbb"}
    await rig.cycle()
    assert rig.phase == "Progressing"


@WORKLOADS
async def test_failed_checks_at_threshold_roll_back(kind: str) -> None:
    rig = Rig(
        make_canary(kind, {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50})
    )
    await rig.new_revision()
    await rig.cycles(2)  # Progressing, first step 90/10
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 50.00% < 99%")
    assert await rig.cycles(2) == [("Progressing", 10), ("Progressing", 10)]
    assert rig.status.failed_checks == 2
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)
    assert rig.target.scaled_to_zero
    assert rig.status.failed_checks == 0
    assert rig.recorder.messages[-2:] == [
        "Rolling back podinfo.default failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.default",
    ]
    assert ("Failed checks threshold reached 2", "error", False) in rig.alerts.sent
    assert rig.metrics.failures == {("podinfo", "default", "canary", "completed"): 1}
    assert rig.metrics.status["podinfo"] == 2


@WORKLOADS
async def test_primary_stuck_while_promoting_fails_promotion_and_keeps_the_canary(
    kind: str,
) -> None:
    rig = Rig(
        make_canary(
            kind,
            {
                "interval": "1m",
                "threshold": 10,
                "stepWeight": 50,
                "maxWeight": 50,
                "stepWeightPromotion": 25,
            },
        )
    )
    await rig.new_revision()
    await rig.cycles(3)  # Progressing, 50/50, Promoting
    assert rig.phase == "Promoting"
    assert rig.weights == (50, 50)
    rig.target.primary_error = TargetNotReady(
        'podinfo-primary.default not ready: deployment "podinfo-primary" exceeded its progress deadline',
        retriable=False,
    )
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (0, 100)
    assert rig.status.canary_weight == 100
    assert not rig.target.scaled_to_zero
    assert rig.recorder.messages[-1].startswith(
        "Promotion of podinfo.default failed, primary not ready: podinfo-primary.default not ready"
    )
    assert rig.metrics.failures == {("podinfo", "default", "canary", "completed"): 1}


@WORKLOADS
async def test_primary_stuck_after_traffic_shift_fails_promotion(kind: str) -> None:
    rig = Rig(
        make_canary(kind, {"interval": "1m", "threshold": 10, "stepWeight": 50, "maxWeight": 50})
    )
    await rig.new_revision()
    await rig.cycles(4)  # Progressing, 50/50, Promoting, Finalising (100/0)
    assert rig.phase == "Finalising"
    assert rig.weights == (100, 0)
    rig.target.primary_error = TargetNotReady("primary stuck", retriable=False)
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (0, 100)
    assert rig.status.canary_weight == 100
    assert not rig.target.scaled_to_zero


@WORKLOADS
async def test_skip_analysis_promotes_the_next_revision_directly(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.initialise()
    rig.store.update_spec(lambda canary: setattr(canary.spec, "skip_analysis", True))
    rig.target.set_image("podinfo:2.0.0")
    assert await rig.cycles(2) == [("Progressing", 0), ("Succeeded", 0)]
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.target.scaled_to_zero
    assert rig.analyzer.calls == 0
    assert rig.recorder.messages[-2:] == [
        "Copying podinfo.default template spec to podinfo-primary.default",
        "Promotion completed! Canary analysis was skipped for podinfo.default",
    ]
    assert rig.metrics.successes == {("podinfo", "default", "canary", "skipped"): 1}
    assert rig.status.last_promoted_spec == rig.status.last_applied_spec


@WORKLOADS
async def test_analysis_phases_with_step_weight_promotion(kind: str) -> None:
    rig = Rig(
        make_canary(
            kind, {"interval": "1m", "threshold": 10, "stepWeight": 100, "stepWeightPromotion": 50}
        )
    )
    await rig.new_revision()
    assert await rig.cycles(6) == [
        ("Progressing", 0),
        ("Progressing", 100),
        ("Promoting", 100),
        ("Promoting", 50),
        ("Finalising", 0),
        ("Succeeded", 0),
    ]


@WORKLOADS
async def test_blue_green_analysis_phases(kind: str) -> None:
    rig = Rig(make_canary(kind, {"interval": "1m", "threshold": 10, "iterations": 1}))
    await rig.new_revision()
    phases = [phase for phase, _ in await rig.cycles(6)]
    assert phases == [
        "Progressing",
        "Progressing",
        "Progressing",
        "Promoting",
        "Finalising",
        "Succeeded",
    ]
    assert rig.router.history[0] == Routes(0, 100, False)
    assert "Routing all traffic to canary" in rig.recorder.messages
    assert rig.metrics.successes == {("podinfo", "default", "blue-green", "completed"): 1}


@WORKLOADS
async def test_new_revision_during_analysis_resets_traffic(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.weights == (90, 10)
    rig.target.set_image("podinfo:3.0.0")
    await rig.cycle()
    assert rig.weights == (100, 0)
    assert rig.phase == "Progressing"
    assert rig.status.canary_weight == 0
    assert (
        rig.recorder.messages[-1]
        == "New revision detected! Restarting analysis for podinfo.default"
    )
    await rig.cycle()
    assert rig.recorder.messages[-1] == "Advance podinfo.default canary weight 10"


@WORKLOADS
async def test_promotion_copies_spec_and_configs_then_succeeds(kind: str) -> None:
    rig = Rig(make_canary(kind, autoscaler=True))
    await rig.new_revision()
    rig.target.configs = {
        "configmap/podinfo-config-env": "bbbb",
        "secret/podinfo-secret-env": "cccc",
    }
    seen = await rig.cycles(9)
    assert [w for _, w in seen[:6]] == [0, 10, 20, 30, 40, 50]
    assert seen[6:] == [("Promoting", 50), ("Finalising", 0), ("Succeeded", 0)]
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.target.primary_configs == rig.target.configs
    assert rig.target.promotions == 1
    assert rig.scaler.primary_updates >= 1
    assert rig.scaler.paused
    assert rig.target.scaled_to_zero
    assert rig.recorder.messages[-1] == "Promotion completed! Scaling down podinfo.default"
    assert rig.alerts.sent[-1] == (
        "Canary analysis completed successfully, promotion finished.",
        "info",
        False,
    )
    assert rig.status.last_promoted_spec == rig.status.last_applied_spec
    await rig.cycles(2)
    assert rig.phase == "Succeeded"


@WORKLOADS
async def test_mirroring_mirrors_first_then_shifts_traffic(kind: str) -> None:
    rig = Rig(
        make_canary(
            kind,
            {"interval": "1m", "threshold": 10, "stepWeight": 10, "maxWeight": 50, "mirror": True},
        )
    )
    await rig.new_revision()
    await rig.cycles(3)
    assert rig.router.history == [Routes(100, 0, True), Routes(90, 10, False)]


async def test_mirror_is_ignored_by_a_router_that_cannot_mirror() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 10,
        "maxWeight": 50,
        "mirror": True,
    }
    rig = Rig(make_canary("Deployment", analysis, provider="nginx"))
    rig.router.supports_mirroring = False
    await rig.new_revision()
    await rig.cycles(3)
    assert rig.router.history == [Routes(90, 10, False), Routes(80, 20, False)]


@WORKLOADS
async def test_ab_testing_routes_matched_traffic_then_promotes(kind: str) -> None:
    analysis = {
        "interval": "1m",
        "threshold": 10,
        "iterations": 2,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    rig = Rig(make_canary(kind, analysis))
    await rig.new_revision()
    seen = await rig.cycles(6)
    assert [phase for phase, _ in seen] == [
        "Progressing",
        "Progressing",
        "Progressing",
        "Promoting",
        "Finalising",
        "Succeeded",
    ]
    assert rig.router.history[:2] == [Routes(0, 100, False), Routes(0, 100, False)]
    assert "Advance podinfo.default canary iteration 2/2" in rig.recorder.messages
    assert rig.metrics.successes == {("podinfo", "default", "ab-testing", "completed"): 1}


@WORKLOADS
async def test_suspended_canary_is_frozen(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.new_revision()
    await rig.cycles(2)
    rig.store.update_spec(lambda canary: setattr(canary.spec, "suspend", True))
    before = (rig.status, rig.weights, rig.world.writes)
    await rig.cycles(3)
    assert (rig.status, rig.weights, rig.world.writes) == before
    assert rig.recorder.messages[-3:] == ["skipping canary run as object is suspended"] * 3
    rig.store.update_spec(lambda canary: setattr(canary.spec, "suspend", False))
    await rig.cycle()
    assert rig.weights == (80, 20)


@WORKLOADS
async def test_canary_not_ready_waits_when_retriable_and_rolls_back_when_not(kind: str) -> None:
    rig = Rig(make_canary(kind))
    await rig.new_revision()
    await rig.cycles(2)
    rig.target.canary_error = TargetNotReady("canary deployment podinfo.default not ready: waiting")
    await rig.cycles(3)
    assert rig.phase == "Progressing"
    assert rig.weights == (90, 10)
    rig.target.canary_error = TargetNotReady(
        'canary deployment podinfo.default not ready: deployment "podinfo" exceeded its progress deadline',
        retriable=False,
    )
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)


@WORKLOADS
async def test_failed_run_stays_failed_on_revert_and_restarts_on_reapply(kind: str) -> None:
    rig = Rig(
        make_canary(kind, {"interval": "1m", "threshold": 1, "stepWeight": 10, "maxWeight": 50})
    )
    await rig.new_revision("podinfo:2.0.0")
    await rig.cycles(2)
    rig.analyzer.fail_with("Halt podinfo.default advancement request duration 2s > 500ms")
    await rig.cycles(2)
    assert rig.phase == "Failed"
    rig.analyzer.default = rig.analyzer.default.__class__()
    rig.target.set_image("podinfo:1.0.0")  # back to the promoted spec
    await rig.cycles(2)
    assert rig.phase == "Failed"
    assert rig.status.last_applied_spec == rig.status.last_promoted_spec
    rig.target.set_image("podinfo:2.0.0")  # the failed revision again
    await rig.cycle()
    assert rig.phase == "Progressing"


async def test_kubernetes_provider_forces_blue_green_with_ten_iterations() -> None:
    rig = Rig(make_canary("Deployment", provider="kubernetes"))
    await rig.new_revision()
    phases = [phase for phase, _ in await rig.cycles(14)]
    assert phases[:12] == ["Progressing"] * 12
    assert phases[12:] == ["Promoting", "Finalising"]
    await rig.cycle()
    assert rig.phase == "Succeeded"
    messages = rig.recorder.messages
    assert "Progressive traffic is not supported when using the kubernetes provider" in messages
    assert "Setting canaryAnalysis.iterations: 10" in messages
    assert "Advance podinfo.default canary iteration 10/10" in messages
    assert "Routing all traffic to canary" not in messages
    assert rig.target.promotions == 1


async def test_kubernetes_provider_ignores_ab_match() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 10,
        "iterations": 1,
        "match": [{"headers": {"x": {"exact": "y"}}}],
    }
    rig = Rig(make_canary("Deployment", analysis, provider="kubernetes"))
    await rig.new_revision()
    await rig.cycles(3)
    assert (
        "A/B testing is not supported when using the kubernetes provider" in rig.recorder.messages
    )


async def test_the_duration_of_cycles_that_reach_the_analysis_is_observed() -> None:
    rig = Rig(make_canary("Deployment"))
    await rig.new_revision()
    await rig.cycles(3)
    assert len(rig.metrics.durations) == 2  # the two cycles that reached the analysis


async def test_broken_events_and_alerts_do_not_stop_a_release() -> None:
    rig = Rig(make_canary("Deployment", {"interval": "1m", "threshold": 1, "stepWeight": 50}))
    rig.recorder.broken = True
    rig.alerts.broken = True
    await rig.new_revision()
    await rig.cycles(6)
    assert rig.phase == "Succeeded"
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
