"""Edge values: empty names, durations Go cannot hold or beyond the maximums, numbers where a
duration belongs, misspelt fields, and metrics whose check can never fail."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.models import GO_DURATION_MAX_SECONDS, parse_go_duration
from coalmine.api.validation import ManifestError, inspect_object, parse_canary

Doc = dict[str, Any]


def canary_doc(**analysis: Any) -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10, **analysis},
        },
    }


def problems(doc: object) -> list[str]:
    return [str(problem) for problem in inspect_object(doc).problems]


def errors(doc: object) -> list[str]:
    return [str(problem) for problem in inspect_object(doc).errors]


# --- empty names ------------------------------------------------------------------------------


def test_an_empty_target_name_is_refused_with_its_path() -> None:
    doc = canary_doc()
    doc["spec"]["targetRef"]["name"] = ""
    assert errors(doc) == ["spec.targetRef.name: must not be empty: it names no object"]
    with pytest.raises(ManifestError):
        parse_canary(doc)


def test_empty_reference_names_are_refused_wherever_they_are() -> None:
    doc = canary_doc(
        metrics=[{"name": "lat", "templateRef": {"name": ""}, "thresholdRange": {"max": 1}}],
        alerts=[{"name": "on-call", "providerRef": {"name": ""}}],
    )
    doc["spec"]["autoscalerRef"] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "",
    }
    assert sorted(errors(doc)) == [
        "spec.analysis.alerts[0].providerRef.name: must not be empty: it names no object",
        "spec.analysis.metrics[0].templateRef.name: must not be empty: it names no object",
        "spec.autoscalerRef.name: must not be empty: it names no object",
    ]


def test_an_empty_name_of_a_webhook_is_a_warning_only() -> None:
    doc = canary_doc(webhooks=[{"name": "", "url": "http://hooks/"}])
    assert problems(doc) == ["spec.analysis.webhooks[0].name: warning: should not be empty"]


# --- durations --------------------------------------------------------------------------------


def test_a_duration_go_cannot_hold_does_not_parse() -> None:
    assert parse_go_duration("99999999999999999999m") is None
    assert parse_go_duration("2562047h") == 2562047 * 3600.0
    assert parse_go_duration("2562048h") is None
    assert pytest.approx(292.47 * 365.25 * 86400, rel=1e-3) == GO_DURATION_MAX_SECONDS


def test_an_interval_go_cannot_hold_is_refused() -> None:
    assert errors(canary_doc(interval="99999999999999999999m")) == [
        'spec.analysis.interval: "99999999999999999999m" does not fit a Go duration '
        "(about 292 years at most), so Flagger cannot parse it; the maximum here is 24h"
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interval", "1441m", 'spec.analysis.interval: "1441m" is more than the maximum of 24h'),
        ("interval", "86401s", 'spec.analysis.interval: "86401s" is more than the maximum of 24h'),
    ],
)
def test_an_interval_beyond_the_maximum_is_refused(field: str, value: str, message: str) -> None:
    assert errors(canary_doc(**{field: value})) == [message]
    assert errors(canary_doc(**{field: "1440m"})) == []


def test_webhook_timeouts_and_metric_windows_have_their_own_maximums() -> None:
    doc = canary_doc(
        webhooks=[{"name": "load", "url": "http://hooks/", "timeout": "1441m"}],
        metrics=[
            {"name": "slo", "templateRef": {"name": "t"}, "interval": "43201m"},
            {"name": "ok", "templateRef": {"name": "t"}, "interval": "43200m"},
        ],
    )
    for metric in doc["spec"]["analysis"]["metrics"]:
        metric["thresholdRange"] = {"max": 1}
    assert errors(doc) == [
        'spec.analysis.metrics[0].interval: "43201m" is more than the maximum of 720h',
        'spec.analysis.webhooks[0].timeout: "1441m" is more than the maximum of 24h',
    ]


def test_a_number_where_a_duration_belongs_gets_a_duration_hint() -> None:
    doc = canary_doc(webhooks=[{"name": "load", "url": "http://hooks/", "timeout": 5}])
    assert errors(doc) == [
        "spec.analysis.webhooks[0].timeout: must be a duration like 5s or 1m "
        "(a number needs a unit), got 5"
    ]
    assert errors(canary_doc(interval=60)) == [
        "spec.analysis.interval: must be a duration like 5s or 1m (a number needs a unit), got 60"
    ]


def test_a_number_where_another_string_belongs_keeps_the_plain_message() -> None:
    doc = canary_doc()
    doc["spec"]["targetRef"]["name"] = 5
    assert errors(doc) == ["spec.targetRef.name: must be a string, got 5"]


# --- did you mean -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [("stepweight", "stepWeight"), ("stepWieght", "stepWeight"), ("treshold", "threshold")],
)
def test_a_misspelt_analysis_field_suggests_the_field(misspelt: str, meant: str) -> None:
    doc = canary_doc()
    analysis = doc["spec"]["analysis"]
    analysis[misspelt] = analysis.pop(meant)
    assert f'spec.analysis.{misspelt}: unknown field; did you mean "{meant}"?' in errors(doc)


def test_suggestions_come_from_the_object_the_field_is_in() -> None:
    doc = canary_doc(
        metrics=[{"name": "x", "templateRef": {"name": "t"}, "thresholdRnage": {"max": 1}}]
    )
    doc["spec"]["targetref"] = doc["spec"].pop("targetRef")
    assert sorted(errors(doc)) == [
        'spec.analysis.metrics[0].thresholdRnage: unknown field; did you mean "thresholdRange"?',
        "spec.targetRef: required",
        'spec.targetref: unknown field; did you mean "targetRef"?',
    ]


def test_a_field_like_no_other_gets_no_suggestion() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["foo"] = 1
    assert errors(doc) == ["spec.service.foo: unknown field"]


def test_v1alpha3_paths_get_suggestions_too() -> None:
    doc = canary_doc()
    doc["apiVersion"] = "flagger.app/v1alpha3"
    analysis = doc["spec"].pop("analysis")
    analysis["iteration"] = 3
    doc["spec"]["canaryAnalysis"] = analysis
    assert 'spec.canaryAnalysis.iteration: unknown field; did you mean "iterations"?' in errors(doc)


# --- metrics that can never fail --------------------------------------------------------------


def test_a_builtin_success_rate_without_a_range_can_never_fail() -> None:
    assert problems(canary_doc(metrics=[{"name": "request-success-rate"}])) == [
        'spec.analysis.metrics[0]: warning: metric "request-success-rate" has no thresholdRange: '
        "the check can never fail (set thresholdRange.min, e.g. 99)"
    ]
    legacy = canary_doc(metrics=[{"name": "request-success-rate", "threshold": 99}])
    assert problems(legacy) == []


def test_a_builtin_duration_without_a_range_fails_on_any_value() -> None:
    assert problems(canary_doc(metrics=[{"name": "request-duration"}])) == [
        'spec.analysis.metrics[0]: warning: metric "request-duration" has no thresholdRange: '
        "the check fails whenever the value is above 0"
    ]


def test_an_empty_threshold_range_can_never_fail() -> None:
    doc = canary_doc(
        metrics=[{"name": "x", "templateRef": {"name": "t"}, "thresholdRange": {}}],
    )
    assert problems(doc) == [
        'spec.analysis.metrics[0].thresholdRange: warning: metric "x" sets neither min nor max: '
        "the check can never fail"
    ]


def test_a_metric_with_a_range_gets_no_threshold_warning() -> None:
    doc = canary_doc(
        metrics=[
            {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            {"name": "request-duration", "thresholdRange": {"max": 500}},
        ]
    )
    assert problems(doc) == []
