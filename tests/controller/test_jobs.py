"""Per-canary jobs: immediate first cycle, triggers, intervals, isolation and stopping."""

from __future__ import annotations

import asyncio

from coalmine.controller.jobs import JobManager
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
