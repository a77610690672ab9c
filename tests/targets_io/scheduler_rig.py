"""The real scheduler driving the real target, scaler and router implementations on devcluster.

Only the scheduler's own ports (analysis, hooks, alerts, events, status store, metrics, clock) are
in-memory stand-ins: the cluster side is exactly what the controller runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from coalmine.analysis import AnalysisOutcome, Analyzer, AvailabilityOutcome, MetricResult
from coalmine.api.models import (
    AlertSeverity,
    Canary,
    CanaryStatus,
    CanaryWebhook,
    EventType,
    Phase,
    Strategy,
)
from coalmine.controller.adapters import SystemClock
from coalmine.controller.seams import ControllerSeams
from coalmine.kube.context import ClusterContext
from coalmine.scheduler import Dependencies, Scheduler, SchedulerConfig
from coalmine.scheduler.ports import AnalysisStatus

from .io_helpers import POLL_SECONDS, WAIT_SECONDS


class PassingAnalysis:
    async def check_availability(self, canary: Canary) -> AvailabilityOutcome:
        return AvailabilityOutcome(True, "all the metrics providers are available!")

    async def analyse(self, canary: Canary, *, route: str | None = None) -> AnalysisOutcome:
        return AnalysisOutcome()


@dataclass
class FailingAfter:
    """Metric checks that pass `passes` times, then fail (a rollback on demand)."""

    passes: int
    calls: int = 0

    async def check_availability(self, canary: Canary) -> AvailabilityOutcome:
        return AvailabilityOutcome(True, "all the metrics providers are available!")

    async def analyse(self, canary: Canary, *, route: str | None = None) -> AnalysisOutcome:
        self.calls += 1
        if self.calls <= self.passes:
            return AnalysisOutcome()
        failed = MetricResult(
            "error-rate", 100.0, False, "Halt advancement error-rate 100 > 1", "warning"
        )
        return AnalysisOutcome((failed,))


class AcceptingWebhooks:
    async def call(self, canary: Canary, webhook: CanaryWebhook, phase: Phase) -> None:
        return None


class SilentAlerts:
    async def alert(
        self, canary: Canary, message: str, *, metadata: bool, severity: AlertSeverity
    ) -> None:
        return None


@dataclass
class Events:
    seen: list[tuple[str, str]] = field(default_factory=list)

    async def event(
        self, canary: Canary, event_type: EventType, message: str, phase: Phase
    ) -> None:
        self.seen.append((event_type, message))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.seen]


@dataclass
class StatusStore:
    canary: Canary
    phases: list[str] = field(default_factory=list)

    async def write_status(self, canary: Canary, status: CanaryStatus) -> Canary:
        self.canary = self.canary.model_copy(update={"status": status.model_copy(deep=True)})
        self.phases.append(status.phase or "")
        return self.canary.model_copy(deep=True)


class NoMetrics:
    def set_status(self, canary: Canary, value: int) -> None: ...
    def set_weight(self, canary: Canary, primary_weight: int, canary_weight: int) -> None: ...
    def inc_successes(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None: ...
    def inc_failures(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None: ...
    def observe_duration(self, canary: Canary, seconds: float) -> None: ...


class ClusterRig:
    """One canary advanced cycle by cycle by the real scheduler against devcluster."""

    def __init__(
        self, ctx: ClusterContext, canary: Canary, analyzer: Analyzer | None = None
    ) -> None:
        self.events = Events()
        self.store = StatusStore(canary)
        self.scheduler = Scheduler(
            Dependencies(
                seams=ControllerSeams(ctx),
                analyzer=analyzer or PassingAnalysis(),
                webhooks=AcceptingWebhooks(),
                alerts=SilentAlerts(),
                recorder=self.events,
                status=self.store,
                metrics=NoMetrics(),
                clock=SystemClock(),
            ),
            SchedulerConfig(mesh_provider="kubernetes"),
        )

    @property
    def phase(self) -> str:
        status = self.store.canary.status
        return (status.phase if status else None) or ""

    async def cycle(self) -> None:
        await self.scheduler.advance(self.store.canary.model_copy(deep=True))

    async def cycle_until(self, phase: str) -> None:
        """Cycles (at a short interval, waiting on rollouts) until the canary reaches `phase`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while self.phase != phase:
            if loop.time() > deadline:
                raise AssertionError(
                    f"canary stuck in {self.phase!r} waiting for {phase!r}: {self.events.seen[-5:]}"
                )
            await self.cycle()
            if self.phase != phase:
                await asyncio.sleep(POLL_SECONDS)
