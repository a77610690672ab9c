"""Validation of coalmine's metric semantics and judge fields, each with its exact message."""

from __future__ import annotations

from typing import Any

from .test_validation import errors, problems, with_analysis

JUDGED = {"name": "latency", "query": 'lat{role="{{ role }}"}', "judge": {"direction": "increase"}}


def test_a_judged_metric_with_conditions_gets_no_threshold_warning() -> None:
    doc = with_analysis(
        metrics=[JUDGED, {"name": "p99", "query": "q", "successCondition": "result < 0.4"}]
    )
    assert problems(doc) == []


def test_a_condition_that_does_not_parse_or_names_something_unknown_is_an_error() -> None:
    doc = with_analysis(
        metrics=[
            {"name": "a", "query": "q", "successCondition": "result <"},
            {"name": "b", "query": "q", "failureCondition": "os.system('x') or result > 1"},
        ]
    )
    assert errors(doc) == [
        "spec.analysis.metrics[0].successCondition: is not an expression: invalid syntax",
        'spec.analysis.metrics[1].failureCondition: unknown name "os" (use result, baseline, '
        "isNaN, isInf, isNil, default, abs, min, max, len)",
    ]


def test_a_judge_needs_a_query_and_should_render_it_per_role() -> None:
    doc = with_analysis(
        metrics=[
            {"name": "request-duration", "judge": {}},
            {"name": "same", "query": "lat", "judge": {}},
        ]
    )
    assert problems(doc) == [
        'spec.analysis.metrics[0].judge: metric "request-duration" needs a query or a templateRef '
        "to judge (rendered for the canary and the control with {{ role }} / {{ workload }})",
        "spec.analysis.metrics[1].query: warning: uses neither {{ role }} nor {{ workload }}: "
        "the judge would compare the same series on both sides",
    ]


def test_scoring_thresholds_must_be_in_order() -> None:
    doc: dict[str, Any] = with_analysis(
        metrics=[JUDGED], judge={"passScore": 70, "marginalScore": 80}
    )
    assert errors(doc) == [
        "spec.analysis.judge.marginalScore: must not be above passScore (80 > 70)"
    ]


def test_new_fields_are_refused_when_misspelt_or_out_of_range() -> None:
    doc = with_analysis(metrics=[{**JUDGED, "aggregate": "median"}])
    assert any("aggregate" in e for e in errors(doc))
    doc = with_analysis(metrics=[{**JUDGED, "judge": {"confidence": 1.5}}])
    assert any("confidence" in e for e in errors(doc))
