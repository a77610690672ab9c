"""Rules of coalmine's metric semantics and judge (docs/analysis.md): conditions that parse and use
known names, judged metrics with a query for both sides, scoring thresholds in order."""

from __future__ import annotations

import ast

from coalmine.api.models import CanaryAnalysis, CanaryMetric
from coalmine.api.validation.problems import Problem, show

CONDITION_NAMES = frozenset(
    {"result", "baseline", "true", "false", "True", "False", "None"}
    | {"isNaN", "isInf", "isNil", "default", "abs", "min", "max", "len"}
)


def uses_new_semantics(metric: CanaryMetric) -> bool:
    """Metrics whose verdict is not Flagger's threshold check (the threshold rules do not apply)."""
    return bool(metric.judge is not None or metric.success_condition or metric.failure_condition)


def condition_problems(path: str, expression: str) -> list[Problem]:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        return [Problem(path, f"is not an expression: {error.msg}")]
    unknown = sorted(
        {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - CONDITION_NAMES
    )
    if unknown:
        return [
            Problem(
                path,
                f"unknown name {', '.join(show(name) for name in unknown)} "
                "(use result, baseline, isNaN, isInf, isNil, default, abs, min, max, len)",
            )
        ]
    return []


def metric_semantics_problems(path: str, metric: CanaryMetric) -> list[Problem]:
    problems: list[Problem] = []
    for field, expression in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        if expression:
            problems.extend(condition_problems(f"{path}.{field}", expression))
    if uses_new_semantics(metric) and (
        metric.threshold_range is not None or metric.threshold is not None
    ):
        problems.append(
            Problem(
                path,
                f"metric {show(metric.name)}: the threshold is ignored when a judge or "
                "conditions decide",
                "warning",
            )
        )
    if metric.judge is None:
        return problems
    if not metric.query and metric.template_ref is None:
        problems.append(
            Problem(
                f"{path}.judge",
                f"metric {show(metric.name)} needs a query or a templateRef to judge "
                "(rendered for the canary and the control with {{ role }} / {{ workload }})",
            )
        )
    elif metric.query and "role" not in metric.query and "workload" not in metric.query:
        problems.append(
            Problem(
                f"{path}.query",
                "uses neither {{ role }} nor {{ workload }}: the judge would compare the same "
                "series on both sides",
                "warning",
            )
        )
    if metric.aggregate:
        problems.append(
            Problem(
                f"{path}.aggregate",
                "ignored for a judged metric (it compares all samples)",
                "warning",
            )
        )
    return problems


def scoring_problems(analysis: CanaryAnalysis) -> list[Problem]:
    scoring = analysis.judge
    if scoring is None:
        return []
    problems: list[Problem] = []
    if not any(m.judge is not None for m in analysis.metrics or []):
        problems.append(
            Problem(
                "spec.analysis.judge", "no metric has a judge: the scoring is unused", "warning"
            )
        )
    passing = 95.0 if scoring.pass_score is None else scoring.pass_score
    marginal = 75.0 if scoring.marginal_score is None else scoring.marginal_score
    if marginal > passing:
        problems.append(
            Problem(
                "spec.analysis.judge.marginalScore",
                f"must not be above passScore ({marginal:g} > {passing:g})",
            )
        )
    for group, weight in (scoring.group_weights or {}).items():
        if weight < 0:
            problems.append(
                Problem(
                    f"spec.analysis.judge.groupWeights.{group}",
                    f"must not be negative, got {weight:g}",
                )
            )
    return problems
