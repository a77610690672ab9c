"""Gating webhooks, manual rollback in every waiting phase, readiness deadlines, adoption, finaliser."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.models import CanaryStatus
from coalmine.routers.base import Routes
from coalmine.targets.base import TargetNotReady

from .fakes import Rig, make_canary

DEADLINE = TargetNotReady(
    'podinfo-primary.default not ready: deployment "podinfo-primary" exceeded its progress deadline',
    retriable=False,
)


def with_hooks(*hooks: tuple[str, str], **analysis: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"interval": "1m", "threshold": 10, "stepWeight": 10, "maxWeight": 20}
    base.update(analysis)
    base["webhooks"] = [
        {"name": name, "type": kind, "url": f"http://hooks/{name}"} for kind, name in hooks
    ]
    return base


async def test_confirm_rollout_holds_in_waiting_past_the_progress_deadline() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("confirm-rollout", "gate"))))
    rig.webhooks.failing["gate"] = "not approved"
    await rig.new_revision()
    await rig.cycle()
    assert rig.phase == "Waiting"
    assert rig.target.scaled_to_zero
    assert rig.recorder.messages[-1] == "Halt podinfo.default advancement waiting for approval gate"
    assert rig.alerts.sent[-1] == ("Canary is waiting for approval.", "warn", False)
    rig.clock.advance(3600)  # far beyond progressDeadlineSeconds (600)
    events = len(rig.recorder.events)
    await rig.cycles(3)
    assert rig.phase == "Waiting"
    assert len(rig.recorder.events) == events  # no repeated halt event while waiting
    assert rig.webhooks.calls_of("confirm-rollout")[-1] == ("gate", "Waiting")
    del rig.webhooks.failing["gate"]
    await rig.cycle()
    assert rig.phase == "Progressing"
    assert not rig.target.scaled_to_zero
    assert rig.recorder.messages[-2:] == [
        "Confirm-rollout check gate passed",
        "New revision detected! Scaling up podinfo.default",
    ]


async def test_muted_confirm_rollout_sends_no_alert() -> None:
    analysis = with_hooks(("confirm-rollout", "gate"))
    analysis["webhooks"][0]["muteAlert"] = True
    rig = Rig(make_canary("Deployment", analysis))
    rig.webhooks.failing["gate"] = "no"
    await rig.new_revision()
    await rig.cycle()
    assert rig.phase == "Waiting"
    assert all(message != "Canary is waiting for approval." for message, _, _ in rig.alerts.sent)


async def test_rollback_hook_rejects_a_revision_waiting_for_approval() -> None:
    rig = Rig(
        make_canary("Deployment", with_hooks(("confirm-rollout", "gate"), ("rollback", "abort")))
    )
    rig.webhooks.failing.update(gate="no", abort="no")
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.phase == "Waiting"
    assert "Rollback hook abort not signaling a rollback" in rig.recorder.messages
    del rig.webhooks.failing["abort"]
    await rig.cycle()
    assert rig.phase == "Failed"
    assert "Rolling back podinfo.default manual webhook invoked" in rig.recorder.messages
    assert ("Rolling back manual webhook invoked", "warn", False) in rig.alerts.sent
    assert rig.webhooks.calls_of("rollback")[-1] == ("abort", "Waiting")
    # the rejected revision is not retried until the target changes again
    rig.webhooks.failing["abort"] = "no"
    del rig.webhooks.failing["gate"]
    await rig.cycles(2)
    assert rig.phase == "Failed"


async def test_rollback_hook_during_progressing_rolls_back() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("rollback", "abort"))))
    rig.webhooks.failing["abort"] = "keep going"
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.weights == (90, 10)
    del rig.webhooks.failing["abort"]
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)
    assert rig.recorder.messages[-3:-1] == [
        "Rollback check abort passed",
        "Rolling back podinfo.default manual webhook invoked",
    ]


async def test_confirm_traffic_increase_holds_the_weight() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("confirm-traffic-increase", "more"))))
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.weights == (90, 10)
    rig.webhooks.failing["more"] = "hold"
    await rig.cycles(3)
    assert rig.weights == (90, 10)
    assert rig.phase == "Progressing"
    assert rig.recorder.messages[-1] == (
        "Halt podinfo.default advancement waiting for traffic increase approval more"
    )
    assert rig.alerts.sent[-1] == (
        "Canary traffic increase is waiting for approval.",
        "warn",
        False,
    )
    del rig.webhooks.failing["more"]
    await rig.cycle()
    assert rig.weights == (80, 20)


async def test_confirm_promotion_waits_at_the_routed_weight_and_keeps_analysing() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("confirm-promotion", "promote"))))
    rig.webhooks.failing["promote"] = "not yet"
    await rig.new_revision()
    await rig.cycles(4)  # Progressing, 10, 20, then the promotion gate
    assert rig.phase == "WaitingPromotion"
    assert rig.status.canary_weight == 20  # the weight actually routed (docs/decisions.md)
    assert rig.weights == (80, 20)
    assert (
        rig.recorder.messages[-1]
        == "Halt podinfo.default advancement waiting for promotion approval promote"
    )
    assert rig.alerts.sent[-1] == ("Canary promotion is waiting for approval.", "warn", False)
    checks = rig.analyzer.calls
    await rig.cycles(2)
    assert rig.phase == "WaitingPromotion"
    assert rig.analyzer.calls == checks + 2
    assert rig.target.promotions == 0
    del rig.webhooks.failing["promote"]
    await rig.cycle()
    assert rig.phase == "Promoting"
    assert rig.target.promotions == 1


async def test_failed_checks_while_waiting_for_promotion_roll_back() -> None:
    analysis = with_hooks(("confirm-promotion", "promote"), threshold=2)
    rig = Rig(make_canary("Deployment", analysis))
    rig.webhooks.failing["promote"] = "not yet"
    await rig.new_revision()
    await rig.cycles(4)
    assert rig.phase == "WaitingPromotion"
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 10.00% < 99%")
    await rig.cycles(3)
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)


async def test_rollback_hook_while_waiting_for_promotion_rolls_back() -> None:
    rig = Rig(
        make_canary(
            "Deployment", with_hooks(("confirm-promotion", "promote"), ("rollback", "abort"))
        )
    )
    rig.webhooks.failing.update(promote="no", abort="no")
    await rig.new_revision()
    await rig.cycles(4)
    assert rig.phase == "WaitingPromotion"
    del rig.webhooks.failing["abort"]
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.webhooks.calls_of("rollback")[-1] == ("abort", "WaitingPromotion")


async def test_blue_green_keeps_iterating_while_waiting_for_promotion() -> None:
    analysis = with_hooks(("confirm-promotion", "promote"), iterations=2)
    del analysis["stepWeight"], analysis["maxWeight"]
    rig = Rig(make_canary("Deployment", analysis))
    rig.webhooks.failing["promote"] = "no"
    await rig.new_revision()
    await rig.cycles(4)  # detect, iteration 1, iteration 2, gate
    assert rig.phase == "WaitingPromotion"
    assert rig.status.iterations == 1
    await rig.cycles(2)  # iteration 2 again, gate again
    assert rig.phase == "WaitingPromotion"
    assert rig.status.iterations == 1
    del rig.webhooks.failing["promote"]
    await rig.cycles(3)
    assert rig.phase == "Promoting"


async def test_pre_rollout_failure_counts_a_failed_check_and_retries() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("pre-rollout", "seed"))))
    rig.webhooks.failing["seed"] = "database unreachable"
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.status.failed_checks == 1
    assert rig.weights == (100, 0)
    assert rig.recorder.messages[-1] == (
        "Halt podinfo.default advancement pre-rollout check seed failed database unreachable"
    )
    del rig.webhooks.failing["seed"]
    await rig.cycle()
    assert rig.weights == (90, 10)
    assert rig.recorder.messages[-3:] == [
        "Starting canary analysis for podinfo.default",
        "Pre-rollout check seed passed",
        "Advance podinfo.default canary weight 10",
    ]


async def test_rollout_hook_failure_halts_advancement() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("rollout", "load"))))
    await rig.new_revision()
    await rig.cycles(2)
    rig.webhooks.failing["load"] = "502 bad gateway"
    await rig.cycle()
    assert rig.weights == (90, 10)
    assert rig.status.failed_checks == 1
    assert (
        rig.recorder.messages[-1]
        == "Halt podinfo.default advancement external check load failed 502 bad gateway"
    )
    assert rig.analyzer.calls == 0


@pytest.mark.parametrize("phase", ["Waiting", "Progressing", "WaitingPromotion"])
async def test_primary_past_its_progress_deadline_fails_every_waiting_phase(phase: str) -> None:
    rig = Rig(
        make_canary(
            "Deployment", with_hooks(("confirm-rollout", "gate"), ("confirm-promotion", "promote"))
        )
    )
    await rig.new_revision()
    if phase == "Waiting":
        rig.webhooks.failing["gate"] = "no"
        await rig.cycle()
    else:
        rig.webhooks.failing["promote"] = "no"
        await rig.cycles(2 if phase == "Progressing" else 4)
    assert rig.phase == phase
    rig.target.primary_error = DEADLINE
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)
    assert rig.target.scaled_to_zero
    assert DEADLINE.message in rig.recorder.messages


async def test_canary_past_its_progress_deadline_while_waiting_for_promotion_rolls_back() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("confirm-promotion", "promote"))))
    rig.webhooks.failing["promote"] = "no"
    await rig.new_revision()
    await rig.cycles(4)
    rig.target.canary_error = TargetNotReady(
        "canary deployment podinfo.default not ready: stuck", retriable=False
    )
    await rig.cycle()
    assert rig.phase == "Failed"


async def test_primary_not_ready_non_retriable_at_init_rolls_back_once_routes_exist() -> None:
    rig = Rig(make_canary("Deployment"))
    rig.target.init_errors.append(DEADLINE)
    await rig.cycle()
    # the routing object does not exist yet: the rollback stops with a Warning
    assert rig.phase == ""
    assert rig.recorder.messages[-1] == "VirtualService podinfo.default not found"


async def test_primary_not_ready_non_retriable_at_init_fails_with_the_kubernetes_provider() -> None:
    rig = Rig(make_canary("Deployment", provider="kubernetes"))
    rig.target.init_errors.append(DEADLINE)
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.recorder.messages[-2:] == [
        DEADLINE.message,
        "Canary failed! Scaling down podinfo.default",
    ]
    assert rig.target.scaled_to_zero


async def test_new_revision_while_waiting_for_promotion_restarts_the_run() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("confirm-promotion", "promote"))))
    rig.webhooks.failing["promote"] = "no"
    await rig.new_revision()
    await rig.cycles(4)
    assert rig.phase == "WaitingPromotion"
    rig.target.set_image("podinfo:3.0.0")
    await rig.cycle()
    assert (rig.phase, rig.weights, rig.status.canary_weight) == ("Progressing", (100, 0), 0)


async def test_revert_to_promoted_spec_during_analysis_does_not_restart() -> None:
    rig = Rig(make_canary("Deployment"))
    await rig.new_revision()
    await rig.cycles(2)
    rig.target.set_image("podinfo:1.0.0")
    await rig.cycle()
    assert rig.weights == (80, 20)


async def test_canary_migrated_from_flagger_is_adopted_without_analysis() -> None:
    canary = make_canary("Deployment")
    canary.status = CanaryStatus(
        phase="Succeeded",
        last_applied_spec="5f56684589",
        last_promoted_spec="5f56684589",
        tracked_configs={"configmap/podinfo-config-env": "aaaa"},
        conditions=[],
    )
    rig = Rig(canary)
    rig.target.primary_spec = dict(rig.target.target_spec)
    rig.router.exists = True
    await rig.cycle()
    assert rig.phase == "Succeeded"
    assert rig.router.history == []
    assert rig.status.last_applied_spec == rig.status.last_promoted_spec != "5f56684589"
    assert rig.recorder.events[-1][0] == "Normal"
    assert rig.recorder.messages[-1].startswith("Adopted podinfo.default: spec hash 5f56684589")
    await rig.cycle()
    assert sum(message.startswith("Adopted") for message in rig.recorder.messages) == 1
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycle()
    assert rig.phase == "Progressing"


async def test_finalize_reverts_target_and_routers() -> None:
    rig = Rig(make_canary("Deployment", autoscaler=True, revertOnDeletion=True))
    await rig.initialise()
    assert rig.target.scaled_to_zero
    assert rig.scaler.paused
    done = await rig.scheduler.finalize(rig.canary)
    assert done
    assert rig.phase == "Terminating"
    assert rig.target.finalized
    assert not rig.target.scaled_to_zero
    assert not rig.scaler.paused
    assert rig.services.finalized
    assert rig.router.finalized
    assert rig.recorder.messages[-2:] == [
        "Terminating canary podinfo.default",
        "Terminated canary podinfo.default",
    ]


async def test_finalize_reports_a_stuck_canary_and_retries_later() -> None:
    rig = Rig(make_canary("Deployment", revertOnDeletion=True))
    await rig.initialise()
    rig.target.canary_error = TargetNotReady("canary deployment podinfo.default not ready: waiting")
    assert not await rig.scheduler.finalize(rig.canary)
    assert rig.clock.slept == [3.0, 6.0, 12.0]
    assert not rig.router.finalized
    rig.target.canary_error = TargetNotReady("exceeded its progress deadline", retriable=False)
    assert not await rig.scheduler.finalize(rig.canary)
    assert rig.clock.slept == [3.0, 6.0, 12.0]  # non-retriable: no more waiting
    rig.target.canary_error = None
    assert await rig.scheduler.finalize(rig.canary)
    assert rig.recorder.messages.count("Terminating canary podinfo.default") == 1


async def test_routes_are_read_back_every_cycle() -> None:
    rig = Rig(make_canary("Deployment"))
    await rig.new_revision()
    await rig.cycles(2)
    rig.router.routes = Routes(70, 30, False)  # someone else moved traffic
    await rig.cycle()
    assert rig.weights == (60, 40)


# --- gate details (Flagger's scheduler_hooks.go), moved here from the hooks package's tests ---


async def test_gate_calls_stop_at_the_first_failure_after_recording_the_passes() -> None:
    rig = Rig(
        make_canary(
            "Deployment",
            with_hooks(
                ("confirm-rollout", "ok"), ("confirm-rollout", "gate"), ("confirm-rollout", "never")
            ),
        )
    )
    rig.webhooks.failing["gate"] = "Forbidden"
    await rig.new_revision()
    await rig.cycle()
    assert rig.webhooks.calls_of("confirm-rollout") == [
        ("ok", "Initialized"),
        ("gate", "Initialized"),
    ]
    assert rig.recorder.events[-2:] == [
        ("Normal", "Confirm-rollout check ok passed", "Initialized"),
        ("Warning", "Halt podinfo.default advancement waiting for approval gate", "Waiting"),
    ]
    assert rig.alerts.sent[-1] == ("Canary is waiting for approval.", "warn", False)


HALTS = {
    "confirm-rollout": (
        "Halt podinfo.default advancement waiting for approval gate",
        "Canary is waiting for approval.",
    ),
    "confirm-traffic-increase": (
        "Halt podinfo.default advancement waiting for traffic increase approval gate",
        "Canary traffic increase is waiting for approval.",
    ),
    "confirm-promotion": (
        "Halt podinfo.default advancement waiting for promotion approval gate",
        "Canary promotion is waiting for approval.",
    ),
}


async def halted_rig(hook_type: str, *, mute: bool = False) -> Rig:
    """A release held by a refusing `hook_type` gate named `gate`, run up to its first halt."""
    analysis = with_hooks((hook_type, "gate"))
    analysis["webhooks"][0]["muteAlert"] = mute
    rig = Rig(make_canary("Deployment", analysis))
    await rig.new_revision()
    if hook_type == "confirm-traffic-increase":
        await rig.cycles(2)  # Progressing, then weight 10 (the gate refuses the next increase)
    rig.webhooks.failing["gate"] = "not approved"
    cycles = {"confirm-rollout": 1, "confirm-traffic-increase": 1, "confirm-promotion": 4}
    await rig.cycles(cycles[hook_type])
    assert rig.recorder.messages[-1] == HALTS[hook_type][0]
    return rig


@pytest.mark.parametrize("hook_type", sorted(HALTS))
async def test_mute_alert_suppresses_the_alert_but_not_the_halt_event(hook_type: str) -> None:
    rig = await halted_rig(hook_type, mute=True)
    assert rig.recorder.events[-1][0] == "Warning"
    assert all(message != HALTS[hook_type][1] for message, _, _ in rig.alerts.sent)


@pytest.mark.parametrize("hook_type", ["confirm-rollout", "confirm-promotion"])
async def test_no_repeat_of_the_halt_event_or_alert_while_already_waiting(hook_type: str) -> None:
    rig = await halted_rig(hook_type)
    waiting = rig.phase
    assert (
        waiting
        == {"confirm-rollout": "Waiting", "confirm-promotion": "WaitingPromotion"}[hook_type]
    )
    assert rig.alerts.sent[-1] == (HALTS[hook_type][1], "warn", False)
    alerts = len(rig.alerts.sent)
    await rig.cycles(3)
    assert rig.phase == waiting
    assert rig.recorder.messages.count(HALTS[hook_type][0]) == 1
    assert len(rig.alerts.sent) == alerts


async def test_a_refused_traffic_increase_repeats_its_event_every_cycle() -> None:
    rig = await halted_rig("confirm-traffic-increase")
    await rig.cycles(2)
    assert rig.recorder.messages.count(HALTS["confirm-traffic-increase"][0]) == 3
    assert rig.phase == "Progressing"


async def test_pre_rollout_and_rollout_failures_send_no_alert() -> None:
    rig = Rig(make_canary("Deployment", with_hooks(("pre-rollout", "smoke"), ("rollout", "load"))))
    await rig.new_revision()
    await rig.cycle()
    alerts = len(rig.alerts.sent)
    rig.webhooks.failing.update(smoke="load test failed", load="load test failed")
    await rig.cycle()
    assert rig.recorder.messages[-1] == (
        "Halt podinfo.default advancement pre-rollout check smoke failed load test failed"
    )
    del rig.webhooks.failing["smoke"]
    await rig.cycles(2)
    assert rig.recorder.messages[-1] == (
        "Halt podinfo.default advancement external check load failed load test failed"
    )
    assert len(rig.alerts.sent) == alerts


@pytest.mark.parametrize("outcome", ["Succeeded", "Failed"])
async def test_a_failing_post_rollout_hook_is_reported_without_changing_the_outcome(
    outcome: str,
) -> None:
    analysis = with_hooks(("post-rollout", "notify"), threshold=1, stepWeight=50, maxWeight=50)
    rig = Rig(make_canary("Deployment", analysis))
    rig.webhooks.failing["notify"] = "nope"
    if outcome == "Failed":
        rig.analyzer.fail_with("Halt podinfo.default advancement success rate 10.00% < 99%")
    await rig.new_revision()
    await rig.cycles(6)
    assert rig.phase == outcome
    assert rig.webhooks.calls_of("post-rollout") == [("notify", outcome)]
    assert ("Warning", "Post-rollout hook notify failed nope", outcome) in rig.recorder.events


async def test_rollback_hooks_stop_at_the_first_that_asks_for_a_rollback() -> None:
    rig = Rig(
        make_canary(
            "Deployment",
            with_hooks(("rollback", "closed"), ("rollback", "open"), ("rollback", "never")),
        )
    )
    rig.webhooks.failing.update(closed="no", open="no", never="no")
    await rig.new_revision()
    await rig.cycles(2)
    del rig.webhooks.failing["open"], rig.webhooks.failing["never"]
    calls, events = len(rig.webhooks.calls_of("rollback")), len(rig.recorder.events)
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.webhooks.calls_of("rollback")[calls:] == [
        ("closed", "Progressing"),
        ("open", "Progressing"),
    ]
    assert [(kind, message) for kind, message, _ in rig.recorder.events[events:]][:3] == [
        ("Normal", "Rollback hook closed not signaling a rollback"),
        ("Warning", "Rollback check open passed"),
        ("Warning", "Rolling back podinfo.default manual webhook invoked"),
    ]
    assert rig.alerts.sent[-1] == ("Rolling back manual webhook invoked", "warn", False)


async def test_the_metric_checks_get_the_route_the_target_reports() -> None:
    """Knative: the builtin queries select the latest revision by the `route` variable."""
    rig = Rig(make_canary("Deployment"))
    rig.target.route = "podinfo-00002"
    await rig.new_revision()
    await rig.cycles(3)
    assert rig.analyzer.routes
    assert set(rig.analyzer.routes) == {"podinfo-00002"}
