"""One async job per Canary, running its cycle at the canary's analysis interval.

Each canary's cycles run in their own task and never overlap; a slow or hanging cycle of one
canary delays nobody else. `trigger()` runs the next cycle now (a new revision of the target
must start within a second, not at the next tick), and a changed interval takes effect at once.
Flagger's `-threadiness` caps how many cycles run at once (a shared semaphore); 0 means no cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import Awaitable, Callable

from coalmine.kube.failures import RepeatLimiter

log = logging.getLogger(__name__)

Cycle = Callable[[], Awaitable[None]]
CycleDone = Callable[[float], None]
"""Told after every cycle (failed ones too) with its lag, the seconds from the moment the cycle
was due (its interval's tick, or a trigger) to its start: how the controller counts cycles and
shows whether it keeps up with its canaries (`/metrics`)."""


TICK_GRID = 0.1
"""Ticks fall on a grid of this many seconds (at most a tenth of the interval), so the cycles
due within one step of it run in one wake of the event loop. On a virtual machine a wake from
idle costs about 0.1 ms of CPU, as much as an at-rest cycle itself: 1,000 canaries at a 10 s
interval, each waking the loop on its own, paid it 100 times a second (docs/decisions.md)."""


def phase(key: str) -> float:
    """Where in its interval a canary ticks, in [0, 1), fixed by its key."""
    return zlib.crc32(key.encode()) / 2**32


def next_tick(due: float, interval: float, now: float, spread: float = 0.0) -> float:
    """The tick after the one `due`: a fixed rate, as Flagger's per-canary ticker.

    Counted from when the cycle was due, not from when it ended, so slow cycles (writes queued
    behind thousands of others) do not stretch every period. Ticks missed while a cycle ran late
    are dropped (the latest one still runs at once), as Go's ticker drops them, so a canary never
    runs analysis steps back to back to catch up. `spread` (a fraction of an interval) delays
    the tick after a job's first cycle: thousands of jobs started together (a controller start,
    a takeover) would otherwise tick together forever.
    """
    tick = due + interval * (1.0 + spread)
    if tick < now:
        tick += interval * ((now - tick) // interval)
    grid = min(TICK_GRID, interval / 10)
    if grid <= 0:
        return tick
    # round(): a tick already on the grid stays there despite the float division's error
    return math.ceil(round(tick / grid, 6)) * grid


class CanaryJob:
    def __init__(
        self,
        key: str,
        cycle: Cycle,
        interval: float,
        on_cycle: CycleDone | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.key = key
        self._slots = slots
        self.interval = interval
        self._cycle = cycle
        self._on_cycle = on_cycle
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        self._failures = RepeatLimiter(log)
        self.cycles = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"canary {self.key}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def trigger(self) -> None:
        """Run the next cycle as soon as the current one (if any) ends."""
        self._woken = True
        _release(self._waiter)

    def set_interval(self, interval: float) -> None:
        if interval != self.interval:
            self.interval = interval
            self.trigger()

    async def drain(self) -> None:
        """Let a cycle in flight finish its writes, then stop (graceful shutdown)."""
        self._draining = True
        self.trigger()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def stop(self) -> None:
        """Cancel the job; a cycle in flight is cancelled at its next await."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._woken = False
            extra = {"canary": self.key}
            lag = 0.0
            try:
                async with self._slots or contextlib.nullcontext():
                    lag = loop.time() - due
                    await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One line per distinct failure, repeats folded; the traceback at debug level.
                self._failures.failed(f"cycle of canary {self.key} failed", error, extra=extra)
            else:
                if self._failures.failing:
                    self._failures.clear(f"cycle of canary {self.key}", extra=extra)
            self.cycles += 1
            if self._on_cycle is not None:
                self._on_cycle(lag)
            if self._draining:
                return
            due = next_tick(
                due, self.interval, loop.time(), spread=0.0 if self.cycles > 1 else phase(self.key)
            )
            if not self._woken:
                await self._sleep_until(loop, due)
            if self._woken:
                due = loop.time()  # triggered: due now

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Until `when` or a trigger; a bare future and timer (an Event under a timeout context
        cost 1.3-1.75x as much per wait in an empty job loop, and there is one per cycle)."""
        waiter = self._waiter = loop.create_future()
        timer = loop.call_at(when, _release, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _release(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class JobManager:
    """The set of running jobs, reconciled with the set of canaries."""

    def __init__(self, on_cycle: CycleDone | None = None, threadiness: int = 0) -> None:
        self._jobs: dict[str, CanaryJob] = {}
        self._on_cycle = on_cycle
        self._slots = asyncio.Semaphore(threadiness) if threadiness > 0 else None

    def __contains__(self, key: str) -> bool:
        return key in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, key: str) -> CanaryJob | None:
        return self._jobs.get(key)

    def ensure(self, key: str, interval: float, cycle: Cycle) -> CanaryJob:
        """Start a job for `key` if none runs; apply a new interval to a running one."""
        job = self._jobs.get(key)
        if job is None:
            job = CanaryJob(key, cycle, interval, self._on_cycle, self._slots)
            self._jobs[key] = job
            job.start()
        else:
            job.set_interval(interval)
        return job

    def trigger(self, key: str) -> None:
        job = self._jobs.get(key)
        if job is not None:
            job.trigger()

    async def remove(self, key: str) -> None:
        job = self._jobs.pop(key, None)
        if job is not None:
            await job.stop()

    async def drain(self, grace: float) -> None:
        """Finish every cycle in flight within `grace` seconds; cancel what is left after it."""
        jobs = list(self._jobs.values())
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(*(job.drain() for job in jobs))
        except TimeoutError:
            pass
        await self.stop_all()

    async def stop_all(self) -> None:
        jobs, self._jobs = list(self._jobs.values()), {}
        await asyncio.gather(*(job.stop() for job in jobs))
