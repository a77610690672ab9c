"""Defaults and derived values of the Canary model, as Flagger computes them."""

from __future__ import annotations

import pytest

from coalmine.api.models import Canary, CanaryAnalysis, parse_go_duration


def make_canary(analysis: dict[str, object] | None = None) -> Canary:
    spec: dict[str, object] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
    }
    if analysis is not None:
        spec["analysis"] = analysis
    return Canary.model_validate(
        {"metadata": {"name": "podinfo", "namespace": "test"}, "spec": spec}
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("x", None)],
)
def test_go_durations_parse_like_go(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize(
    ("interval", "seconds"), [(None, 60.0), ("5s", 10.0), ("30s", 30.0), ("2m", 120.0)]
)
def test_analysis_interval_defaults_to_60s_and_is_raised_to_10s(
    interval: str | None, seconds: float
) -> None:
    assert CanaryAnalysis(interval=interval).interval_seconds() == seconds


def test_threshold_below_one_counts_as_one() -> None:
    assert CanaryAnalysis(threshold=0).effective_threshold == 1
    assert CanaryAnalysis(threshold=5).effective_threshold == 5


def test_step_weights_cap_the_max_weight_at_100() -> None:
    assert CanaryAnalysis(step_weights=[1, 2, 10, 200]).effective_max_weight == 100
    assert CanaryAnalysis(step_weights=[5, 20]).effective_max_weight == 20
    assert CanaryAnalysis().effective_max_weight == 100


@pytest.mark.parametrize(
    ("analysis", "strategy"),
    [
        (None, "canary"),
        ({"interval": "1m", "threshold": 1, "stepWeight": 10}, "canary"),
        ({"interval": "1m", "threshold": 1, "iterations": 3}, "blue-green"),
        (
            {
                "interval": "1m",
                "threshold": 1,
                "iterations": 3,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
            },
            "ab-testing",
        ),
    ],
)
def test_strategy_is_derived_from_iterations_and_match(
    analysis: dict[str, object] | None, strategy: str
) -> None:
    assert make_canary(analysis).spec.strategy == strategy


def test_wire_form_keeps_only_what_the_user_wrote() -> None:
    canary = make_canary({"interval": "1m", "threshold": 2, "webhooks": []})
    wire = canary.to_wire()
    assert wire["spec"]["analysis"] == {"interval": "1m", "threshold": 2, "webhooks": []}
    assert "status" not in wire
    assert canary.key == "podinfo.test"


def test_required_service_is_the_service_or_a_clear_error() -> None:
    canary = make_canary()
    assert canary.spec.required_service.port == 9898
    knative = Canary.model_validate(
        {
            "spec": {
                "provider": "knative",
                "targetRef": {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "name": "podinfo",
                },
            }
        }
    )
    assert knative.spec.apex_name == "podinfo"
    with pytest.raises(ValueError, match=r"spec\.service: required for Service targets"):
        _ = knative.spec.required_service
