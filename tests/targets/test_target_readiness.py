"""Readiness (Flagger's deployment_ready_test.go and daemonset_ready_test.go)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.api.models import CanaryStatus
from coalmine.targets import daemonset as ds
from coalmine.targets import deployment as dep
from coalmine.targets.readiness import daemonset_readiness, deployment_readiness

from .targets_fixtures import make_canary

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _deployment(
    wanted: int = 2,
    *,
    generation: int = 1,
    observed: int = 1,
    conditions: list[dict[str, Any]] | None = None,
    **status: int,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "default", "generation": generation},
        "spec": {"replicas": wanted},
        "status": {"observedGeneration": observed, "conditions": conditions or [], **status},
    }


def test_unobserved_generation_is_retriable() -> None:
    verdict = deployment_readiness(_deployment(generation=2, observed=1), 60, 100, NOW)
    assert not verdict.ready
    assert verdict.retriable
    assert verdict.message == (
        "waiting for rollout to finish: observed deployment generation less than desired generation"
    )


def test_new_replicas_not_updated_yet() -> None:
    verdict = deployment_readiness(_deployment(2, updatedReplicas=1, replicas=2), 60, 100, NOW)
    assert (
        verdict.message
        == "waiting for rollout to finish: 1 out of 2 new replicas have been updated"
    )
    assert verdict.retriable


def test_old_replicas_pending_termination() -> None:
    verdict = deployment_readiness(_deployment(2, updatedReplicas=2, replicas=3), 60, 100, NOW)
    assert (
        verdict.message == "waiting for rollout to finish: 1 old replicas are pending termination"
    )


def test_updated_replicas_not_available() -> None:
    verdict = deployment_readiness(
        _deployment(2, updatedReplicas=2, replicas=2, availableReplicas=1), 60, 100, NOW
    )
    assert verdict.message == (
        "waiting for rollout to finish: 1 of 2 (readyThreshold 100%) updated replicas are available"
    )


def test_rolled_out_deployment_is_ready() -> None:
    verdict = deployment_readiness(
        _deployment(2, updatedReplicas=2, replicas=2, availableReplicas=2), 60, 100, NOW
    )
    assert verdict.ready


def test_progress_deadline_exceeded_is_not_retriable() -> None:
    conditions = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    verdict = deployment_readiness(
        _deployment(2, conditions=conditions, updatedReplicas=2, replicas=2, availableReplicas=2),
        60,
        100,
        NOW,
    )
    assert not verdict.ready
    assert not verdict.retriable
    assert verdict.message == 'deployment "podinfo" exceeded its progress deadline'


def test_minimum_replicas_unavailable_past_deadline_is_not_retriable() -> None:
    def conditions(since: datetime) -> list[dict[str, Any]]:
        return [
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "lastUpdateTime": _stamp(since),
            },
        ]

    stuck = _deployment(
        2,
        conditions=conditions(NOW - timedelta(seconds=61)),
        updatedReplicas=2,
        replicas=2,
        availableReplicas=0,
    )
    verdict = deployment_readiness(stuck, 60, 100, NOW)
    assert not verdict.ready
    assert not verdict.retriable
    fresh = _deployment(
        2,
        conditions=conditions(NOW - timedelta(seconds=30)),
        updatedReplicas=2,
        replicas=2,
        availableReplicas=0,
    )
    assert deployment_readiness(fresh, 60, 100, NOW).retriable


def test_ready_threshold_counts_a_share_of_updated_replicas() -> None:
    two_of_four = _deployment(4, updatedReplicas=4, replicas=4, availableReplicas=2)
    assert deployment_readiness(two_of_four, 60, 50, NOW).ready
    one_of_four = _deployment(4, updatedReplicas=4, replicas=4, availableReplicas=1)
    verdict = deployment_readiness(one_of_four, 60, 50, NOW)
    assert (
        verdict.message
        == "waiting for rollout to finish: 1 of 2 (readyThreshold 50%) updated replicas are available"
    )


def test_is_ready_wraps_primary_and_canary_messages() -> None:
    canary = make_canary()
    primary = _deployment(2, updatedReplicas=0, replicas=0)
    primary_verdict = dep.primary_readiness(canary, primary, NOW)
    assert primary_verdict.message.startswith(
        "podinfo-primary.default not ready: waiting for rollout"
    )
    target = _deployment(2, updatedReplicas=2, replicas=2, availableReplicas=2)
    assert dep.canary_readiness(canary, target, NOW).ready
    slow = _deployment(2, updatedReplicas=1, replicas=2)
    assert dep.canary_readiness(canary, slow, NOW).message.startswith(
        "canary deployment podinfo.default not ready: "
    )


def _daemonset(generation: int = 1, observed: int = 1, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "generation": generation},
        "status": {"observedGeneration": observed, **status},
    }


def test_daemonset_unobserved_generation_is_retriable() -> None:
    verdict = daemonset_readiness(_daemonset(2, 1), 60, 100, NOW, NOW)
    assert not verdict.ready
    assert verdict.retriable
    assert "observed daemonset generation less than desired generation" in verdict.message


def test_daemonset_ready_when_all_pods_updated_and_available() -> None:
    done = _daemonset(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3)
    assert daemonset_readiness(done, 60, 100, NOW, NOW).ready


def test_daemonset_waiting_for_updates_and_availability() -> None:
    updating = _daemonset(desiredNumberScheduled=3, updatedNumberScheduled=1, numberAvailable=3)
    verdict = daemonset_readiness(updating, 60, 100, NOW, NOW)
    assert verdict.retriable
    assert verdict.message == "waiting for rollout to finish: 1 out of 3 new pods have been updated"
    starting = _daemonset(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=1)
    verdict = daemonset_readiness(starting, 60, 100, NOW, NOW)
    assert (
        verdict.message
        == "waiting for rollout to finish: 1 of 3 (readyThreshold 100%) updated pods are available"
    )


def test_daemonset_past_deadline_is_not_retriable() -> None:
    updating = _daemonset(desiredNumberScheduled=3, updatedNumberScheduled=1, numberAvailable=1)
    verdict = daemonset_readiness(updating, 60, 100, NOW - timedelta(seconds=61), NOW)
    assert not verdict.retriable
    assert verdict.message == "exceeded its progressDeadlineSeconds: 60"


def test_daemonset_ready_threshold() -> None:
    half = _daemonset(desiredNumberScheduled=4, updatedNumberScheduled=4, numberAvailable=2)
    assert daemonset_readiness(half, 60, 50, NOW, NOW).ready
    quarter = _daemonset(desiredNumberScheduled=4, updatedNumberScheduled=4, numberAvailable=1)
    assert not daemonset_readiness(quarter, 60, 50, NOW, NOW).ready


def test_daemonset_is_ready_wraps_messages_and_uses_canary_transition_time() -> None:
    canary = make_canary(kind="DaemonSet")
    canary.status = CanaryStatus(last_transition_time=_stamp(NOW - timedelta(seconds=120)))
    stuck = _daemonset(desiredNumberScheduled=2, updatedNumberScheduled=0, numberAvailable=0)
    verdict = ds.canary_readiness(canary, stuck, NOW)
    assert not verdict.retriable
    assert (
        verdict.message
        == "canary daemonset podinfo.default not ready: exceeded its progressDeadlineSeconds: 60"
    )
    primary = ds.primary_readiness(canary, stuck, NOW)
    assert primary.message.startswith("primary daemonset podinfo-primary.default not ready: ")
