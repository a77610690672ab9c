"""Measurements on record: the bounded per-metric history kept in `status.metrics`.

Pure (no I/O, no third-party import), so the scheduler writes the record and the analyzer reads
the consecutive-error count from the same rules. See docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalmine.analysis import AnalysisOutcome, MetricResult
from coalmine.api.models import (
    Canary,
    CanaryMetric,
    CanaryStatus,
    Measurement,
    MetricRecord,
    Verdict,
)

# Measurements kept per metric (Argo Rollouts keeps 10 too); status objects stay small.
MEASUREMENTS_KEPT = 10
DEFAULT_PASS_SCORE = 95.0
DEFAULT_MARGINAL_SCORE = 75.0
VERDICTS: frozenset[str] = frozenset(
    {"Pass", "Fail", "Inconclusive", "Error", "NoData", "High", "Low"}
)


def record_of(canary: Canary, metric: str) -> MetricRecord | None:
    records = canary.status.metrics if canary.status else None
    return next((r for r in records or [] if r.name == metric), None)


def consecutive_errors(canary: Canary, metric: str) -> int:
    record = record_of(canary, metric)
    return (record.consecutive_errors or 0) if record else 0


def next_error_count(previous: int, verdict: str) -> int:
    """Provider errors in a row: any other verdict (a measurement was taken) resets the count."""
    return previous + 1 if verdict == "Error" else 0


def _round(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None  # NaN/Inf are not JSON; the verdict and message say what happened
    return round(value, 6)


def measurement(result: MetricResult, time: str) -> Measurement:
    verdict = result.effective_verdict
    return Measurement(
        time=time,
        verdict=verdict if verdict in VERDICTS else "Fail",  # type: ignore[arg-type]
        value=_round(result.value),
        baseline=_round(result.baseline),
        threshold=result.threshold,
        dry_run=True if result.dry_run else None,
        message=(result.message or None) if verdict != "Pass" else None,
    )


def with_measurements(
    status: CanaryStatus,
    outcome: AnalysisOutcome,
    *,
    time: str,
    keep: int = MEASUREMENTS_KEPT,
) -> CanaryStatus:
    """`status` with one measurement per result appended (the last `keep` per metric stay)."""
    records = {r.name: r for r in status.metrics or []}
    order = [r.name for r in status.metrics or []]
    for result in outcome.results:
        previous = records.get(result.name)
        kept = list(previous.measurements or []) if previous else []
        kept.append(measurement(result, time))
        errors = next_error_count(
            (previous.consecutive_errors or 0) if previous else 0, result.effective_verdict
        )
        if result.name not in records:
            order.append(result.name)
        records[result.name] = MetricRecord(
            name=result.name,
            consecutive_errors=errors or None,
            measurements=kept[-keep:],
        )
    new = status.model_copy()  # metrics replaced below; nothing edited in place
    new.metrics = [records[name] for name in order]
    if outcome.score is not None:
        new.judge_score = outcome.score
    return new


def judged(metrics: Sequence[CanaryMetric] | None) -> bool:
    return any(m.judge is not None and not m.dry_run for m in metrics or [])


def score_thresholds(canary: Canary) -> tuple[float, float]:
    """(pass, marginal) of the canary's judge scoring, defaults filled in."""
    analysis = canary.spec.analysis
    scoring = analysis.judge if analysis else None
    passing = scoring.pass_score if scoring and scoring.pass_score is not None else None
    marginal = scoring.marginal_score if scoring and scoring.marginal_score is not None else None
    return (
        DEFAULT_PASS_SCORE if passing is None else passing,
        DEFAULT_MARGINAL_SCORE if marginal is None else marginal,
    )


def final_score_verdict(canary: Canary) -> Verdict | None:
    """The last analysis before promotion must reach the pass score (Kayenta): Pass, Inconclusive
    (marginal: a person decides) or Fail; None when the canary has no judged metric."""
    analysis = canary.spec.analysis
    if analysis is None or not judged(analysis.metrics):
        return None
    score = canary.status.judge_score if canary.status else None
    if score is None:
        return None
    passing, marginal = score_thresholds(canary)
    if score >= passing:
        return "Pass"
    return "Inconclusive" if score > marginal else "Fail"


def summary_line(record: MetricRecord) -> str:
    """`coalmine status`: the last measurement of a metric on one line."""
    if not record.measurements:
        return f"{record.name}: no measurement"
    last = record.measurements[-1]
    parts = [f"{record.name}: {last.verdict}"]
    if last.value is not None:
        parts.append(f"value {last.value:g}")
    if last.baseline is not None:
        parts.append(f"baseline {last.baseline:g}")
    if last.threshold:
        parts.append(f"({last.threshold})")
    if last.dry_run:
        parts.append("[dry-run]")
    if record.consecutive_errors:
        parts.append(f"errors in a row {record.consecutive_errors}")
    return " ".join(parts)


def payload_block(canary: Canary) -> list[dict[str, object]]:
    """Webhook payloads' `metrics`: the last measurement per metric."""
    block: list[dict[str, object]] = []
    for record in (canary.status.metrics if canary.status else None) or []:
        if not record.measurements:
            continue
        last = record.measurements[-1].to_wire()
        block.append({"name": record.name, **last})
    return block
