"""Sharding membership on both tiers: the split is disjoint and complete, a dead replica's canaries
move to the survivors only after its lease expired (and right then, not a retry period later), a
membership change moves only the affected canaries, and a fenced replica's writes are never sent.

Rounds are driven by hand (`round()`) and time by a test clock, so each test decides when a
replica renews, dies or goes stale; the Leases are real, written as the controller's
ServiceAccount.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.kinds import CONFIG_MAP, LEASE
from coalmine.kube.lease import LeaseTimings
from coalmine.kube.shards import (
    GROUP_LABEL,
    Fenced,
    FencedKubeApi,
    ShardMembership,
    acting_for,
    rendezvous_owner,
)
from polling import eventually
from tiered import ApiServer

TIMINGS = LeaseTimings(lease_duration=20.0, renew_deadline=8.0, retry_period=2.0)
KEYS = [f"canary-{i}.team-{i % 7}" for i in range(600)]


class Clock:
    """Test time: advanced by the test, shared by the replicas (one machine's monotonic clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The controller's client: membership Leases are written as its ServiceAccount."""
    client = FencedKubeApi(load_config(str(apiserver.controller_kubeconfig)))
    yield client
    await client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def member(api: KubeApi, ns: str, clock: Clock, name: str) -> ShardMembership:
    return ShardMembership(api, ns, identity=name, timings=TIMINGS, clock=clock, group="test")


async def rounds(*members: ShardMembership) -> None:
    for one in members:
        await one.round()


async def elapse(clock: Clock, seconds: float, *members: ShardMembership) -> None:
    """Let `seconds` pass with every given member running its rounds each retry period."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + TIMINGS.retry_period)
        await rounds(*members)


def owners(members: list[ShardMembership]) -> dict[str, list[str]]:
    return {key: [m.identity for m in members if m.owns(key)] for key in KEYS}


async def joined(
    api: KubeApi, ns: str, clock: Clock, names: tuple[str, ...]
) -> list[ShardMembership]:
    """Members that all saw each other and waited out their join."""
    members = [member(api, ns, clock, name) for name in names]
    await rounds(*members)
    await elapse(clock, TIMINGS.lease_duration, *members)
    return members


async def test_the_split_over_live_replicas_is_disjoint_and_complete(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    members = await joined(api, apiserver.namespace, clock, ("a", "b", "c"))
    split = owners(members)
    assert all(len(holders) == 1 for holders in split.values()), "every canary exactly once"
    counts = {m.identity: sum(h == [m.identity] for h in split.values()) for m in members}
    assert min(counts.values()) > len(KEYS) / 3 * 0.75, counts
    leases = (await api.list(LEASE, apiserver.namespace, labels=f"{GROUP_LABEL}=test")).items
    assert sorted(lease["spec"]["holderIdentity"] for lease in leases) == ["a", "b", "c"]


async def test_a_new_replica_acts_only_after_the_others_views_without_it_expired(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    a, b = await joined(api, apiserver.namespace, clock, ("a", "b"))
    before = owners([a, b])
    c = member(api, apiserver.namespace, clock, "c")
    await rounds(c, a, b)
    moving = [key for key in KEYS if rendezvous_owner(key, ("a", "b", "c")) == "c"]
    assert moving
    assert not any(c.owns(key) for key in KEYS), "the newcomer waits out the lease duration"
    # The others already hand them over; for a while nobody runs them, never two.
    assert not any(a.owns(key) or b.owns(key) for key in moving)
    await elapse(clock, TIMINGS.lease_duration, c, a, b)
    after = owners([a, b, c])
    assert all(after[key] == ["c"] for key in moving)
    unaffected = [key for key in KEYS if key not in moving]
    assert all(after[key] == before[key] for key in unaffected), "only the moved canaries move"


async def test_a_dead_replicas_canaries_move_to_survivors_after_its_lease_expires(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    a, b, c = await joined(api, apiserver.namespace, clock, ("a", "b", "c"))
    before = owners([a, b, c])
    orphans = [key for key, holders in before.items() if holders == ["c"]]
    # c is killed: no more rounds, its Lease stays behind.
    killed_at = clock.now
    while clock.now + TIMINGS.retry_period < killed_at + TIMINGS.lease_duration:
        await elapse(clock, TIMINGS.retry_period, a, b)
        assert not any(a.owns(key) or b.owns(key) for key in orphans), "never two at once"
        if clock.now - killed_at >= TIMINGS.renew_deadline:
            assert not c.owns(orphans[0]), "the killed replica's own view went stale: fenced"
    await elapse(clock, 2 * TIMINGS.retry_period, a, b)
    after = owners([a, b])
    assert all(len(holders) == 1 for holders in after.values())
    survivors = {key: holders for key, holders in before.items() if holders != ["c"]}
    assert all(after[key] == holders for key, holders in survivors.items())


async def test_a_renewal_counts_from_when_the_watch_brought_it_not_from_the_next_round(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    a, b = await joined(api, apiserver.namespace, clock, ("a", "b"))
    # a has seen b's latest record: else the watch's first list, if it lands after the clock
    # moves on, dates that older record at `renewed` and the renewal itself comes later.
    await a.round()
    watching = asyncio.create_task(a.watch())
    try:
        clock.now += 1.0
        await b.round()  # b's last renewal; then b dies
        renewed = clock.now
        await eventually(lambda: a.seen_at("b") == renewed, 30, "a sees b's renewal as it comes")
        # a's rounds go on (b's record unchanged): b's lease counts from the watch's moment.
        await elapse(clock, TIMINGS.lease_duration - 0.01, a)
        assert "b" in a.members, "never dropped before its lease expired since it was seen"
        assert not any(a.owns(key) for key in KEYS if rendezvous_owner(key, ("a", "b")) == "b")
        clock.now = renewed + TIMINGS.lease_duration + 0.01
        await a.round()
        assert a.members == ("a",), "dropped at expiry, not a lease after a's next round"
        assert all(a.owns(key) for key in KEYS)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


FAST = LeaseTimings(lease_duration=3.4, renew_deadline=2.4, retry_period=1.6)
"""A lease just over two retry periods: rounds alone would reach its expiry only 1.4 s late."""


async def test_a_dead_peer_is_dropped_at_its_lease_expiry_not_a_retry_period_later(
    apiserver: ApiServer, api: KubeApi
) -> None:
    """Real time: `run()` with its watch and rounds. The peer's last renewal lands just after
    one of a's rounds, so a's next round is a retry period away: a drops it at the expiry
    anyway (the old rounds-only view dropped it a retry period and more later)."""
    ns = apiserver.namespace
    a = ShardMembership(api, ns, identity="a", timings=FAST, group="test")
    b = ShardMembership(api, ns, identity="b", timings=FAST, group="test")
    dropped: list[float] = []
    a.on_change(lambda: None if "b" in a.members else dropped.append(time.monotonic()))
    await b.round()
    running = asyncio.create_task(a.run())
    try:

        async def both_live() -> bool:
            await b.round()  # b alive: renewing faster than the lease runs out
            return a.active() and a.members == ("a", "b")

        await eventually(both_live, 30, "a active with b a member", interval=0.5)
        rounds = a.rounds
        await eventually(lambda: a.rounds > rounds, 10, "a round of a", interval=0.01)
        sent = time.monotonic()
        await b.round()  # b's last renewal; then b dies
        await eventually(lambda: dropped, 10, "b dropped")
        assert dropped[0] >= sent + FAST.lease_duration, "never before b's lease expired"
        assert dropped[0] < sent + FAST.lease_duration + FAST.retry_period / 2, (
            f"dropped {dropped[0] - sent:.2f} s after b's last renewal"
        )
        assert all(a.owns(key) for key in KEYS)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_replica_that_leaves_cleanly_hands_over_at_once(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    a, b = await joined(api, apiserver.namespace, clock, ("a", "b"))
    await b.leave()
    await rounds(a)
    assert all(a.owns(key) for key in KEYS)
    assert await api.get_or_none(LEASE, b.name, apiserver.namespace) is None


async def test_a_fenced_replica_does_not_write(
    apiserver: ApiServer, api: KubeApi, clock: Clock
) -> None:
    (a,) = await joined(api, apiserver.namespace, clock, ("a",))
    assert isinstance(api, FencedKubeApi)
    api.membership = a
    ns = apiserver.namespace
    key = f"podinfo.{ns}"
    with acting_for(key):
        await api.create(CONFIG_MAP, config_map(ns, "written-while-owner"))
    # No successful round for the renew deadline (the API server unreachable, a long pause).
    clock.now += TIMINGS.renew_deadline
    with pytest.raises(Fenced), acting_for(key):
        await api.create(CONFIG_MAP, config_map(ns, "written-while-fenced"))
    assert await api.get_or_none(CONFIG_MAP, "written-while-fenced", ns) is None
    # Back: the replica re-joins and must wait out the lease duration again.
    await a.round()
    with pytest.raises(Fenced), acting_for(key):
        await api.create(CONFIG_MAP, config_map(ns, "written-while-rejoining"))
    await elapse(clock, TIMINGS.lease_duration, a)
    with acting_for(key):
        await api.create(CONFIG_MAP, config_map(ns, "written-again"))


def config_map(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def test_rendezvous_hashing_moves_only_the_keys_of_the_member_that_changed() -> None:
    three = {key: rendezvous_owner(key, ("a", "b", "c")) for key in KEYS}
    four = {key: rendezvous_owner(key, ("a", "b", "c", "d")) for key in KEYS}
    moved = [key for key in KEYS if three[key] != four[key]]
    assert moved
    assert all(four[key] == "d" for key in moved)
    assert rendezvous_owner("x", ()) is None
