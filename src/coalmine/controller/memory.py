"""Keeping the cyclic garbage collector's pauses short while thousands of canaries run.

A full pass walks every tracked object: with 10,000 canaries cached (and their targets, their
copies, their parsed forms) that is millions of objects and a pause of seconds, during which no
cycle starts (`coalmine_canary_cycle_lag_seconds`). Nearly all of them live for minutes: the
caches replace an object only when it changes. `gc.freeze()` moves every object alive now out of
the collector's sight; frozen objects are still freed by reference counting when replaced.

So every `REFREEZE_EVERY` seconds the young garbage is collected and what survived since the
last freeze is frozen too. The collector starts a full pass of its own only when the objects
that reached the old generation since its last full pass outnumber a quarter of those it kept
then (all of them, at the sync; a freeze does not reset that count); such a pass then walks just
what survived since the last freeze: a few seconds' worth. Forcing a full pass before every
freeze was worse: it reset that count to the few unfrozen objects, so full passes came often,
and with 10,000 canaries analysing each stopped the process for about a second.

What a freeze can hide is a reference cycle that becomes garbage after it was frozen (a request
in flight at that moment, garbage that had reached the old generation), so once in a long while
(`THAW_EVERY`) everything is given back to the collector for one full pass.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import math
import time
from collections.abc import Callable

REFREEZE_EVERY = 10.0
THAW_EVERY = 1800.0
YOUNG_THRESHOLD = 20_000
MIDDLE_THRESHOLD = 2
"""Net new objects between two young collections (Python's default is 700), and young
collections per middle one (default 10). A cycle allocates thousands of short-lived objects
that reference counting frees; with the default a young collection ran inside nearly every
cycle and walked its live temporaries (a fifth of an analysing cycle's CPU at 1,000 canaries).
A pause walks at most about YOUNG_THRESHOLD * (MIDDLE_THRESHOLD + 1) objects: tens of
milliseconds."""

PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Pauses:
    """Collector pauses of one generation: a histogram kept in plain lists, because it is fed from
    inside the collector, where taking a lock the interrupted code may hold would deadlock."""

    def __init__(self) -> None:
        self.counts = [0] * (len(PAUSE_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, count) pairs as a Prometheus histogram's buckets, infinity last."""
        bounds = [*PAUSE_BUCKETS, math.inf]
        return list(zip(bounds, itertools.accumulate(self.counts), strict=True))


_pauses = (Pauses(), Pauses(), Pauses())
_collection_started = 0.0


def _time_collection(phase: str, info: dict[str, int]) -> None:
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    else:
        _pauses[info["generation"]].observe(time.perf_counter() - _collection_started)


def track_collector_pauses() -> None:
    """Time every pause of the cyclic collector, by generation (`/metrics`): a pause is a moment
    no cycle starts, so it belongs beside the cycle lag."""
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def collector_pauses() -> tuple[Pauses, ...]:
    """The pauses of generations 0, 1 and 2 since tracking started."""
    return _pauses


def freeze_long_lived() -> None:
    """After the initial sync: collect what is garbage, freeze the rest."""
    gc.collect()
    gc.freeze()
    old = gc.get_threshold()[2]
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, old)


class Refreezer:
    """Freezes what survived since the last freeze, every `every` seconds of `clock`."""

    def __init__(
        self,
        every: float = REFREEZE_EVERY,
        thaw_every: float = THAW_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.thaw_every = thaw_every
        self.clock = clock
        self._frozen_at = self._thawed_at = clock()

    def tick(self) -> None:
        """Called from the control loop; does nothing until a period is over."""
        now = self.clock()
        if now - self._thawed_at >= self.thaw_every:
            gc.unfreeze()
            freeze_long_lived()
            self._thawed_at = self._frozen_at = now
        elif now - self._frozen_at >= self.every:
            gc.collect(1)  # the young garbage first: only survivors are frozen
            gc.freeze()
            self._frozen_at = now
