"""The scheduler's pure helpers: weight arithmetic, status writers, conditions, hashes, job timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.api import hashing
from coalmine.api.models import Canary, CanaryAnalysis, CanaryStatus, Condition
from coalmine.scheduler import status, timing, weights

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def analysis(**fields: Any) -> CanaryAnalysis:
    return CanaryAnalysis.model_validate({"interval": "1m", "threshold": 5, **fields})


# --- weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"stepWeight": 10}, 100),
        ({"stepWeight": 10, "maxWeight": 50}, 50),
        ({"stepWeights": [1, 2, 10, 80]}, 80),
        ({"stepWeights": [1, 2, 10, 200]}, 100),
        ({"stepWeights": [5, 30], "maxWeight": 90}, 30),
    ],
)
def test_max_weight(fields: dict[str, Any], expected: int) -> None:
    assert weights.max_weight(analysis(**fields)) == expected


@pytest.mark.parametrize(
    ("fields", "current", "expected"),
    [
        ({"stepWeight": 20}, 40, 20),
        ({"stepWeight": 0}, 0, 0),
        ({}, 0, 0),
        ({"stepWeights": [1, 2, 10, 80]}, 0, 1),
        ({"stepWeights": [1, 2, 10, 80]}, 2, 8),
        ({"stepWeights": [1, 2, 10, 80]}, 10, 70),
        ({"stepWeights": [1, 2, 10, 200]}, 10, 90),
        ({"stepWeights": [1, 2, 10, 80]}, 33, 67),  # not in the list: jump to 100
        ({"stepWeights": [1, 2, 10, 80]}, 100, 1),
    ],
)
def test_next_step_weight(fields: dict[str, Any], current: int, expected: int) -> None:
    assert weights.next_step_weight(analysis(**fields), current) == expected


def test_canary_step_is_not_clamped_to_max_weight() -> None:
    step = weights.canary_step(analysis(stepWeight=20, maxWeight=50), 60, 40, False, mirror=False)
    assert (step.primary_weight, step.canary_weight) == (40, 60)


def test_mirrored_first_step_starts_the_mirror_only() -> None:
    mirror = analysis(stepWeight=10, mirror=True)
    assert weights.canary_step(mirror, 100, 0, False, mirror=True) == weights.Step(100, 0, True)
    assert weights.canary_step(mirror, 100, 0, True, mirror=True) == weights.Step(90, 10, False)
    assert weights.canary_step(mirror, 90, 10, False, mirror=True) == weights.Step(80, 20, False)


@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=6))
def test_step_weights_always_reach_promotion(steps: list[int]) -> None:
    config = analysis(stepWeights=sorted(set(steps)))
    canary, primary = 0, 100
    for _ in range(200):
        if canary >= weights.max_weight(config):
            break
        step = weights.canary_step(config, primary, canary, False, mirror=False)
        assert step.canary_weight > canary
        assert step.primary_weight + step.canary_weight == 100
        primary, canary = step.primary_weight, step.canary_weight
    assert canary >= weights.max_weight(config)


def test_mirror_on_a_router_without_mirroring_steps_traffic_directly() -> None:
    mirror = analysis(stepWeight=10, mirror=True)
    assert weights.canary_step(mirror, 100, 0, False, mirror=False) == weights.Step(90, 10, False)


def test_promotion_step_caps_at_full_primary() -> None:
    assert weights.promotion_step(analysis(stepWeightPromotion=30), 80, 20) == (100, 0)
    assert weights.promotion_step(analysis(stepWeightPromotion=30), 0, 100) == (30, 70)


# --- status writers -----------------------------------------------------------------------------


def test_sync_status_writes_counters_as_given_and_promotes_only_on_initialized() -> None:
    old = CanaryStatus(
        phase="Progressing",
        canary_weight=40,
        failed_checks=3,
        iterations=2,
        last_promoted_spec="old",
    )
    new = status.sync_status(
        old,
        phase="Progressing",
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        spec_hash="new",
        tracked_configs={"secret/db": "abc"},
        kind="Deployment",
        now=NOW,
    )
    assert (new.canary_weight, new.failed_checks, new.iterations) == (0, 0, 0)
    assert (new.last_applied_spec, new.last_promoted_spec) == ("new", "old")
    assert new.tracked_configs == {"secret/db": "abc"}
    assert new.last_transition_time == "2026-01-01T12:00:00Z"
    assert old.canary_weight == 40  # the input is never mutated
    initialised = status.sync_status(
        None,
        phase="Initialized",
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        spec_hash="h",
        tracked_configs=None,
        kind="Service",
        now=NOW,
    )
    assert initialised.last_promoted_spec == "h"
    assert initialised.tracked_configs is None


@pytest.mark.parametrize(
    ("phase", "weight", "iterations"),
    [
        ("Progressing", 30, 2),
        ("Waiting", 30, 2),
        ("Promoting", 30, 2),
        ("Finalising", 0, 0),
        ("Succeeded", 0, 0),
        ("Failed", 0, 0),
        ("WaitingPromotion", 30, 4),
    ],
)
def test_set_phase_resets_counters_outside_running_phases(
    phase: Any, weight: int, iterations: int
) -> None:
    old = CanaryStatus(
        phase="Progressing",
        canary_weight=30,
        iterations=2,
        last_applied_spec="a",
        last_promoted_spec="p",
    )
    new = status.set_phase(
        old, phase, kind="Deployment", now=NOW, analysis_iterations=5, routed_canary_weight=30
    )
    assert (new.canary_weight, new.iterations) == (weight, iterations)
    assert new.last_promoted_spec == ("a" if phase == "Succeeded" else "p")


def test_waiting_promotion_never_writes_negative_iterations() -> None:
    new = status.set_phase(
        CanaryStatus(), "WaitingPromotion", kind="Deployment", now=NOW, routed_canary_weight=50
    )
    assert (new.iterations, new.canary_weight) == (0, 50)


@pytest.mark.parametrize(
    ("phase", "condition_status", "message"),
    [
        ("Initializing", "Unknown", "New Service detected, starting initialization."),
        ("Initialized", "True", "Service initialization completed."),
        ("Waiting", "Unknown", "Waiting for approval."),
        ("WaitingPromotion", "Unknown", "Waiting for approval."),
        ("Progressing", "Unknown", "New revision detected, progressing canary analysis."),
        ("Promoting", "Unknown", "Canary analysis completed, starting primary rolling update."),
        ("Finalising", "Unknown", "Canary analysis completed, routing all traffic to primary."),
        ("Succeeded", "True", "Canary analysis completed successfully, promotion finished."),
        ("Failed", "False", "Canary analysis failed, all traffic routed back to the primary copy."),
        ("Terminating", "Unknown", "New Service detected, starting initialization."),
    ],
)
def test_promoted_condition_per_phase(phase: str, condition_status: str, message: str) -> None:
    (condition,) = status.make_conditions(None, phase, "Service", "t0")
    assert (condition.type, condition.status, condition.reason, condition.message) == (
        "Promoted",
        condition_status,
        phase,
        message,
    )


def test_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    existing = status.make_conditions(None, "Progressing", "Deployment", "t0")
    same = status.make_conditions(existing, "Progressing", "Deployment", "t1")
    assert same[0].last_update_time == "t0"  # same status and reason: not rewritten
    moved = status.make_conditions(existing, "Promoting", "Deployment", "t1")
    assert (moved[0].last_transition_time, moved[0].last_update_time) == ("t0", "t1")
    flipped = status.make_conditions(moved, "Succeeded", "Deployment", "t2")
    assert flipped[0].last_transition_time == "t2"


def test_other_condition_types_are_kept() -> None:
    foreign = Condition(type="Ready", status="True", reason="Ready")
    result = status.make_conditions([foreign], "Initialized", "Deployment", "t0")
    assert [c.type for c in result] == ["Promoted", "Ready"]


def test_initial_status_marks_initializing() -> None:
    new = status.initial_status(None, "Deployment", NOW)
    assert new.phase == "Initializing"
    assert new.conditions is not None
    assert new.conditions[0].message == "New Deployment detected, starting initialization."


@pytest.mark.parametrize(
    ("applied", "promoted", "current", "changed"),
    [
        (None, None, "a", True),
        ("a", "a", "a", False),
        ("b", "a", "a", False),  # back to the promoted spec
        ("b", "a", "c", True),
        ("b", "a", "b", False),
    ],
)
def test_has_spec_changed(
    applied: str | None, promoted: str | None, current: str, changed: bool
) -> None:
    old = CanaryStatus(last_applied_spec=applied, last_promoted_spec=promoted)
    assert status.has_spec_changed(old, current) is changed


@pytest.mark.parametrize(
    ("current", "tracked", "changed"),
    [
        (None, None, False),
        ({}, None, False),
        ({"configmap/a": "1"}, None, True),
        ({"configmap/a": "1"}, {"configmap/a": "1"}, False),
        ({"configmap/a": "2"}, {"configmap/a": "1"}, True),
        ({"configmap/a": "1"}, {"configmap/a": "1", "secret/b": "2"}, True),
    ],
)
def test_have_configs_changed(
    current: dict[str, str] | None, tracked: dict[str, str] | None, changed: bool
) -> None:
    assert status.have_configs_changed(current, tracked) is changed


def test_phase_gauge() -> None:
    assert [status.phase_gauge(p) for p in ("Progressing", "Failed", "Succeeded", None)] == [
        0,
        2,
        1,
        1,
    ]


# --- hashes -------------------------------------------------------------------------------------


def test_spec_hash_ignores_key_order_and_is_recognisably_ours() -> None:
    first = hashing.spec_hash({"b": 1, "a": {"y": [1, 2], "x": "é"}})
    assert first == hashing.spec_hash({"a": {"x": "é", "y": [1, 2]}, "b": 1})
    assert first != hashing.spec_hash({"a": {"x": "é", "y": [2, 1]}, "b": 1})
    assert hashing.is_own_hash(first)
    assert not hashing.is_foreign_hash(first)


@pytest.mark.parametrize("flagger_hash", ["5f56684589", "7b9d4f8c6d", "65bdf6f"])
def test_flagger_hashes_are_foreign(flagger_hash: str) -> None:
    assert hashing.is_foreign_hash(flagger_hash)
    assert not hashing.is_foreign_hash("")
    assert not hashing.is_foreign_hash(None)


def test_release_checksum_changes_with_configs_and_tells_untracked_from_empty() -> None:
    base = hashing.release_checksum("h", {"configmap/a": "1"})
    assert base == hashing.release_checksum("h", {"configmap/a": "1"})
    assert base != hashing.release_checksum("h", {"configmap/a": "2"})
    assert hashing.release_checksum("h", None) != hashing.release_checksum("h", {})


# --- job timing ---------------------------------------------------------------------------------


def canary_with(interval: str | None, name: str = "podinfo", namespace: str = "default") -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 80},
    }
    if interval is not None:
        spec["analysis"] = {"interval": interval, "threshold": 1}
    return Canary.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


@pytest.mark.parametrize(
    ("interval", "minimum", "expected"),
    [
        ("1m", 10, 60),
        ("5s", 10, 10),
        ("5s", 1, 5),
        ("2m30s", 10, 150),
        (None, 10, 60),
        ("90m", 10, 5400),
    ],
)
def test_job_interval(interval: str | None, minimum: float, expected: float) -> None:
    assert timing.job_interval(canary_with(interval), minimum) == expected


def test_duplicate_target_message_and_namespace_counts() -> None:
    canaries = [
        canary_with("1m", "a"),
        canary_with("1m", "a"),
        canary_with("1m", "b", "other"),
    ]
    assert timing.duplicate_target_message("a.default") == (
        "Bad things will happen! Found more than one canary with the same target a.default"
    )
    assert timing.canaries_per_namespace(canaries) == {"default": 2, "other": 1}


def test_deployment_targets_keep_flaggers_failed_condition_text() -> None:
    (condition,) = status.make_conditions(None, "Failed", "Deployment", "t0")
    assert condition.message == "Canary analysis failed, Deployment scaled to zero."


def test_any_later_write_drops_the_reverted_condition() -> None:
    reverted = status.mark_reverted(CanaryStatus(phase="Failed"), NOW)
    assert [c.type for c in reverted.conditions or []] == ["Reverted"]
    again = status.set_phase(reverted, "Progressing", kind="Service", now=NOW)
    assert "Reverted" not in [c.type for c in again.conditions or []]
