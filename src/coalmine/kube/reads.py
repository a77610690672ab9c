"""What one cycle read from the watch caches, so that a cycle that found nothing to do need not
run again until something it read has changed.

A canary at rest (no new revision, every object in its desired shape) repeats the same cycle
every interval: read the canary, its target and the objects built from them, find them all as
they should be, do nothing. That cycle depends on the objects it read and on nothing else,
provided it sent no request to the API server (a live read or a write), read no wall clock
(readiness deadlines) and read no on-demand cache (whose copies expire by age). A `Trace` set
for the cycle records each cached object under its key, as the identical object: caches
replace their objects and never change them in place, so the same object means the same
state. Anything else marks the trace `spoiled`. `holds()` answers whether the same cycle would
read the same objects now.

The trace is carried in a context variable, so every read and request made on behalf of the
cycle (tasks it starts included) reaches it without threading it through every signature.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol


class Source(Protocol):
    """A cache whose current object under a key can be looked at without being traced."""

    def peek(self, key: Any) -> Any: ...


class Trace:
    """The cached objects one cycle read, and whether anything else made it unrepeatable."""

    __slots__ = ("_reads", "spoiled")

    def __init__(self) -> None:
        self._reads: list[tuple[Source, Hashable, object]] = []
        self.spoiled = False

    def read(self, source: Source, key: Hashable, found: object) -> None:
        self._reads.append((source, key, found))

    def holds(self) -> bool:
        """Every object read is still the one in the cache (a miss still a miss)."""
        return not self.spoiled and all(
            source.peek(key) is found for source, key, found in self._reads
        )


_CURRENT: ContextVar[Trace | None] = ContextVar("coalmine_cycle_trace", default=None)


def current() -> Trace | None:
    return _CURRENT.get()


def spoil() -> None:
    """The running cycle did something its cached reads do not tell (a request, a clock)."""
    trace = _CURRENT.get()
    if trace is not None:
        trace.spoiled = True


@contextlib.contextmanager
def tracing(trace: Trace | None) -> Iterator[None]:
    """Reads and requests inside go to `trace` (None: to no trace)."""
    token = _CURRENT.set(trace)
    try:
        yield
    finally:
        _CURRENT.reset(token)
