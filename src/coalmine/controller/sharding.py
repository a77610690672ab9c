"""The controller's side of sharding: which canaries this replica runs, and a cycle ledger.

`kube.shards.ShardMembership` decides ownership; here the reconciler's jobs follow it. Every
replica keeps the full bookkeeping of every canary (validation, duplicate targets need all of
them), but only the owner writes and runs a job, so a membership change only starts and stops
the jobs of the canaries that moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from coalmine.controller.settings import Settings
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Informer, object_key
from coalmine.kube.lease import LeaseTimings
from coalmine.kube.shards import Fenced, FencedKubeApi, ShardMembership

log = logging.getLogger(__name__)

BATCH_KEYS = 100
"""Canaries started (or stopped) between two yields to the event loop in a rebalance: each
started job's first cycle runs in the next loop iteration, so a batch costs that iteration about
100 cycle starts (well under the ~0.5 s the membership rounds on the same loop can wait)."""
BATCH_SECONDS = 0.05
"""...and at most this long spent starting canaries before yielding."""


class CycleLedger:
    """One line per cycle boundary, `S|E <unix time> <canary> <replica>`, flushed per line, and
    one `R <unix time> +<started>/-<stopped> <replica>` when a rebalance has started (jobs
    exist for) every canary that became this replica's and stopped those it handed over.

    `bench/shards.py` reads the ledgers of all replicas to count cycles of one canary that ran
    on two replicas at once. Written line by line so a replica killed with SIGKILL leaves a
    ledger complete up to the kill (a start with no end ran until then).
    """

    def __init__(self, path: str, identity: str) -> None:
        self.identity = identity
        self._file: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 (lives with the process)

    @contextlib.contextmanager
    def cycle(self, key: str) -> Iterator[None]:
        self._file.write(f"S {time.time():.6f} {key} {self.identity}\n")
        try:
            yield
        finally:
            self._file.write(f"E {time.time():.6f} {key} {self.identity}\n")

    def rebalanced(self, started: int, stopped: int) -> None:
        self._file.write(f"R {time.time():.6f} +{started}/-{stopped} {self.identity}\n")

    def close(self) -> None:
        self._file.close()


def ledger_for(path: str, identity: str) -> CycleLedger | None:
    return CycleLedger(os.path.expanduser(path), identity) if path else None


class _NoLedger:
    @contextlib.contextmanager
    def cycle(self, key: str) -> Iterator[None]:
        yield


NO_LEDGER = _NoLedger()


class JobOwnership:
    """Starts and stops jobs as ownership moves; `mine(key)` gates every write of the runtime."""

    def __init__(self, membership: ShardMembership | None) -> None:
        self.membership = membership
        self._owned: set[str] = set()
        self.wanted = asyncio.Event()
        """Set by the membership after a round that moved ownership."""

    async def keep_balanced(self, rebalance: Callable[[], Awaitable[None]]) -> None:
        """Rebalance after each ownership change, off the membership's rounds: starting
        thousands of canaries takes longer than the renew deadline, and the rounds must go on
        meanwhile. Changes during a rebalance coalesce into one more."""
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            try:
                await rebalance()
            except Exception as error:
                log.error("shard rebalance failed: %s", error)
                self.wanted.set()
                await asyncio.sleep(1.0)

    def mine(self, key: str) -> bool:
        return self.membership is None or self.membership.owns(key)

    async def rebalance(
        self,
        keys: list[str],
        start: Callable[[str], Awaitable[None]],
        stop: Callable[[str], Awaitable[None]],
    ) -> tuple[int, int]:
        """Start the canaries that became ours, stop those that left; (started, stopped).

        Thousands move when a replica dies: they start in batches with one yield to the loop
        each (not one per canary, which while analysing waits for every other cycle's I/O once
        per canary), so the last starts a moment after the first, and the loop is never held
        for long."""
        owned = {key for key in keys if self.mine(key)}
        gained, lost = owned - self._owned, self._owned - owned
        self._owned = owned
        lost_keys = list(lost)
        for first in range(0, len(lost_keys), BATCH_KEYS):
            await asyncio.gather(*(stop(key) for key in lost_keys[first : first + BATCH_KEYS]))
        loop = asyncio.get_running_loop()
        batch, until = 0, loop.time() + BATCH_SECONDS
        for key in gained:
            await start(key)
            batch += 1
            if batch >= BATCH_KEYS or loop.time() >= until:
                await asyncio.sleep(0)  # the batch's first cycles run, and the rounds
                batch, until = 0, loop.time() + BATCH_SECONDS
        return len(gained), len(lost)

    async def rebalance_canaries(
        self,
        informer: Informer,
        on_canary: Callable[[str, Object], Awaitable[None]],
        stop: Callable[[str], Awaitable[None]],
    ) -> tuple[int, int]:
        """`rebalance` over the cached Canaries: a gained one is handled as a changed Canary
        (initial status, finalizer, job), a lost one's job stops; (started, stopped)."""
        keys = [f"{name}.{namespace}" for namespace, name in map(object_key, informer.list())]

        async def start(key: str) -> None:
            name, _, namespace = key.partition(".")
            obj = informer.get(name, namespace)
            try:
                if obj is not None:
                    await on_canary("MODIFIED", obj)
            except Fenced:
                pass  # fenced meanwhile: the rebalance that follows stops it
            except Exception as error:  # one canary's failure must not stop the others moving
                log.warning("starting canary %s here failed: %s", key, error)

        began = time.monotonic()
        gained, lost = await self.rebalance(keys, start, stop)
        log.info(
            "shard rebalance: %d canaries started here, %d handed over (%.2f s)",
            gained,
            lost,
            time.monotonic() - began,
        )
        return gained, lost

    def note(self, key: str, owned: bool) -> None:
        """A canary event decided ownership of `key` on its own."""
        if owned:
            self._owned.add(key)
        else:
            self._owned.discard(key)


async def run_sharded(
    membership: ShardMembership, lead: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Membership rounds and the reconciler side by side; either ending ends both."""
    rounds = asyncio.create_task(membership.run(), name="shard membership")
    leading = asyncio.create_task(lead(), name="reconciler")
    try:
        done, _ = await asyncio.wait({rounds, leading}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        # The reconciler (and its jobs) first: the Lease is deleted only after they stopped.
        for task in (leading, rounds):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def shard_membership(settings: Settings, lease_api: KubeApi, *fenced: KubeApi) -> ShardMembership:
    """`--shards=auto`: this replica's membership on `lease_api`, with the leader-election
    timings and Lease namespace; each `FencedKubeApi` of `fenced` (the main cluster's client,
    and the mesh cluster's) checks it before every write made for a canary."""
    membership = ShardMembership(
        lease_api,
        settings.lease_namespace,
        group=settings.shard_group,
        timings=LeaseTimings(
            settings.leader_election_lease,
            settings.leader_election_renew_deadline,
            settings.leader_election_retry,
        ),
    )
    for api in fenced:
        if isinstance(api, FencedKubeApi):
            api.membership = membership
    return membership


@dataclass(frozen=True)
class LedgerSummary:
    cycles: dict[str, int]
    """Completed and open cycles per replica."""
    keys_by_replica: dict[str, set[str]]
    overlaps: int
    """Cycles of a canary that ran while another replica ran one of the same canary."""


def read_ledgers(
    paths: list[Path], *, since: float = 0.0, open_until: float = 0.0
) -> LedgerSummary:
    """Summarise cycle ledgers of several replicas; a start without an end (a killed replica)
    ran until `open_until` (default: for ever)."""
    intervals: dict[str, list[tuple[float, float, str]]] = {}
    cycles: dict[str, int] = {}
    keys: dict[str, set[str]] = {}
    for path in paths:
        started: dict[tuple[str, str], float] = {}
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue  # a line cut by SIGKILL
            mark, stamp, key, replica = parts[0], float(parts[1]), parts[2], parts[3]
            if mark == "S":
                started[(key, replica)] = stamp
                continue
            if mark != "E":
                continue  # a rebalance marker
            begin = started.pop((key, replica), None)
            if begin is not None and stamp >= since:
                intervals.setdefault(key, []).append((begin, stamp, replica))
        for (key, replica), begin in started.items():
            end = max(begin, open_until) if open_until else float("inf")
            intervals.setdefault(key, []).append((begin, end, replica))
    overlaps = 0
    for key, spans in intervals.items():
        latest: dict[str, float] = {}
        for begin, end, replica in sorted(spans):
            if any(other != replica and until > begin for other, until in latest.items()):
                overlaps += 1
            latest[replica] = max(end, latest.get(replica, 0.0))
            cycles[replica] = cycles.get(replica, 0) + 1
            keys.setdefault(replica, set()).add(key)
    return LedgerSummary(cycles, keys, overlaps)
