"""Running judged metrics and range queries: the query rendered for each role, range samples read
from the backend, the pure judge applied, the group score checked against the marginal score.

Queries see `{{ workload }}` and `{{ role }}` besides Flagger's functions, so one query serves the
canary (`<target>`, role canary), the primary (`<target>-primary`) and a fresh baseline
(`<target>-baseline`). See docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from coalmine.analysis import MetricResult
from coalmine.analysis.judge import JudgeConfig, Judgement, ScoredMetric, group_score, judge
from coalmine.analysis.providers.base import (
    MetricProvider,
    NoValuesFound,
    ProviderError,
    provider_type,
    range_capable,
)
from coalmine.analysis.record import score_thresholds
from coalmine.analysis.semantics import aggregate, range_step_seconds
from coalmine.analysis.templates import TemplateModel, render_query
from coalmine.api import naming
from coalmine.api.metric_providers import range_query_refusal
from coalmine.api.models import Canary, CanaryMetric, parse_go_duration

Role = Literal["canary", "primary", "baseline"]
SCORE_METRIC = "judge-score"


def workload_for(canary: Canary, role: Role) -> str:
    target = canary.spec.target_ref.name
    if role == "primary":
        return naming.primary_name(target)
    if role == "baseline":
        return naming.baseline_name(target)
    return target


@dataclass(frozen=True)
class RoleTemplateModel(TemplateModel):
    """Flagger's template model plus the workload a query is rendered for and its role."""

    workload: str = ""
    role: str = "canary"

    @classmethod
    def for_role(
        cls,
        canary: Canary,
        interval: str,
        variables: Mapping[str, str] | None,
        role: Role,
        route: str | None = None,
    ) -> RoleTemplateModel:
        base = TemplateModel.for_canary(canary, interval, variables, route=route)
        return cls(**vars(base), workload=workload_for(canary, role), role=role)

    def functions(self) -> dict[str, Callable[..., Any]]:
        functions = super().functions()
        workload, role = self.workload, self.role
        functions["workload"] = lambda: workload
        functions["role"] = lambda: role
        return functions


def window_seconds(interval: str) -> float:
    seconds = parse_go_duration(interval)
    return seconds if seconds and seconds > 0 else 60.0


async def range_samples(
    provider: MetricProvider, query: str, interval: str, step: str | None, now: float
) -> list[float]:
    """The samples of `query` over the metric interval ending `now`."""
    ranged = range_capable(provider)
    if ranged is None:
        raise ProviderError(range_query_refusal(provider_type(provider)))
    window = window_seconds(interval)
    return await ranged.run_range_query(query, now - window, now, range_step_seconds(window, step))


async def aggregated_value(
    provider: MetricProvider, query: str, metric: CanaryMetric, interval: str, now: float
) -> float:
    """`aggregate:` reads the range and reduces it; without it, Flagger's instant query."""
    if not metric.aggregate:
        return await provider.run_query(query)
    samples = await range_samples(provider, query, interval, None, now)
    value = aggregate(samples, metric.aggregate)
    if value is None:
        raise NoValuesFound(f"range query over {interval} returned no samples")
    return value


def control_role(canary: Canary, metric: CanaryMetric) -> Role:
    """What the canary is compared with: `judge.control`, else the fresh baseline when the
    Canary runs one (`spec.analysis.baseline`), else the primary."""
    chosen = metric.judge.control if metric.judge else None
    if chosen:
        return chosen
    return "baseline" if canary.spec.wants_baseline else "primary"


async def judge_metric(
    provider: MetricProvider,
    source: str,
    template_name: str,
    canary: Canary,
    metric: CanaryMetric,
    interval: str,
    now: float,
    route: str | None = None,
) -> tuple[MetricResult, Judgement]:
    """Render the query for the canary and the control, read both ranges, judge."""
    assert metric.judge is not None
    config = JudgeConfig.of(metric.judge, metric.name)
    control = control_role(canary, metric)
    step = metric.judge.step
    samples: dict[str, list[float]] = {}
    for role in ("canary", control):
        model = RoleTemplateModel.for_role(canary, interval, metric.template_variables, role, route)
        query = render_query(source, model, template_name)
        samples[role] = await range_samples(provider, query, interval, step, now)
    judgement = judge(samples["canary"], samples[control], config)
    return judged_result(canary, metric, config, judgement, control), judgement


def judged_result(
    canary: Canary, metric: CanaryMetric, config: JudgeConfig, judgement: Judgement, control: str
) -> MetricResult:
    verdict = judgement.classification
    detail = judgement.describe()
    threshold = f"judge vs {control} at {config.confidence:g}: {detail}"
    if verdict == "Pass":
        return MetricResult(
            metric.name,
            judgement.canary_median,
            True,
            threshold=threshold,
            verdict="Pass",
            baseline=judgement.control_median,
        )
    fatal = config.critical
    what = {"High": "higher than", "Low": "lower than", "NoData": "without data against"}[verdict]
    message = (
        f"{'Halt' if fatal else 'Judge'} {canary.key} {metric.name} is {what} {control}: {detail}"
    )
    return MetricResult(
        metric.name,
        judgement.canary_median,
        not fatal,
        message,
        "warning",
        threshold=threshold,
        verdict=verdict,
        baseline=judgement.control_median,
        fatal=fatal,
    )


def scored(metrics: Sequence[CanaryMetric], results: Sequence[MetricResult]) -> list[ScoredMetric]:
    judged = {m.name: m for m in metrics if m.judge is not None and not m.dry_run}
    out = []
    for result in results:
        metric = judged.get(result.name)
        if metric is None or metric.judge is None:
            continue
        verdict = result.effective_verdict
        out.append(
            ScoredMetric(
                metric.judge.group or metric.name,
                verdict if verdict in ("Pass", "High", "Low", "NoData") else "NoData",
                bool(metric.judge.must_have_data) or verdict == "Error",
            )
        )
    return out


def score_result(
    canary: Canary, scored_metrics: Sequence[ScoredMetric]
) -> tuple[float, MetricResult]:
    """The cycle's group score; at or below the marginal score it fails the run (Kayenta)."""
    analysis = canary.spec.analysis
    weights = analysis.judge.group_weights if analysis and analysis.judge else None
    score = group_score(scored_metrics, weights)
    passing, marginal = score_thresholds(canary)
    threshold = f"pass {passing:g}, marginal {marginal:g}"
    if score > marginal:
        return score, MetricResult(SCORE_METRIC, score, True, threshold=threshold, verdict="Pass")
    message = f"Halt {canary.key} advancement judge score {score:g} <= marginal {marginal:g}"
    return score, MetricResult(
        SCORE_METRIC,
        score,
        False,
        message,
        "warning",
        threshold=threshold,
        verdict="Fail",
        fatal=True,
    )
