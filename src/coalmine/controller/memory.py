"""Keeping the cyclic garbage collector's pauses short while thousands of canaries run.

A full pass walks every tracked object: with 10,000 canaries cached (and their targets, their
copies, their parsed forms) that is millions of objects and a pause of seconds, during which no
cycle starts (`coalmine_canary_cycle_lag_seconds`). Nearly all of them live for minutes: the
caches replace an object only when it changes. `gc.freeze()` moves every object alive now out of
the collector's sight; frozen objects are still freed by reference counting when replaced.

So every `REFREEZE_EVERY` seconds the young garbage is collected and what survived since the
last freeze is frozen too. Full passes stay rare: the collector starts one only when the objects
that reached the old generation since the last full pass outnumber a quarter of those it kept
then (all of them, at the sync), and a full pass forced every few seconds was worse: it reset that
count to the few unfrozen objects, and with 10,000 canaries analysing each pass over ten seconds'
survivors stopped the process for about a second (cycle lag p99 1.5 s instead of 0.1 s).

What a freeze can hide is a reference cycle that becomes garbage after it was frozen (a request
in flight at that moment, garbage that had reached the old generation), so once in a long while
(`THAW_EVERY`) everything is given back to the collector for one full pass.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

REFREEZE_EVERY = 60.0
THAW_EVERY = 1800.0
YOUNG_THRESHOLD = 50_000
"""Allocations between two young collections (Python's default is 700). A cycle allocates
thousands of short-lived objects that reference counting frees; a young collection walks the
ones still alive, so its cost hardly depends on the threshold, and fewer of them run."""

_pauses = [0.0, 0.0, 0.0]
_collection_started = 0.0


def _time_collection(phase: str, info: dict[str, int]) -> None:
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    else:
        _pauses[info["generation"]] += time.perf_counter() - _collection_started


def track_collector_pauses() -> None:
    """Count the seconds the cyclic collector stops the process, by generation (`/metrics`):
    a pause is a moment no cycle starts, so it belongs beside the cycle lag."""
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def collector_pauses() -> tuple[float, ...]:
    """Seconds spent in collections of generation 0, 1 and 2 since tracking started."""
    return tuple(_pauses)


def freeze_long_lived() -> None:
    """After the initial sync: collect what is garbage, freeze the rest."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


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
