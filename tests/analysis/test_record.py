"""Measurements on record where people and tools read them: the status field, the gauge, the
`coalmine status` lines and the webhook payload's `metrics` block."""

from __future__ import annotations

import io

from coalmine.analysis import AnalysisOutcome, MetricResult
from coalmine.analysis.judge import ScoredMetric, group_score
from coalmine.analysis.record import with_measurements
from coalmine.api.models import CanaryStatus
from coalmine.cli.status import console_for, print_measurements
from coalmine.controller.metrics import ControllerMetrics
from coalmine.hooks.payloads import webhook_payload

from .conftest import make_canary

OUTCOME = AnalysisOutcome(
    (
        MetricResult("error-rate", 0.7, True, threshold="<= 1"),
        MetricResult(
            "latency",
            110.0,
            True,
            "Judge x",
            "warning",
            threshold="judge",
            verdict="High",
            baseline=100.0,
        ),
        MetricResult("judge-score", 50.0, True, threshold="pass 95, marginal 25", verdict="Pass"),
    ),
    score=50.0,
)


def recorded_status() -> CanaryStatus:
    return with_measurements(
        CanaryStatus(phase="Progressing"), OUTCOME, time="2026-01-01T00:00:00Z"
    )


def test_status_keeps_value_threshold_verdict_and_baseline() -> None:
    status = recorded_status()
    wire = status.to_wire()
    latency = wire["metrics"][1]
    assert latency["name"] == "latency"
    assert latency["measurements"] == [
        {
            "time": "2026-01-01T00:00:00Z",
            "verdict": "High",
            "value": 110.0,
            "baseline": 100.0,
            "threshold": "judge",
            "message": "Judge x",
        }
    ]
    assert wire["judgeScore"] == 50.0


def test_webhook_payload_carries_a_metrics_block_only_once_something_was_measured() -> None:
    canary = make_canary("ns", [{"name": "error-rate", "query": "q"}])
    assert "metrics" not in webhook_payload(canary, "Progressing")
    measured = canary.model_copy(update={"status": recorded_status()})
    payload = webhook_payload(measured, "Progressing")
    assert list(payload)[:4] == ["name", "namespace", "phase", "checksum"]
    assert payload["metrics"][0] == {
        "name": "error-rate",
        "time": "2026-01-01T00:00:00Z",
        "verdict": "Pass",
        "value": 0.7,
        "threshold": "<= 1",
    }


def test_status_command_prints_a_line_per_metric() -> None:
    out = io.StringIO()
    print_measurements(recorded_status().to_wire(), console_for(out))
    text = out.getvalue()
    assert "error-rate: Pass value 0.7 (<= 1)" in text
    assert "latency: High value 110 baseline 100 (judge)" in text
    assert "judge score: 50.0" in text


def test_measured_values_are_exported_as_a_gauge() -> None:
    metrics = ControllerMetrics("istio")
    metrics.set_metric_value("podinfo", "test", "latency", 0.25)
    text = metrics.exposition().decode()
    assert (
        'coalmine_canary_metric_value{metric="latency",name="podinfo",namespace="test"} 0.25'
        in text
    )


def test_group_score_weighs_groups_and_forces_zero_on_mostly_missing_data() -> None:
    metrics = [
        ScoredMetric("latency", "Pass", False),
        ScoredMetric("latency", "High", False),
        ScoredMetric("errors", "Pass", False),
    ]
    assert group_score(metrics) == 75.0  # (50 + 100) / 2
    assert group_score(metrics, {"latency": 80}) == 60.0  # 50*0.8 + 100*0.2
    nodata = [ScoredMetric("a", "NoData", False), ScoredMetric("b", "Pass", False)]
    assert group_score(nodata) == 0.0
