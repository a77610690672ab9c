"""Two `--shards=auto` controllers in-process on both tiers: they split the canaries, never run
one canary at the same time, and the survivor takes the canaries of one that stops; a replica
that lost a canary mid-cycle fails its status write on the new owner's instead of overwriting;
thousands of moved canaries start in batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.controller.adapters import KubeStatusWriter
from coalmine.controller.sharding import JobOwnership, read_ledgers
from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches
from coalmine.kube.failures import RequestFailed
from coalmine.kube.kinds import CANARY, SERVICE
from coalmine.scheduler.status import initial_status
from inprocess import admin_api, controller_on, service, service_canary
from polling import eventually
from tiered import ApiServer

NAMES = [f"shard-{i}" for i in range(8)]


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    async with admin_api(apiserver) as client:
        yield client


def sharded(apiserver: ApiServer, ledger: Path) -> dict[str, Any]:
    return {
        "shards": "auto",
        "shard_group": "test",
        "leader_election_namespace": apiserver.namespace,
        "leader_election_lease": 3.0,
        "leader_election_renew_deadline": 2.0,
        "leader_election_retry": 0.5,
        "cycle_ledger": str(ledger),
    }


async def test_two_replicas_split_the_canaries_and_the_survivor_takes_over(
    apiserver: ApiServer, api: KubeApi, tmp_path: Path
) -> None:
    ns = apiserver.namespace
    for name in NAMES:
        await api.create(SERVICE, service(name, f"{name}-blue", ns))
        await api.create(CANARY, service_canary(name, 1, ns))
    ledgers = [tmp_path / "a.ledger", tmp_path / "b.ledger"]
    keys = {f"{name}.{ns}" for name in NAMES}
    async with controller_on(apiserver, 1.0, **sharded(apiserver, ledgers[0])):
        async with controller_on(apiserver, 1.0, **sharded(apiserver, ledgers[1])):
            settled = time.time()

            async def both_run_their_share() -> bool:
                recent = read_ledgers(ledgers, since=settled + 4.0)
                per_replica = list(recent.keys_by_replica.values())
                return (
                    len(per_replica) == 2
                    and set.union(*per_replica) == keys
                    and not set.intersection(*per_replica)
                )

            await eventually(
                both_run_their_share,
                60,
                "a disjoint and complete split",
                detail=lambda: str(read_ledgers(ledgers, since=settled + 4.0)),
            )
        left = time.time()

        async def survivor_runs_all() -> bool:
            recent = read_ledgers(ledgers, since=left + 0.5)
            return list(recent.keys_by_replica.values()) == [keys]

        await eventually(survivor_runs_all, 60, "the survivor runs every canary")
        for name in NAMES:
            obj = await api.get(CANARY, name, ns)
            assert obj["status"]["phase"] in {"Initialized", "Succeeded", "Progressing"}
    assert read_ledgers(ledgers).overlaps == 0


async def test_a_status_write_derived_from_an_older_version_fails(
    apiserver: ApiServer, api: KubeApi
) -> None:
    ns = apiserver.namespace
    await api.create(SERVICE, service("stale", "stale-blue", ns))
    created = await api.create(CANARY, service_canary("stale", 1, ns))
    stale = Canary.model_validate(created)
    # The new owner writes first.
    await api.patch(CANARY, "stale", {"status": {"phase": "Initializing"}}, ns, status=True)
    caches = Caches(api, ns)
    await caches.start(CANARY)
    try:
        writer = KubeStatusWriter(api, caches, version_precondition=True)
        status = initial_status(stale.status, "Service", datetime.now(UTC))
        with pytest.raises(RequestFailed, match=r"[Cc]onflict"):
            await writer.write_status(stale, status)
        assert (await api.get(CANARY, "stale", ns))["status"]["phase"] == "Initializing"
        fresh = Canary.model_validate(await api.get(CANARY, "stale", ns))
        await writer.write_status(fresh, status)
    finally:
        await caches.stop()


def test_the_ledger_counts_cycles_of_one_canary_on_two_replicas_at_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("S 10.0 x.ns a\nE 12.0 x.ns a\nS 20.0 y.ns a\n")  # then killed at 25
    b.write_text("S 12.5 x.ns b\nE 13.0 x.ns b\nS 24.0 y.ns b\nE 24.5 y.ns b\nS 26.0 y.ns b\n")
    summary = read_ledgers([a, b], open_until=25.0)
    assert summary.overlaps == 1  # y on b at 24.0 while a's cycle of y ran until the kill
    assert summary.keys_by_replica == {"a": {"x.ns", "y.ns"}, "b": {"x.ns", "y.ns"}}
    assert read_ledgers([a, b], open_until=23.0).overlaps == 0


async def test_a_large_rebalance_starts_every_canary_in_few_batches_and_lets_the_loop_run() -> None:
    """Thousands of canaries move when a replica dies: their first cycles run batch by batch
    while the rest start (not one loop turn per canary, not all in one turn)."""
    keys = [f"moved-{i}.ns" for i in range(3000)]
    ran: list[str] = []
    ran_before_last_start = -1
    jobs: list[asyncio.Task[None]] = []
    turns = 0

    async def first_cycle(key: str) -> None:
        ran.append(key)

    async def start(key: str) -> None:
        nonlocal ran_before_last_start
        if len(jobs) == len(keys) - 1:
            ran_before_last_start = len(ran)
        jobs.append(asyncio.create_task(first_cycle(key)))

    async def stop(key: str) -> None:
        raise AssertionError(f"nothing was owned here, yet {key} was stopped")

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counting = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    started, stopped = await JobOwnership(None).rebalance(keys, start, stop)
    seen_turns = turns
    counting.cancel()
    await asyncio.gather(*jobs)
    assert (started, stopped) == (len(keys), 0)
    assert sorted(ran) == sorted(keys)
    assert ran_before_last_start > 0, "started canaries' cycles run while the rest start"
    assert 0 < seen_turns < len(keys) / 10, f"{seen_turns} loop turns for {len(keys)} canaries"
