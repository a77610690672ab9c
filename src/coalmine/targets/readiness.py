"""Readiness of a workload's rollout, with Flagger's messages and retriable verdicts.

`retriable=False` means waiting cannot help (the rollout is stuck past its deadline): the scheduler
rolls back instead of waiting another interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coalmine.api.models import Canary


@dataclass(frozen=True)
class Readiness:
    ready: bool
    retriable: bool
    message: str

    def wrapped(self, prefix: str) -> Readiness:
        """The same verdict with the object named in front (`<name>.<ns> not ready: …`)."""
        if self.ready:
            return self
        return Readiness(False, self.retriable, f"{prefix}{self.message}")


READY = Readiness(True, True, "")


def parse_time(value: str | None) -> datetime | None:
    """A Kubernetes RFC 3339 timestamp (`2024-01-02T03:04:05Z`), or None when absent/unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def _required(count: int, threshold_percent: int) -> int:
    # Go truncates float32(count) * ratio toward zero.
    return math.floor(count * threshold_percent / 100)


def deployment_readiness(
    deployment: Mapping[str, Any], deadline_seconds: int, threshold_percent: int, now: datetime
) -> Readiness:
    """Flagger's isDeploymentReady over a Deployment as the API server returns it."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(metadata.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Readiness(
            False,
            True,
            "waiting for rollout to finish: observed deployment generation less than desired generation",
        )
    retriable = True
    progressing = _condition(status, "Progressing")
    if progressing is not None:
        available = _condition(status, "Available")
        if (
            available is not None
            and available.get("status") == "False"
            and available.get("reason") == "MinimumReplicasUnavailable"
        ):
            since = parse_time(available.get("lastUpdateTime"))
            if since is not None and since + timedelta(seconds=deadline_seconds) < now:
                retriable = False
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available_replicas = int(status.get("availableReplicas") or 0)
    required = _required(updated, threshold_percent)
    wanted = spec.get("replicas")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        name = metadata.get("name", "")
        return Readiness(False, False, f'deployment "{name}" exceeded its progress deadline')
    if wanted is not None and updated < int(wanted):
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated",
        )
    if replicas > updated:
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {replicas - updated} old replicas are pending termination",
        )
    if available_replicas < required:
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {available_replicas} of {required} "
            f"(readyThreshold {threshold_percent}%) updated replicas are available",
        )
    return READY


def daemonset_readiness(
    daemonset: Mapping[str, Any],
    deadline_seconds: int,
    threshold_percent: int,
    last_transition_time: datetime | None,
    now: datetime,
) -> Readiness:
    """Flagger's isDaemonSetReady; the deadline runs from the Canary's `status.lastTransitionTime`."""
    metadata = daemonset.get("metadata") or {}
    status = daemonset.get("status") or {}
    if int(metadata.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Readiness(
            False,
            True,
            "waiting for rollout to finish: observed daemonset generation less than desired generation",
        )
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    required = _required(desired, threshold_percent)
    not_updated = updated < desired
    not_available = available < required
    if not not_updated and not not_available:
        return READY
    if last_transition_time is not None and (
        last_transition_time + timedelta(seconds=deadline_seconds) < now
    ):
        return Readiness(False, False, f"exceeded its progressDeadlineSeconds: {deadline_seconds}")
    if not_updated:
        return Readiness(
            False,
            True,
            f"waiting for rollout to finish: {updated} out of {desired} new pods have been updated",
        )
    return Readiness(
        False,
        True,
        f"waiting for rollout to finish: {available} of {required} "
        f"(readyThreshold {threshold_percent}%) updated pods are available",
    )


def primary_prefix(kind: str, target_name: str, namespace: str) -> str:
    """Flagger's wrapping of a primary readiness error (`podinfo-primary.default not ready: `)."""
    if kind == "DaemonSet":
        return f"primary daemonset {target_name}-primary.{namespace} not ready: "
    return f"{target_name}-primary.{namespace} not ready: "


def canary_prefix(kind: str, target_name: str, namespace: str) -> str:
    """Flagger's wrapping of a canary readiness error: `canary deployment <name>.<ns> not ready: `."""
    return f"canary {kind.lower()} {target_name}.{namespace} not ready: "


def judge_readiness(
    canary: Canary, kind: str, *, primary: bool, judge: Callable[[int, int], Readiness]
) -> Readiness:
    """The primary's or the canary's verdict, wrapped in Flagger's message prefix.

    `judge(progress_deadline_seconds, ready_threshold_percent)` inspects the workload; the
    threshold is the analysis' primary or canary ready threshold (100 without analysis).
    """
    analysis = canary.spec.analysis
    if analysis is None:
        threshold = 100
    elif primary:
        threshold = analysis.effective_primary_ready_threshold
    else:
        threshold = analysis.effective_canary_ready_threshold
    verdict = judge(canary.spec.effective_progress_deadline_seconds, threshold)
    prefix = primary_prefix if primary else canary_prefix
    return verdict.wrapped(prefix(kind, canary.spec.target_ref.name, canary.namespace))
