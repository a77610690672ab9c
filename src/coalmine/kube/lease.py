"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

Safety rests on one inequality: a leader stops acting once it has failed to renew for
`renew_deadline`, which is shorter than `lease_duration`, the time a standby waits after the
last renewal it saw before taking over. So the old leader has stopped all jobs before any other
replica can start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coalmine.kube.api import Conflict, KubeApi, NotFound, Object
from coalmine.kube.kinds import LEASE

log = logging.getLogger(__name__)

LEASE_NAME = "flagger-leader-election"


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseTimings:
    """Flagger's defaults: lease 60 s, renew deadline 15 s, retry 5 s."""

    lease_duration: float = 60.0
    renew_deadline: float = 15.0
    retry_period: float = 5.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")


class LeaderElector:
    """Acquires and renews the Lease; `run()` returns when leadership is lost."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        *,
        name: str = LEASE_NAME,
        identity: str | None = None,
        timings: LeaseTimings | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.timings = timings or LeaseTimings()
        self._observed_holder: str | None = None
        self._observed_record: tuple[object, ...] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait for the lease, run `lead()` while holding it; cancel `lead` when it is lost."""
        await self._acquire()
        self.is_leader = True
        log.info("%s became leader of %s/%s", self.identity, self.namespace, self.name)
        leading = asyncio.create_task(lead(), name="leader")
        renewing = asyncio.create_task(self._keep_renewing(), name="lease renewal")
        try:
            done, _ = await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.is_leader = False
            for task in (leading, renewing):
                task.cancel()
            for task in (leading, renewing):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if leading in done and not leading.cancelled() and leading.exception() is None:
            await self.release()

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            await asyncio.sleep(self.timings.retry_period)

    async def _keep_renewing(self) -> None:
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.timings.retry_period)
            try:
                renewed = await asyncio.wait_for(
                    self._try_acquire_or_renew(), self.timings.retry_period
                )
            except Exception as error:
                log.warning("lease renewal failed: %s", error)
                renewed = False
            if renewed:
                last_renewal = time.monotonic()
            elif time.monotonic() - last_renewal >= self.timings.renew_deadline:
                log.error("%s lost leadership of %s/%s", self.identity, self.namespace, self.name)
                return

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        lease = await self.api.get_or_none(LEASE, self.name, self.namespace)
        if lease is None:
            try:
                created = await self.api.create(LEASE, self._lease_object(now, transitions=0))
            except Conflict:
                return False
            self._remember(created)
            return True
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity") or ""
        self._remember(lease)
        expired = time.monotonic() - self._observed_at >= float(
            spec.get("leaseDurationSeconds") or self.timings.lease_duration
        )
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder != self.identity:
            transitions += 1
        updated = self._lease_object(now, transitions)
        updated["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        if holder == self.identity and spec.get("acquireTime"):
            updated["spec"]["acquireTime"] = spec["acquireTime"]
        try:
            replaced = await self.api.replace(LEASE, updated)
        except (Conflict, NotFound):
            return False
        self._remember(replaced)
        return True

    def _remember(self, lease: Object) -> None:
        """Expiry is judged by our own clock from when the record last changed, as client-go does."""
        spec = lease.get("spec", {})
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = time.monotonic()
            self._observed_holder = spec.get("holderIdentity")

    def _lease_object(self, now: datetime, transitions: int) -> Object:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.timings.lease_duration),
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    async def release(self) -> None:
        """Give the lease up on a clean exit so a standby need not wait for it to expire."""
        lease = await self.api.get_or_none(LEASE, self.name, self.namespace)
        if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = ""
        lease["spec"]["leaseDurationSeconds"] = 1
        with contextlib.suppress(Conflict, NotFound):
            await self.api.replace(LEASE, lease)
