"""Per-canary jobs: immediate first cycle, triggers, intervals, isolation and stopping."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from coalmine.controller.jobs import JobManager, next_tick, phase
from polling import eventually

LONG = 3600.0


async def test_a_job_runs_its_first_cycle_immediately() -> None:
    ran = asyncio.Event()

    async def cycle() -> None:
        ran.set()

    jobs = JobManager()
    jobs.ensure("podinfo.test", LONG, cycle)
    await asyncio.wait_for(ran.wait(), 5)
    await jobs.stop_all()


async def test_trigger_runs_the_next_cycle_without_waiting_for_the_interval() -> None:
    count = 0

    async def cycle() -> None:
        nonlocal count
        count += 1

    jobs = JobManager()
    job = jobs.ensure("podinfo.test", LONG, cycle)
    await eventually(lambda: job.cycles == 1)
    jobs.trigger("podinfo.test")
    await eventually(lambda: job.cycles == 2)
    assert count == 2
    await jobs.stop_all()


async def test_a_new_interval_takes_effect_at_once() -> None:
    jobs = JobManager()

    async def cycle() -> None:
        return None

    job = jobs.ensure("podinfo.test", LONG, cycle)
    await eventually(lambda: job.cycles == 1)
    jobs.ensure("podinfo.test", 0.01, cycle)
    await eventually(lambda: job.cycles >= 3)
    await jobs.stop_all()


async def test_a_hanging_cycle_of_one_canary_does_not_delay_another() -> None:
    hang = asyncio.Event()
    other_ran = asyncio.Event()

    async def hanging() -> None:
        await hang.wait()

    async def other() -> None:
        other_ran.set()

    jobs = JobManager()
    jobs.ensure("stuck.test", LONG, hanging)
    await asyncio.sleep(0)
    jobs.ensure("podinfo.test", LONG, other)
    await asyncio.wait_for(other_ran.wait(), 5)
    assert not hang.is_set()
    await jobs.stop_all()


async def test_a_failing_cycle_is_logged_and_the_job_goes_on() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    jobs = JobManager()
    job = jobs.ensure("podinfo.test", 0.01, failing)
    await eventually(lambda: calls >= 2)
    assert job.running
    await jobs.stop_all()


async def test_removing_a_canary_stops_its_job() -> None:
    async def cycle() -> None:
        return None

    jobs = JobManager()
    job = jobs.ensure("podinfo.test", 0.01, cycle)
    await eventually(lambda: job.cycles >= 1)
    await jobs.remove("podinfo.test")
    assert not job.running
    assert "podinfo.test" not in jobs
    cycles = job.cycles
    await asyncio.sleep(0.05)
    assert job.cycles == cycles


async def test_draining_lets_the_cycle_in_flight_finish_its_writes() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def cycle() -> None:
        started.set()
        await release.wait()
        finished.append("write")

    jobs = JobManager()
    jobs.ensure("podinfo.test", LONG, cycle)
    await asyncio.wait_for(started.wait(), 5)
    drain = asyncio.create_task(jobs.drain(grace=5))
    await asyncio.sleep(0.01)
    assert not drain.done()
    release.set()
    await asyncio.wait_for(drain, 5)
    assert finished == ["write"]
    assert len(jobs) == 0


async def test_draining_cancels_a_cycle_that_outlives_the_grace_period() -> None:
    started = asyncio.Event()

    async def hanging() -> None:
        started.set()
        await asyncio.Event().wait()

    jobs = JobManager()
    job = jobs.ensure("stuck.test", LONG, hanging)
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(jobs.drain(grace=0.05), 5)
    assert not job.running


async def test_every_cycle_is_reported_failed_ones_included() -> None:
    reported = 0

    def on_cycle(lag: float) -> None:
        nonlocal reported
        reported += 1

    async def failing() -> None:
        raise RuntimeError("boom")

    jobs = JobManager(on_cycle=on_cycle)
    job = jobs.ensure("podinfo.test", 0.01, failing)
    await eventually(lambda: job.cycles >= 3)
    await jobs.stop_all()
    assert reported == job.cycles


async def test_a_cycle_waiting_for_a_threadiness_slot_reports_the_wait_as_its_lag() -> None:
    lags: list[float] = []
    release = asyncio.Event()
    held = asyncio.Event()

    async def holder() -> None:
        held.set()
        await release.wait()

    async def waiter() -> None:
        pass

    jobs = JobManager(on_cycle=lags.append, threadiness=1)
    jobs.ensure("holder.test", LONG, holder)
    await held.wait()
    loop = asyncio.get_running_loop()
    jobs.ensure("waiter.test", LONG, waiter)  # due at once, but the only slot is taken
    await asyncio.sleep(0)  # its task has started: it was due no later than now
    due = loop.time()
    await asyncio.sleep(0.05)
    held_for = loop.time() - due
    release.set()
    await eventually(lambda: len(lags) == 2)
    await jobs.stop_all()
    # The holder gives the slot back and reports first; the waiter's lag covers the wait.
    assert lags[1] >= held_for


def test_the_next_tick_counts_from_when_the_cycle_was_due_not_when_it_ended() -> None:
    # due at 100, interval 10, the cycle ended at 104: the period stays 10 s
    assert next_tick(100.0, 10.0, now=104.0) == pytest.approx(110.0)


def test_ticks_missed_by_a_late_cycle_are_dropped_and_the_latest_runs_at_once() -> None:
    # due at 100, the cycle ended at 135: ticks 110 and 120 are dropped, 130 runs now
    assert next_tick(100.0, 10.0, now=135.0) == pytest.approx(130.0)


def test_the_tick_after_a_first_cycle_is_spread_by_the_canary_key() -> None:
    assert next_tick(100.0, 10.0, now=100.5, spread=0.25) == pytest.approx(112.5)
    phases = [phase(f"podinfo-{index}.test") for index in range(1000)]
    assert all(0.0 <= value < 1.0 for value in phases)
    # a thousand jobs started together spread over the whole interval, not onto a few ticks
    assert len({int(value * 10) for value in phases}) == 10
    assert phase("podinfo.test") == phase("podinfo.test")


def test_ticks_fall_on_a_tenth_of_a_second_grid_so_that_cycles_due_together_wake_once() -> None:
    # a trigger at 100.03 made the cycle due then; its next tick waits for the grid
    assert next_tick(100.03, 10.0, now=100.04) == pytest.approx(110.1)
    ticks = {next_tick(100.0, 10.0, now=100.0, spread=phase(f"c{i}.test")) for i in range(1000)}
    assert len(ticks) <= 100  # a thousand canaries at 10 s: at most 10 wakes a second
    # a sub-second interval keeps a grid of a tenth of it, not of 0.1 s
    assert next_tick(0.0, 0.05, now=0.0, spread=0.5) == pytest.approx(0.075)


async def test_a_slow_cycle_does_not_stretch_the_period() -> None:
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow() -> None:
        starts.append(loop.time())
        await asyncio.sleep(0.3)

    jobs = JobManager()
    job = jobs.ensure("podinfo.test", 0.4, slow)
    await eventually(lambda: job.cycles >= 5, 10)
    await jobs.stop_all()
    # after the spread second tick, cycles start 0.4 s apart although each takes 0.3 s (counted
    # from the end, the period would be 0.7 s)
    periods = [later - earlier for earlier, later in itertools.pairwise(starts[1:])]
    assert periods
    assert all(period < 0.6 for period in periods), periods
