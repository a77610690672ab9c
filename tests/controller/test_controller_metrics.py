"""The controller's own metrics beside Flagger's: what the scale benchmark reads from /metrics."""

from __future__ import annotations

from coalmine.controller.metrics import ControllerMetrics


def test_canary_cycles_are_exported_as_a_counter() -> None:
    metrics = ControllerMetrics("kubernetes")
    metrics.count_cycle()
    metrics.count_cycle()
    assert b"coalmine_canary_cycles_total 2.0" in metrics.exposition()
