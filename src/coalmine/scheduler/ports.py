"""The scheduler's own seams besides targets and routers.

Each Protocol is the smallest thing one cycle needs; the controller wires thin adapters from the
analysis, hooks, notify and kube packages. Nothing here performs I/O itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from coalmine.api.models import (
    AlertSeverity,
    Canary,
    CanaryStatus,
    CanaryWebhook,
    EventType,
    Phase,
    Strategy,
)
from coalmine.routers.base import Router, ServiceRouter
from coalmine.targets.base import ScalerReconciler, TargetController

AnalysisStatus = Literal["completed", "skipped"]


class WebhookCaller(Protocol):
    async def call(self, canary: Canary, webhook: CanaryWebhook, phase: Phase) -> None:
        """POST Flagger's payload with `phase`; return on success (2xx), raise with the body otherwise."""
        ...


class Alerts(Protocol):
    async def alert(
        self, canary: Canary, message: str, *, metadata: bool, severity: AlertSeverity
    ) -> object:
        """Send to the canary's alert providers (or the global notifier); never raises.

        The result (the `Alerter` returns its deliveries) is not the scheduler's business.

        `metadata=True` asks for Flagger's extra fields (Target, Failed checks threshold, Progress
        deadline, Traffic routing).
        """
        ...


class Recorder(Protocol):
    async def event(
        self, canary: Canary, event_type: EventType, message: str, phase: Phase
    ) -> None:
        """Record a Kubernetes Event (reason `Synced`) and forward it to the event webhooks.

        `phase` is the phase the event webhook payload carries; it is the phase the scheduler
        just wrote or is about to write (e.g. `Progressing` for "New revision detected!"). Never
        raises.
        """
        ...


class StatusWriter(Protocol):
    async def write_status(self, canary: Canary, status: CanaryStatus) -> Canary:
        """Persist `status` through the status subresource; return the canary as stored.

        The scheduler computes the complete status (it alone decides what changes); the writer only
        retries on conflict by re-reading the object and putting the same status on it.
        """
        ...


class ActionLog(Protocol):
    async def handled(self, canary: Canary, annotations: dict[str, str]) -> Canary:
        """Merge `annotations` (the handled release verb, `coalmine.dev/handled-action`) into the
        Canary's metadata; return the canary with them. Called only after the effects and status
        write of the verb, so a crash in between makes the next cycle handle it again."""
        ...


class MetricsSink(Protocol):
    """Flagger's controller metrics; the controller owns the Prometheus registry and labels.

    Label values come from the canary: `name` is `spec.targetRef.name`.
    """

    def set_status(self, canary: Canary, value: int) -> None:
        """`flagger_canary_status`: 0 Progressing, 2 Failed, 1 otherwise (see `status.phase_gauge`)."""
        ...

    def set_weight(self, canary: Canary, primary_weight: int, canary_weight: int) -> None:
        """`flagger_canary_weight` for `<target>-primary` and `<target>`."""
        ...

    def inc_successes(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None: ...

    def inc_failures(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None: ...

    def observe_duration(self, canary: Canary, seconds: float) -> None:
        """`flagger_canary_duration_seconds` of a cycle that reached the analysis."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time (timezone-aware UTC) for `lastTransitionTime` and conditions."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring cycle durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Waiting between readiness polls during finalisation."""
        ...


class Seams(Protocol):
    """Resolves the per-canary implementations, the way Flagger's factories do each cycle."""

    def target(self, canary: Canary) -> TargetController: ...

    def scaler(self, canary: Canary) -> ScalerReconciler | None:
        """None when the canary has no `spec.autoscalerRef`."""
        ...

    def service_router(self, canary: Canary) -> ServiceRouter: ...

    def mesh_router(self, canary: Canary, provider: str) -> Router: ...
