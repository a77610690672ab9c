"""Sharding across replicas: a membership Lease per replica, canaries split by rendezvous hashing.

Each replica holds one `coordination.k8s.io/v1` Lease (`coalmine-shard-<identity>`, labelled with
the shard group) and renews it every retry period; the same round lists the group's Leases. A
member is live while its Lease record changed within the lease duration, judged by this
replica's own clock from when it saw the change (as client-go's leader election judges expiry).
A watch of the namespace's Leases makes "when it saw the change" the moment the change arrived,
not the next round, and the round after a member's last seen change runs right at its expiry: a
dead replica's canaries move one lease duration after its last renewal (plus the round).
A canary `namespace/name` belongs to the live member with the highest hash of (member, key):
every replica computes the same owner from the same view, and a member joining or leaving moves
only the canaries that hash to it.

Safety (never two replicas on one canary) rests on the leader-election inequality, per canary:

- a replica acts (and writes) only while its last successful round is younger than
  `renew_deadline` (`view_fresh`), so a replica cut off from the API server stops first;
- a replica acts only from `lease_duration` after it (re)joined (`active_from`), longer than any
  older view of the others can stay fresh, so a handover to a new member waits for every view
  without it to expire;
- a dead member is dropped only `lease_duration` after its last renewal was seen, by when its own
  view (at most `renew_deadline` old) has fenced it.

docs/decisions.md ("Sharding across replicas") gives the argument in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coalmine.kube.api import Conflict, KubeApi, KubeApiError, NotFound, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import LEASE, Kind
from coalmine.kube.lease import LeaseTimings, default_identity, micro_time

log = logging.getLogger(__name__)

GROUP_LABEL = "coalmine.dev/shard-group"
LEASE_PREFIX = "coalmine-shard-"
DEFAULT_GROUP = "coalmine"
STALE_LEASE_FACTOR = 10
"""A Lease not renewed for this many lease durations (by its own renewTime) is a replica that
was killed; a member deletes it so Leases of dead pods do not pile up."""
EXPIRY_MARGIN = 0.05
"""Seconds past a member's expiry at which the round that drops it runs (clock granularity)."""
MIN_WAIT = 0.05
"""The shortest pause between rounds (a member already past its expiry, a join wait ending)."""

ACTING_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coalmine_acting_for", default=None
)
"""The canary (`name.namespace`) whose cycle or event the current task works for."""


class Fenced(KubeApiError):
    """A write refused before it was sent: this replica may not act for the canary now."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(0, "Fenced", f"write for canary {key} not sent: {why}")


def rendezvous_owner(key: str, members: tuple[str, ...]) -> str | None:
    """Highest random weight: the member with the largest hash of (member, key)."""
    best: tuple[bytes, str] | None = None
    for member in members:
        weight = hashlib.blake2b(f"{member}\0{key}".encode(), digest_size=8).digest()
        if best is None or weight > best[0]:
            best = (weight, member)
    return None if best is None else best[1]


def lease_name(identity: str) -> str:
    """A DNS-1123 name from the identity (pod names are; hostnames with `_uuid` are not)."""
    cleaned = "".join(c if c.isalnum() or c in "-." else "-" for c in identity.lower())
    return (LEASE_PREFIX + cleaned)[:253].strip("-.")


@dataclass
class _Seen:
    record: tuple[object, ...]
    at: float


class ShardMembership:
    """This replica's membership Lease and its view of the live members."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        *,
        group: str = DEFAULT_GROUP,
        identity: str | None = None,
        timings: LeaseTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.group = group
        self.identity = identity or default_identity()
        self.name = lease_name(self.identity)
        self.timings = timings or LeaseTimings()
        self.clock = clock
        self.members: tuple[str, ...] = ()
        self.active_from = float("inf")
        self._fresh_at = float("-inf")
        self._seen: dict[str, _Seen] = {}
        self._owner_cache: dict[str, str | None] = {}
        self._listeners: list[Callable[[], object]] = []
        self._announced: tuple[tuple[str, ...], bool] = ((), False)
        self._wake = asyncio.Event()
        self.rounds = 0
        """Rounds that brought a fresh view (tests wait for one)."""

    # --- decisions --------------------------------------------------------------------------

    def view_fresh(self) -> bool:
        return self.clock() - self._fresh_at < self.timings.renew_deadline

    def active(self) -> bool:
        return self.view_fresh() and self.clock() >= self.active_from

    def owner_of(self, key: str) -> str | None:
        owner = self._owner_cache.get(key, "")
        if owner == "":
            owner = rendezvous_owner(key, self.members)
            self._owner_cache[key] = owner
        return owner

    def owns(self, key: str) -> bool:
        """May act for `key` now: a fresh view, past the join wait, and the key hashes here."""
        return self.active() and self.owner_of(key) == self.identity

    def check(self, key: str) -> None:
        """Raise `Fenced` unless this replica may write for `key` now."""
        if not self.view_fresh():
            raise Fenced(key, f"membership view older than {self.timings.renew_deadline:g}s")
        if self.clock() < self.active_from:
            raise Fenced(key, "replica still waiting out the previous owners' leases")
        if self.owner_of(key) != self.identity:
            raise Fenced(key, f"it belongs to replica {self.owner_of(key)}")

    def seen_at(self, member: str) -> float | None:
        """When (on `clock`) this replica saw `member`'s Lease record last change."""
        seen = self._seen.get(member)
        return None if seen is None else seen.at

    def on_change(self, listener: Callable[[], object]) -> None:
        """Called after every round whose outcome changed ownership (members or activity)."""
        self._listeners.append(listener)

    # --- rounds -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Renew and list every retry period (sooner at a member's expiry or a member coming
        or going, seen by the watch) until cancelled; deletes the Lease on the way out."""
        watching = asyncio.create_task(self.watch(), name="shard lease watch")
        try:
            while True:
                self._wake.clear()
                await self.round()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._next_wait()):
                        await self._wake.wait()
        finally:
            self._fresh_at = float("-inf")
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
            with contextlib.suppress(Exception):
                await asyncio.shield(self.leave())

    def _next_wait(self) -> float:
        """The retry period, or less when the join wait ends sooner or a live member's lease
        expires sooner: the round that drops a dead member runs at its expiry, not up to a
        retry period later (takeover without a lag)."""
        now = self.clock()
        waits = [self.timings.retry_period]
        if self.active_from > now:
            waits.append(self.active_from - now)
        waits += [
            seen.at + self.timings.lease_duration + EXPIRY_MARGIN - now
            for holder, seen in self._seen.items()
            if holder != self.identity and holder in self.members
        ]
        return max(MIN_WAIT, min(waits))

    async def watch(self) -> None:
        """Watch the namespace's Leases (re-listing after errors, as informers do) so a
        member's renewal is dated when it arrives, not at our next round. The rounds stay the
        authority on who is a member; the watch only makes the observation times precise."""
        informer = Informer(self.api, LEASE, self.namespace)
        informer.subscribe(self._observe)
        await informer.run()

    def _observe(self, event_type: str, lease: Object) -> None:
        """A Lease event: date a member's changed record now (after its commit, so never
        early: the fence argument holds); a member coming or going wakes the rounds."""
        labels = (lease.get("metadata") or {}).get("labels") or {}
        if labels.get(GROUP_LABEL) != self.group:
            return
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if event_type == "DELETED" or not holder:
            if holder != self.identity:
                self._wake.set()  # a clean exit (deleted or released): hand over at once
            return
        record = (spec.get("renewTime"), spec.get("acquireTime"))
        seen = self._seen.get(holder)
        if seen is None or seen.record != record:
            self._seen[holder] = _Seen(record, self.clock())
        if holder != self.identity and holder not in self.members:
            self._wake.set()  # a newcomer: stop its canaries here before it may act

    async def round(self) -> None:
        """One renewal and list; a failure leaves the view to age until it is fenced."""
        started = self.clock()
        try:
            # As client-go's renewal: a slow round may take up to the renew deadline; the view
            # it brings counts from when it started, so a late success is fresh for less.
            async with asyncio.timeout(self.timings.renew_deadline):
                await self._renew()
                leases = await self.api.list(
                    LEASE, self.namespace, labels=f"{GROUP_LABEL}={self.group}"
                )
        except Exception as error:
            log.warning("shard membership round of %s failed: %s", self.identity, error)
        else:
            self._fresh_at = started
            self.rounds += 1
            # Seen-at is after the list returned: never before the record's commit.
            self._update_members(leases.items, self.clock())
            await self._delete_stale(leases.items)
        state = (self.members, self.active())
        if state != self._announced:
            # Ownership moved: a member came or went, or this replica started or stopped acting
            # (the join wait ended, the view went stale) since the listeners were last told.
            self._announced = state
            self._owner_cache.clear()
            log.info(
                "shard members %s (this replica %s, %s)",
                ",".join(self.members),
                self.identity,
                "active" if self.active() else "waiting",
            )
            for listener in self._listeners:
                result = listener()
                if asyncio.iscoroutine(result):
                    await result

    async def _renew(self) -> None:
        """Create or renew our Lease; a gap longer than the renew deadline is a new join."""
        rejoin = self.clock() - self._fresh_at >= self.timings.renew_deadline
        now = micro_time(datetime.now(UTC))
        lease = await self.api.get_or_none(LEASE, self.name, self.namespace)
        if lease is None:
            await self.api.create(LEASE, self._lease_object(now, now))
        else:
            spec = lease.get("spec") or {}
            rejoin = rejoin or spec.get("holderIdentity") != self.identity
            updated = self._lease_object(spec.get("acquireTime") or now, now)
            updated["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
            await self.api.replace(LEASE, updated)
        if rejoin:
            # Fenced (or never joined): others may have dropped us and handed our canaries on;
            # we act only once every view that lacked us has expired, counted from the renewal.
            self.active_from = self.clock() + self.timings.lease_duration

    def _update_members(self, leases: list[Object], now: float) -> None:
        live: list[str] = []
        present: set[str] = set()
        for lease in leases:
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            if not holder:
                continue  # released on a clean exit: gone at once
            present.add(holder)
            record = (spec.get("renewTime"), spec.get("acquireTime"))
            seen = self._seen.get(holder)
            if seen is None or seen.record != record:
                # Usually the watch dated it already; a list older than the watch's latest
                # event re-dates it later, which only keeps the member longer (safe).
                seen = self._seen[holder] = _Seen(record, now)
            if holder == self.identity or now - seen.at < self.timings.lease_duration:
                live.append(holder)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        self.members = tuple(sorted(live))

    async def _delete_stale(self, leases: list[Object]) -> None:
        limit = STALE_LEASE_FACTOR * self.timings.lease_duration
        for lease in leases:
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") == self.identity:
                continue
            renewed = _parse_time(spec.get("renewTime"))
            if renewed is not None and (datetime.now(UTC) - renewed).total_seconds() > limit:
                with contextlib.suppress(NotFound, Conflict, KubeApiError):
                    await self.api.delete(LEASE, lease["metadata"]["name"], self.namespace)

    async def leave(self) -> None:
        """Delete our Lease on a clean exit (jobs already stopped): survivors take over at once."""
        self.active_from = float("inf")
        with contextlib.suppress(NotFound):
            await self.api.delete(LEASE, self.name, self.namespace)

    def _lease_object(self, acquired: str, renewed: str) -> Object:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {GROUP_LABEL: self.group},
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.timings.lease_duration),
                "acquireTime": acquired,
                "renewTime": renewed,
            },
        }


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None


@contextlib.contextmanager
def acting_for(key: str) -> Iterator[None]:
    """Writes in this block are for canary `key` (checked by `FencedKubeApi`)."""
    token = ACTING_FOR.set(key)
    try:
        yield
    finally:
        ACTING_FOR.reset(token)


class FencedKubeApi(KubeApi):
    """The API client of a sharded replica: every write made for a canary is checked first.

    A write inside `acting_for(key)` is sent only while this replica may act for `key`
    (`ShardMembership.check`); a fenced replica's next write raises `Fenced` instead. Writes
    outside any canary (the membership Lease itself) pass.
    """

    membership: ShardMembership | None = None

    def _fence(self) -> None:
        key = ACTING_FOR.get()
        if key is not None and self.membership is not None:
            self.membership.check(key)

    async def create(self, kind: Kind, obj: Mapping[str, Any]) -> Object:
        self._fence()
        return await super().create(kind, obj)

    async def replace(self, kind: Kind, obj: Mapping[str, Any]) -> Object:
        self._fence()
        return await super().replace(kind, obj)

    async def patch(self, kind: Kind, name: str, patch: Any, *args: Any, **kwargs: Any) -> Object:
        self._fence()
        return await super().patch(kind, name, patch, *args, **kwargs)

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        self._fence()
        await super().delete(kind, name, namespace)
