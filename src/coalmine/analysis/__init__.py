"""Metric analysis: the seam the scheduler depends on, and the values it exchanges.

This module imports no HTTP or Kubernetes library, so `coalmine.scheduler` can import the
`Analyzer` Protocol and its result types freely. The implementation is
`coalmine.analysis.checks.MetricAnalyzer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from coalmine.api.models import Canary, MetricTemplate

#: How a metric check's result is recorded: the Event severity (warning: halt, error: broken query).
CheckSeverity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class MetricResult:
    """One metric check. `value` is the measured value (milliseconds for `request-duration`),
    None when no value could be read; `message` is Flagger's event text when the check failed;
    `severity` is the event type to record it with (warning: halt, error: broken query)."""

    name: str
    value: float | None
    passed: bool
    message: str = ""
    severity: CheckSeverity = "info"
    # The record (docs/analysis.md): what the value was compared with, the verdict (derived from
    # `passed`/`severity` when empty), the control value of a judged metric; `passed` stays "does
    # not stop the run", so a dry-run failure or an inconclusive measurement passes; `fatal`
    # fails the whole run (critical judged metric, judge score at or below marginal).
    threshold: str | None = None
    verdict: str = ""
    baseline: float | None = None
    dry_run: bool = False
    fatal: bool = False

    @property
    def effective_verdict(self) -> str:
        if self.verdict:
            return self.verdict
        if self.passed:
            return "Pass"
        if self.severity == "error":
            return "Error"
        return "NoData" if self.value is None else "Fail"


@dataclass(frozen=True)
class AnalysisOutcome:
    """The metric checks of one cycle, in the order they ran; the run stops at the first failure."""

    results: tuple[MetricResult, ...] = ()
    # The judge's weighted group score of this cycle (None: no judged metric ran).
    score: float | None = None

    @property
    def inconclusive(self) -> bool:
        """A measurement asks for a person's decision (the run waits in WaitingDecision)."""
        return any(r.effective_verdict == "Inconclusive" and not r.dry_run for r in self.results)

    @property
    def fatal(self) -> bool:
        return any(r.fatal and not r.passed for r in self.results)

    @property
    def ok(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failure(self) -> MetricResult | None:
        return next((result for result in self.results if not result.passed), None)

    @property
    def messages(self) -> tuple[str, ...]:
        """Event texts to record (one per failed check; at most one since the run stops there)."""
        return tuple(result.message for result in self.results if not result.passed)


@dataclass(frozen=True)
class AvailabilityOutcome:
    """Result of the init-time provider check: `message` is the event text (Normal when ok, else
    the caller records `Error checking metric providers: <message>`)."""

    ok: bool
    message: str


class MetricSources(Protocol):
    """Read access to the controller's cache: MetricTemplates and Secret data by namespace/name."""

    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None: ...

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes | str] | None: ...


# Called with each value read: the controller sets `flagger_canary_metric_analysis`
# {name=<targetRef.name>, namespace, metric} (request-duration in seconds).
RecordMetric = Callable[["Canary", str, float], None]


class Analyzer(Protocol):
    """What the scheduler calls once per analysis cycle and once at initialisation."""

    async def analyse(self, canary: Canary, *, route: str | None = None) -> AnalysisOutcome: ...

    async def check_availability(self, canary: Canary) -> AvailabilityOutcome: ...


__all__ = [
    "AnalysisOutcome",
    "Analyzer",
    "AvailabilityOutcome",
    "CheckSeverity",
    "MetricResult",
    "MetricSources",
    "RecordMetric",
]
