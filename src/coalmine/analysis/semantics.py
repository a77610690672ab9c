"""Argo-style semantics on a metric: conditions, aggregation, no-data policy, error limit, dry run.

All opt-in: a metric without these fields keeps Flagger's threshold check and messages. Conditions
are evaluated by `simpleeval` (a restricted AST interpreter: no attribute access to dunders, no
imports, bounded powers and string sizes), never by `eval`. See docs/analysis.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import simpleeval

from coalmine.analysis import MetricResult
from coalmine.analysis.record import next_error_count
from coalmine.api.models import CanaryMetric, parse_go_duration

DEFAULT_RANGE_STEP_SECONDS = 15.0
MIN_RANGE_STEP_SECONDS = 1.0


class ConditionError(ValueError):
    """A condition cannot be evaluated (syntax, unknown name, not a boolean)."""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_inf(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None or _is_nan(value) else value


CONDITION_FUNCTIONS: dict[str, Any] = {
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "isNil": lambda value: value is None,
    "default": _default,
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
}


def evaluate_condition(expression: str, result: float | None, baseline: float | None) -> bool:
    """`expression` over `result` (the measured value; None without data) and `baseline`."""
    evaluator = simpleeval.SimpleEval(
        functions=CONDITION_FUNCTIONS,
        names={"result": result, "baseline": baseline, "true": True, "false": False},
    )
    try:
        value = evaluator.eval(expression)
    except (simpleeval.InvalidExpression, SyntaxError, TypeError, ZeroDivisionError) as error:
        raise ConditionError(f"{type(error).__name__}: {error}") from error
    if not isinstance(value, bool):
        raise ConditionError(f"it gave {value!r}, not true or false")
    return value


def condition_verdict(metric: CanaryMetric, value: float | None, baseline: float | None) -> str:
    """Argo's rules: failure wins; both set and neither holds is Inconclusive; only a success
    condition: not success is a failure; only a failure condition: not failure is a success."""
    success, failure = metric.success_condition, metric.failure_condition
    if failure and evaluate_condition(failure, value, baseline):
        return "Fail"
    if success:
        if evaluate_condition(success, value, baseline):
            return "Pass"
        return "Inconclusive" if failure else "Fail"
    return "Pass"


def condition_text(metric: CanaryMetric) -> str:
    parts = []
    if metric.success_condition:
        parts.append(f"success: {metric.success_condition}")
    if metric.failure_condition:
        parts.append(f"failure: {metric.failure_condition}")
    return "; ".join(parts)


def aggregate(values: Sequence[float], how: str) -> float | None:
    """Reduce a range result (NaN samples dropped): last, avg, max, min or pNN (linear)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    if how == "last":
        return finite[-1]
    if how == "avg":
        return float(np.mean(finite))
    if how == "max":
        return max(finite)
    if how == "min":
        return min(finite)
    return float(np.percentile(finite, float(how[1:])))


def range_step_seconds(interval_seconds: float, step: str | None) -> float:
    """The resolution of a range query: the given step, else 1/20 of the window within 1s..15s."""
    seconds = parse_go_duration(step) if step else None
    if seconds and seconds > 0:
        return seconds
    return min(DEFAULT_RANGE_STEP_SECONDS, max(MIN_RANGE_STEP_SECONDS, interval_seconds / 20))


def uses_semantics(metric: CanaryMetric) -> bool:
    return bool(
        metric.success_condition
        or metric.failure_condition
        or metric.dry_run
        or metric.consecutive_error_limit is not None
        or metric.no_data
    )


def apply_semantics(
    metric: CanaryMetric, result: MetricResult, previous_errors: int, key: str
) -> MetricResult:
    """Flagger's check result reinterpreted by the metric's opt-in fields; unchanged without."""
    if not uses_semantics(metric):
        return result
    verdict = result.effective_verdict
    if verdict == "NoData" and metric.no_data and metric.no_data != "fail":
        decided = "Pass" if metric.no_data == "pass" else "Inconclusive"
        result = replace(
            result, passed=True, verdict=decided, threshold=f"noData: {metric.no_data}"
        )
    elif verdict == "Error" and metric.consecutive_error_limit is not None:
        errors = next_error_count(previous_errors, verdict)
        if errors <= metric.consecutive_error_limit:
            result = replace(
                result,
                passed=True,
                verdict="Error",
                message=f"{result.message} (error {errors} in a row, "
                f"consecutiveErrorLimit {metric.consecutive_error_limit})",
            )
    elif result.value is not None and (metric.success_condition or metric.failure_condition):
        result = _conditions(metric, result, key)
    if metric.dry_run and not result.passed:
        result = replace(
            result, passed=True, dry_run=True, fatal=False, verdict=result.effective_verdict
        )
    elif metric.dry_run:
        result = replace(result, dry_run=True)
    return result


def _conditions(metric: CanaryMetric, result: MetricResult, key: str) -> MetricResult:
    text = condition_text(metric)
    try:
        verdict = condition_verdict(metric, result.value, result.baseline)
    except ConditionError as error:
        message = f"Metric {metric.name} condition cannot be evaluated: {error}"
        return replace(result, passed=False, verdict="Error", message=message, severity="error")
    if verdict == "Pass":
        return replace(result, passed=True, verdict="Pass", message="", threshold=text)
    value = result.value if result.value is not None else float("nan")
    if verdict == "Inconclusive":
        message = (
            f"Metric {metric.name} {value:.2f} is inconclusive ({text}): waiting for a decision"
        )
        return replace(result, passed=True, verdict=verdict, message=message, threshold=text)
    message = f"Halt {key} advancement {metric.name} {value:.2f} fails the condition ({text})"
    return replace(
        result, passed=False, verdict="Fail", message=message, severity="warning", threshold=text
    )
