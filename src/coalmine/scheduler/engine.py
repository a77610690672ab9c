"""The cycle's entry points (Flagger's `advanceCanary` and `finalizer.go`), through the seams only.

`Scheduler.advance` runs the 27 steps of Flagger's `advanceCanary` in its order (`cycle`);
`Scheduler.finalize` runs the revertOnDeletion finaliser. Every decision is derived from the canary
as read from the API server plus what the seams report (target fingerprint, live routes), never
from memory of an earlier cycle, so a controller restarted at any instant carries on from the
persisted state (docs/state-machine.md explains why each write order is safe).

The rooms, as Flagger's `scheduler_*.go`: `run` (the cycle object and its side effects), `cycle`
(the steps), `gates` (hooks and checks), `strategies` (canary, A/B, blue/green), `promotion`,
`rollback`, `decisions` (WaitingDecision and the judge) and `release` (release verbs).
"""

from __future__ import annotations

from coalmine.api.models import Canary
from coalmine.scheduler import cycle
from coalmine.scheduler.release import pause_or_resume
from coalmine.scheduler.run import KUBERNETES_PROVIDER, Dependencies, Run, SchedulerConfig, record
from coalmine.targets.base import is_retriable

# Finaliser readiness wait: Flagger's wait.Backoff{Duration: 3s, Factor: 2, Steps: 4, Cap: interval}.
FINALIZE_BACKOFF_SECONDS = 3.0
FINALIZE_BACKOFF_STEPS = 4

__all__ = [
    "FINALIZE_BACKOFF_SECONDS",
    "FINALIZE_BACKOFF_STEPS",
    "KUBERNETES_PROVIDER",
    "Dependencies",
    "Scheduler",
    "SchedulerConfig",
]


class Scheduler:
    """Advances canaries one cycle at a time; holds no per-canary state between cycles."""

    def __init__(self, deps: Dependencies, config: SchedulerConfig | None = None) -> None:
        self.deps = deps
        self.config = config or SchedulerConfig()

    async def advance(self, canary: Canary) -> bool:
        """Run one cycle for `canary`, freshly read from the API server; True when it found
        nothing to do (at rest), so that repeating it with the same inputs would do nothing."""
        started = self.deps.clock.monotonic()
        if canary.spec.suspend:
            await record(
                self.deps, canary, "Normal", "skipping canary run as object is suspended", None
            )
            return False
        canary, paused = await pause_or_resume(self.deps, canary)
        if paused:
            return False
        run = Run.start(self.deps, self.config, canary)
        ended = await cycle.advance(run)
        if ended is cycle.Ended.ANALYSED:
            self.deps.metrics.observe_duration(run.canary, self.deps.clock.monotonic() - started)
        return ended is cycle.Ended.AT_REST

    async def finalize(self, canary: Canary) -> bool:
        """revertOnDeletion: revert what coalmine changed; True when the finalizer may go.

        False means an error was recorded as a Warning event and the caller should retry later.
        """
        run = Run.start(self.deps, self.config, canary)
        if run.phase == "Terminated":
            return True
        if run.phase != "Terminating":
            await run.write(run.with_phase("Terminating"))
            await run.event("Normal", f"Terminating canary {run.key}")
        try:
            if run.scaler is not None:
                await run.scaler.resume_target_scaler(run.canary)
            await run.target.finalize(run.canary)
            await _wait_canary_ready(run)
            metadata = await run.target.get_metadata(run.canary)
            await run.service_router.finalize(run.canary, metadata)
            await run.mesh_router.finalize(run.canary)
        except Exception as error:
            await run.warn(error)
            return False
        await run.event("Normal", f"Terminated canary {run.key}")
        return True


async def _wait_canary_ready(run: Run) -> None:
    """Finaliser: poll canary readiness with Flagger's backoff; raise the last error."""
    interval = run.analysis.interval_seconds() if run.analysis else FINALIZE_BACKOFF_SECONDS
    delay = FINALIZE_BACKOFF_SECONDS
    for attempt in range(FINALIZE_BACKOFF_STEPS):
        try:
            await run.target.is_canary_ready(run.canary)
            return
        except Exception as error:
            if not is_retriable(error) or attempt == FINALIZE_BACKOFF_STEPS - 1:
                raise
        await run.deps.clock.sleep(min(delay, interval))
        delay *= 2
