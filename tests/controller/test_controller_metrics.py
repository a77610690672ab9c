"""The controller's own metrics beside Flagger's: what the scale benchmark reads from /metrics."""

from __future__ import annotations

from coalmine.controller.metrics import ControllerMetrics


def test_canary_cycles_are_exported_as_a_counter() -> None:
    metrics = ControllerMetrics("kubernetes")
    metrics.count_cycle()
    metrics.count_cycle()
    assert b"coalmine_canary_cycles_total 2.0" in metrics.exposition()


def test_duration_buckets_are_flaggers_with_gos_label_text() -> None:
    """Flagger's histogram uses Go's DefBuckets, written `le="1"`; PromQL matches that text."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = ControllerMetrics("kubernetes")
    metrics.observe_duration("podinfo", "test", 0.7)
    text = metrics.exposition().decode()
    (family,) = (
        f
        for f in text_string_to_metric_families(text)
        if f.name == "flagger_canary_duration_seconds"
    )
    bounds = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
    assert bounds == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1",
        "2.5",
        "5",
        "10",
        "+Inf",
    ]
    assert (
        'flagger_canary_duration_seconds_bucket{le="1",name="podinfo",namespace="test"} 1.0' in text
    )
    assert "_created" not in text


def test_process_metrics_are_exported_as_by_gos_default_registry() -> None:
    text = ControllerMetrics("kubernetes").exposition().decode()
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ):
        assert f"\n{name} " in text
