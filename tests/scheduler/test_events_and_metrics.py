"""Flagger's TestWebhooks (exact event order and hook calls) and TestController_MetricsStateTransition."""

from __future__ import annotations

from typing import Any

from coalmine.scheduler.status import initial_status
from coalmine.targets.base import TargetNotReady

from .fakes import FakeClock, Rig, make_canary

HOOK_TYPES = [
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "event",
]


def all_hooks_analysis(**extra: Any) -> dict[str, Any]:
    return {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 100,
        "stepWeightPromotion": 50,
        "webhooks": [
            {"name": f"{kind}-webhook", "type": kind, "url": f"http://hooks/{kind}"}
            for kind in HOOK_TYPES
        ],
        **extra,
    }


def new_rig(**spec: Any) -> Rig:
    canary = make_canary("Deployment", all_hooks_analysis(), **spec)
    canary.status = initial_status(None, "Deployment", FakeClock().now())
    return Rig(canary)


async def test_event_order_of_a_canary_release() -> None:
    rig = new_rig()
    rig.target.init_errors.append(
        TargetNotReady(
            "podinfo-primary.default not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated"
        )
    )
    await rig.cycles(2)
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycles(6)
    assert rig.phase == "Succeeded"
    assert rig.recorder.events == [
        ("Normal", "all the metrics providers are available!", "Initializing"),
        (
            "Warning",
            "podinfo-primary.default not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated",
            "Initializing",
        ),
        ("Normal", "all the metrics providers are available!", "Initializing"),
        ("Normal", "Initialization done! podinfo.default", "Initialized"),
        ("Normal", "Confirm-rollout check confirm-rollout-webhook passed", "Initialized"),
        ("Normal", "New revision detected! Scaling up podinfo.default", "Progressing"),
        ("Normal", "Starting canary analysis for podinfo.default", "Progressing"),
        ("Normal", "Pre-rollout check pre-rollout-webhook passed", "Progressing"),
        (
            "Normal",
            "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
            "Progressing",
        ),
        ("Normal", "Advance podinfo.default canary weight 100", "Progressing"),
        (
            "Normal",
            "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
            "Progressing",
        ),
        ("Normal", "Confirm-promotion check confirm-promotion-webhook passed", "Progressing"),
        (
            "Normal",
            "Copying podinfo.default template spec to podinfo-primary.default",
            "Progressing",
        ),
        ("Normal", "Advance podinfo.default primary weight 50", "Promoting"),
        ("Normal", "Advance podinfo.default primary weight 100", "Promoting"),
        ("Normal", "Post-rollout check post-rollout-webhook passed", "Succeeded"),
        ("Normal", "Promotion completed! Scaling down podinfo.default", "Succeeded"),
    ]
    calls = rig.webhooks
    assert calls.calls_of("confirm-rollout") == [("confirm-rollout-webhook", "Initialized")]
    assert calls.calls_of("pre-rollout") == [("pre-rollout-webhook", "Progressing")]
    assert (
        calls.calls_of("confirm-traffic-increase")
        == [("confirm-traffic-increase-webhook", "Progressing")] * 2
    )
    assert calls.calls_of("rollout") == [("rollout-webhook", "Progressing")]
    assert calls.calls_of("confirm-promotion") == [("confirm-promotion-webhook", "Progressing")]
    assert calls.calls_of("post-rollout") == [("post-rollout-webhook", "Succeeded")]
    assert calls.calls_of("event") == []  # event webhooks are the Recorder's business


async def test_event_order_of_a_release_without_analysis() -> None:
    rig = new_rig(skipAnalysis=True)
    await rig.cycle()
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycles(2)
    assert rig.phase == "Succeeded"
    assert rig.recorder.events == [
        ("Normal", "Initialization done! podinfo.default", "Initialized"),
        ("Normal", "Confirm-rollout check confirm-rollout-webhook passed", "Initialized"),
        ("Normal", "New revision detected! Scaling up podinfo.default", "Progressing"),
        (
            "Normal",
            "Copying podinfo.default template spec to podinfo-primary.default",
            "Progressing",
        ),
        ("Normal", "Post-rollout check post-rollout-webhook passed", "Succeeded"),
        (
            "Normal",
            "Promotion completed! Canary analysis was skipped for podinfo.default",
            "Succeeded",
        ),
    ]
    kinds = [kind for kind, _, _ in rig.webhooks.calls]
    assert kinds == ["confirm-rollout", "post-rollout"]
    assert rig.alerts.sent[-1] == (
        "Canary analysis was skipped, promotion finished.",
        "info",
        False,
    )


async def test_controller_metrics_follow_state_transitions() -> None:
    rig = Rig(
        make_canary(
            "Deployment", {"interval": "1m", "threshold": 1, "stepWeight": 50, "maxWeight": 50}
        )
    )
    metrics = rig.metrics
    await rig.initialise()
    assert metrics.status == {"podinfo": 1}
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycles(2)
    assert metrics.status == {"podinfo": 0}
    assert metrics.weights["podinfo-primary"] + metrics.weights["podinfo"] == 100
    assert metrics.weights == {"podinfo-primary": 50, "podinfo": 50}
    await rig.cycles(4)
    assert rig.phase == "Succeeded"
    assert metrics.status == {"podinfo": 1}
    assert metrics.successes == {("podinfo", "default", "canary", "completed"): 1}

    rig.target.set_image("podinfo:3.0.0")
    await rig.cycles(2)
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 1.00% < 99%")
    await rig.cycles(2)
    assert rig.phase == "Failed"
    assert metrics.status == {"podinfo": 2}
    assert metrics.weights == {"podinfo-primary": 100, "podinfo": 0}
    assert metrics.failures == {("podinfo", "default", "canary", "completed"): 1}

    rig.store.update_spec(lambda canary: setattr(canary.spec, "skip_analysis", True))
    rig.target.set_image("podinfo:4.0.0")
    await rig.cycles(2)
    assert rig.phase == "Succeeded"
    assert metrics.successes[("podinfo", "default", "canary", "skipped")] == 1


async def test_metric_provider_failure_at_init_is_only_reported() -> None:
    rig = Rig(make_canary("Deployment"))
    rig.analyzer.providers_error = "prometheus not avaiable: connection refused"
    await rig.cycle()
    assert rig.phase == "Initialized"
    assert rig.recorder.events[0] == (
        "Warning",
        "Error checking metric providers: prometheus not avaiable: connection refused",
        "",
    )


async def test_gauges_follow_the_route_write_of_a_restarted_run() -> None:
    """The gauges are set by the status and route writers, so a run restarted by a newer revision
    shows all traffic on the primary in the cycle that moved it there."""
    rig = Rig(
        make_canary(
            "Deployment", {"interval": "1m", "threshold": 5, "stepWeight": 20, "maxWeight": 60}
        )
    )
    metrics = rig.metrics
    await rig.initialise()
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycles(3)
    assert metrics.weights == {"podinfo-primary": 60, "podinfo": 40}
    rig.target.set_image("podinfo:3.0.0")
    await rig.cycles(1)
    assert "New revision detected! Restarting analysis for podinfo.default" in rig.recorder.messages
    assert rig.weights == (100, 0)
    assert metrics.weights == {"podinfo-primary": 100, "podinfo": 0}
    assert metrics.status == {"podinfo": 0}
