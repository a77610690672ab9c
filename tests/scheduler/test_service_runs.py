"""Flagger's TestScheduler_Service*: a core Service target behind a weighted router."""

from __future__ import annotations

from typing import Any

import pytest

from .fakes import Rig, make_canary


async def primary_weights_until_promoting(analysis: dict[str, Any]) -> tuple[list[int], Rig]:
    rig = Rig(make_canary("Service", {"interval": "1m", "threshold": 10, **analysis}))
    await rig.initialise()
    rig.target.target_spec = {"selector": {"app": "podinfo-v2"}, "ports": [{"port": 9898}]}
    await rig.cycle()
    assert rig.phase == "Progressing"
    weights = [rig.weights[0]]
    for _ in range(10):
        await rig.cycle()
        if rig.phase != "Progressing":
            break
        weights.append(rig.weights[0])
    assert rig.phase == "Promoting"
    return weights, rig


async def test_service_promotion_steps_past_max_weight_then_promotes() -> None:
    weights, rig = await primary_weights_until_promoting({"stepWeight": 20, "maxWeight": 50})
    assert weights == [100, 80, 60, 40]
    assert rig.target.primary_spec == {"selector": {"app": "podinfo-v2"}, "ports": [{"port": 9898}]}
    await rig.cycle()
    assert (rig.phase, rig.weights) == ("Finalising", (100, 0))
    await rig.cycle()
    assert rig.phase == "Succeeded"
    assert rig.status.tracked_configs is None


@pytest.mark.parametrize(
    ("analysis", "expected"),
    [
        ({"stepWeight": 50, "maxWeight": 100}, [100, 50, 0]),
        ({"stepWeights": [1, 2, 10, 80]}, [100, 99, 98, 90, 20]),
        ({"stepWeights": [1, 2, 10, 200]}, [100, 99, 98, 90, 0]),
    ],
    ids=["max-weight", "step-weights", "step-weights-overflow"],
)
async def test_service_promotion_weight_sequences(
    analysis: dict[str, Any], expected: list[int]
) -> None:
    weights, _ = await primary_weights_until_promoting(analysis)
    assert weights == expected


async def test_service_target_events_name_the_service_copies() -> None:
    canary = make_canary("Service", service={"port": 9898, "name": "frontend"})
    rig = Rig(canary)
    await rig.new_revision()
    await rig.cycles(9)
    assert (
        "Copying podinfo.default template spec to frontend-primary.default" in rig.recorder.messages
    )
    assert rig.alerts.sent[0] == ("New Service detected, initialization completed.", "info", True)
    condition = (rig.status.conditions or [])[0]
    assert (condition.reason, condition.status) == ("Succeeded", "True")


async def test_service_target_with_kubernetes_provider_promotes_without_routing() -> None:
    rig = Rig(
        make_canary(
            "Service", {"interval": "1m", "threshold": 10, "iterations": 2}, provider="kubernetes"
        )
    )
    await rig.new_revision()
    for _ in range(10):
        await rig.cycle()
        if rig.phase == "Succeeded":
            break
    assert rig.phase == "Succeeded"
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.router.history == []


async def test_session_affinity_cookie_is_persisted_with_the_weight() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 10,
        "stepWeight": 50,
        "maxWeight": 50,
        "sessionAffinity": {"cookieName": "flagger-cookie"},
    }
    rig = Rig(make_canary("Service", analysis))
    await rig.new_revision()
    await rig.cycles(2)
    assert rig.status.session_affinity_cookie == "flagger-cookie=run1"
    await rig.cycles(2)  # Promoting, then all traffic back to the primary
    assert rig.status.session_affinity_cookie is None
    assert rig.status.previous_session_affinity_cookie == "flagger-cookie=run1"
