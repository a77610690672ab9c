"""The workload simulator: plays the Deployment and DaemonSet controllers of a real cluster.

Operators judge a rollout by the workload's status (observedGeneration, updated/ready/available
counts, the Deployment's `Available` and `Progressing` conditions), so devcluster must move that
status the way kube-controller-manager does, without running pods. The simulator listens to the
store's change feed and only touches the objects that changed, so it stays cheap with thousands
of objects.

A rollout has two steps, as watchers of a real cluster see it:
1. at once: `observedGeneration` catches up, the new ReplicaSet/pods are "created" but not ready
   (`updatedReplicas` 0 on a template change, `Progressing` reason `NewReplicaSetCreated` or
   `ReplicaSetUpdated`);
2. after the rollout delay: every replica is updated, ready and available (`NewReplicaSetAvailable`,
   `MinimumReplicasAvailable`) -- or, with the fail annotation, the rollout times out
   (`Progressing` False `ProgressDeadlineExceeded`, `Available` False `MinimumReplicasUnavailable`,
   DaemonSet `numberUnavailable` = desired).

Annotations on the Deployment or DaemonSet (see `FAIL_ROLLOUT`, `ROLLOUT_DELAY`):
- `devcluster.coalmine.dev/fail-rollout: "true"` makes the rollout fail as above;
- `devcluster.coalmine.dev/rollout-delay: "2s"` sets this object's delay (`500ms`, `1m`, `1.5`).

Simulated nodes (`nodes`, default 1) carry only `kubernetes.io/os: linux`, `kubernetes.io/arch:
amd64` and `kubernetes.io/hostname: devcluster-node-<i>`; a DaemonSet schedules on the nodes its
`nodeSelector` matches, so Flagger's `flagger.app/scale-to-zero` selector yields 0 desired pods.

Differences from real controllers: no ReplicaSets, Pods or Node objects are created; node affinity,
taints and tolerations are ignored; `maxSurge` is ignored and the replica counts jump from the old
to the new state in one step; a status written by someone else is left alone until the spec or a
simulator annotation changes; zero counts of a Deployment are omitted (Go's omitempty), as the real
API shows them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from coalmine.devcluster.errors import ApiError

__all__ = [
    "FAIL_ROLLOUT",
    "ROLLOUT_DELAY",
    "WorkloadSimulator",
    "node_labels",
    "parse_duration",
]

log = logging.getLogger(__name__)

FAIL_ROLLOUT = "devcluster.coalmine.dev/fail-rollout"
ROLLOUT_DELAY = "devcluster.coalmine.dev/rollout-delay"

DEPLOYMENTS = "deployments.apps"
DAEMONSETS = "daemonsets.apps"

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def node_labels(index: int) -> dict[str, str]:
    """The labels of simulated node `index` (1-based)."""
    return {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": f"devcluster-node-{index}",
    }


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (`500ms`, `1m30s`) or a plain number of seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"invalid duration {text!r}") from None
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {text!r}")
    return seconds


class _Store(Protocol):
    """The part of `store.Store` the simulator uses (its documented in-process API)."""

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...
    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[dict[str, Any]]: ...
    def update_status(self, obj: dict[str, Any], resource: str | None = None) -> dict[str, Any]: ...
    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...


def _dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else empty: built-in kinds are not schema-validated, so a
    workload's spec or status may hold anything and must not break the simulator."""
    return value if isinstance(value, dict) else {}


def _count(status: dict[str, Any], key: str) -> int:
    value = status.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: Any) -> str:
    """A stable pod-template-hash-like name suffix for a pod template."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def _replicas(obj: dict[str, Any]) -> int:
    value = _dict(obj.get("spec")).get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1


def _max_unavailable(obj: dict[str, Any], replicas: int) -> int:
    strategy = _dict(_dict(obj.get("spec")).get("strategy"))
    if strategy.get("type") == "Recreate":
        return replicas
    value = _dict(strategy.get("rollingUpdate")).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.floor(replicas * float(value[:-1]) / 100)
        except ValueError:
            return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 0), replicas)
    return 0


def _set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: str,
) -> list[dict[str, Any]]:
    result = [dict(c) for c in conditions]
    for condition in result:
        if condition.get("type") == type_:
            if (condition.get("status"), condition.get("reason"), condition.get("message")) == (
                status,
                reason,
                message,
            ):
                return result
            if condition.get("status") != status:
                condition["lastTransitionTime"] = now
            condition.update(status=status, reason=reason, message=message, lastUpdateTime=now)
            return result
    result.append(
        {
            "type": type_,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )
    return result


def _omit_zeros(status: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if not (k in keys and v == 0)}


_DEPLOYMENT_OMITEMPTY = (
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)
_DAEMONSET_OMITEMPTY = ("updatedNumberScheduled", "numberAvailable", "numberUnavailable")


@dataclass
class _Tracked:
    """What the simulator knows about one workload between store events."""

    signature: tuple[Any, ...] = ()
    rolled_out_hash: str = ""
    timer: asyncio.TimerHandle | None = None
    pending: list[asyncio.Handle] = field(default_factory=list)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for handle in self.pending:
            handle.cancel()
        self.pending.clear()


class WorkloadSimulator:
    """Moves Deployment and DaemonSet status like the real controllers; see the module docstring.

    Use inside a running event loop: `start()` subscribes to the store and catches up with the
    objects already there; `stop()` unsubscribes and cancels pending steps. Also an async context
    manager.
    """

    def __init__(self, store: Any, rollout_delay: float = 0.5, nodes: int = 1) -> None:
        if rollout_delay < 0:
            raise ValueError("rollout_delay must be >= 0")
        if nodes < 0:
            raise ValueError("nodes must be >= 0")
        self.store: _Store = store
        self.rollout_delay = rollout_delay
        self.nodes = [node_labels(i + 1) for i in range(nodes)]
        self._tracked: dict[tuple[str, str, str], _Tracked] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._unsubscribe is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.store.subscribe(self._on_change)
        for storage in (DEPLOYMENTS, DAEMONSETS):
            for obj in self.store.list(storage):
                self._observe(storage, obj, initial=True)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for tracked in self._tracked.values():
            tracked.cancel()
        self._tracked.clear()

    async def __aenter__(self) -> WorkloadSimulator:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    # --- change feed ----------------------------------------------------------------------------

    def _on_change(self, change: Any) -> None:
        storage = change.storage
        if storage != DEPLOYMENTS and storage != DAEMONSETS:
            return
        obj = change.entry.obj
        if change.type == "DELETED":
            meta = _dict(obj.get("metadata"))
            tracked = self._tracked.pop(
                (storage, meta.get("namespace", ""), meta.get("name", "")), None
            )
            if tracked is not None:
                tracked.cancel()
            return
        self._observe(storage, obj, initial=False)

    def _observe(self, storage: str, obj: dict[str, Any], initial: bool) -> None:
        """Schedule a rollout when the spec or a simulator annotation changed since last seen."""
        meta = _dict(obj.get("metadata"))
        key = (storage, meta.get("namespace", ""), meta.get("name", ""))
        annotations = _dict(meta.get("annotations"))
        signature = (
            meta.get("generation"),
            annotations.get(FAIL_ROLLOUT),
            annotations.get(ROLLOUT_DELAY),
        )
        tracked = self._tracked.get(key)
        if tracked is None:
            tracked = self._tracked[key] = _Tracked()
        elif tracked.signature == signature:
            return  # our own status write, or a metadata-only change
        tracked.signature = signature
        tracked.cancel()
        loop = self._loop
        assert loop is not None
        status = _dict(obj.get("status"))
        caught_up = status.get("observedGeneration") == meta.get("generation")
        if initial and caught_up:
            # Already rolled out before we started: remember the template, only re-check the end.
            tracked.rolled_out_hash = template_hash(_dict(obj.get("spec")).get("template"))
        else:
            tracked.pending.append(loop.call_soon(self._step, key, False))
        delay = self._delay(annotations, key)
        tracked.timer = loop.call_later(delay, self._step, key, True)

    def _delay(self, annotations: dict[str, Any], key: tuple[str, str, str]) -> float:
        text = annotations.get(ROLLOUT_DELAY)
        if text is None:
            return self.rollout_delay
        try:
            return parse_duration(str(text))
        except ValueError:
            log.warning(
                "%s %s/%s: annotation %s: invalid duration %r, using %ss",
                key[0],
                key[1],
                key[2],
                ROLLOUT_DELAY,
                text,
                self.rollout_delay,
            )
            return self.rollout_delay

    # --- status steps ---------------------------------------------------------------------------

    def _step(self, key: tuple[str, str, str], finished: bool) -> None:
        storage, namespace, name = key
        tracked = self._tracked.get(key)
        if tracked is None:
            return
        if finished:
            tracked.timer = None
        try:
            obj = self.store.get(storage, name, namespace or None)
        except ApiError as error:  # the object went away between the event and this step
            log.debug("simulator: %s %s/%s not readable: %s", storage, namespace, name, error)
            return
        if storage == DEPLOYMENTS:
            status = self._deployment_status(obj, tracked, finished)
        else:
            status = self._daemonset_status(obj, tracked, finished)
        if status == obj.get("status"):
            return
        obj["status"] = status
        obj["metadata"].pop("resourceVersion", None)
        try:
            self.store.update_status(obj, storage)
        except ApiError as error:  # deleted meanwhile, or the store refused: a log, not a crash
            log.warning(
                "simulator: status of %s %s/%s not written: %s", storage, namespace, name, error
            )

    def _rollout_outcome(
        self, obj: dict[str, Any], tracked: _Tracked, finished: bool
    ) -> tuple[str, bool, bool]:
        """(template hash, template changed since the last finished rollout, rollout failed)."""
        spec = _dict(obj.get("spec"))
        current_hash = template_hash(spec.get("template"))
        changed = current_hash != tracked.rolled_out_hash
        annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
        failed = str(annotations.get(FAIL_ROLLOUT, "")).lower() == "true"
        if finished and not failed:
            tracked.rolled_out_hash = current_hash
        return current_hash, changed, failed

    def _deployment_status(
        self, obj: dict[str, Any], tracked: _Tracked, finished: bool
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        spec = _dict(obj.get("spec"))
        old = _dict(obj.get("status"))
        desired = _replicas(obj)
        current_hash, changed, failed = self._rollout_outcome(obj, tracked, finished)
        replica_set = f"{meta['name']}-{current_hash}"
        now = _now()
        conditions: list[dict[str, Any]] = [
            c for c in old.get("conditions") or [] if isinstance(c, dict)
        ]
        min_available = desired - _max_unavailable(obj, desired)

        if spec.get("paused"):
            replicas = _count(old, "replicas")
            updated = _count(old, "updatedReplicas")
            ready = _count(old, "readyReplicas")
            available = _count(old, "availableReplicas")
            conditions = _set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
            )
        elif not finished:
            replicas = max(_count(old, "replicas"), desired)
            if not old.get("observedGeneration"):
                updated = desired  # a new Deployment's first pods are all of the new template
            elif changed:
                updated = 0
            else:
                updated = min(_count(old, "updatedReplicas"), desired)
            ready = min(_count(old, "readyReplicas"), desired)
            available = min(_count(old, "availableReplicas"), desired)
            if changed:
                reason, message = "NewReplicaSetCreated", f'Created new replica set "{replica_set}"'
            else:
                reason, message = "ReplicaSetUpdated", f'ReplicaSet "{replica_set}" is progressing.'
            conditions = _set_condition(conditions, "Progressing", "True", reason, message, now)
        elif failed:
            replicas = updated = desired
            ready = available = 0
            conditions = _set_condition(
                conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{replica_set}" has timed out progressing.',
                now,
            )
        else:
            replicas = updated = ready = available = desired
            conditions = _set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{replica_set}" has successfully progressed.',
                now,
            )
        if available >= min_available:
            conditions = _set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            )
        else:
            conditions = _set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            )
        conditions.sort(key=lambda c: 0 if c.get("type") == "Available" else 1)
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
            "conditions": conditions,
        }
        for extra in ("collisionCount",):
            if extra in old:
                status[extra] = old[extra]
        return _omit_zeros(status, _DEPLOYMENT_OMITEMPTY)

    def _scheduled_nodes(self, obj: dict[str, Any]) -> int:
        template_spec = _dict(_dict(_dict(obj.get("spec")).get("template")).get("spec"))
        selector = _dict(template_spec.get("nodeSelector"))
        return sum(
            1 for labels in self.nodes if all(labels.get(k) == v for k, v in selector.items())
        )

    def _daemonset_status(
        self, obj: dict[str, Any], tracked: _Tracked, finished: bool
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        old = _dict(obj.get("status"))
        desired = self._scheduled_nodes(obj)
        _, changed, failed = self._rollout_outcome(obj, tracked, finished)
        if not finished:
            if not old.get("observedGeneration"):
                updated = desired
            elif changed:
                updated = 0
            else:
                updated = min(_count(old, "updatedNumberScheduled"), desired)
            ready = min(_count(old, "numberReady"), desired)
        elif failed:
            updated, ready = desired, 0
        else:
            updated = ready = desired
        status = {
            "currentNumberScheduled": desired,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": meta.get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": ready,
            "numberUnavailable": desired - ready,
        }
        if "collisionCount" in old:
            status["collisionCount"] = old["collisionCount"]
        return _omit_zeros(status, _DAEMONSET_OMITEMPTY)
