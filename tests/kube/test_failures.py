"""Repeats of one failure are folded into a periodic summary; a new failure is logged at once."""

from __future__ import annotations

import logging

import pytest

from coalmine.kube.api import KubeApiError
from coalmine.kube.failures import RepeatLimiter, RequestFailed, describe


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_are_summarised_every_period_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = RepeatLimiter(logging.getLogger("test.repeats"), summary_seconds=30, clock=clock)
    error = RequestFailed("patch", "canaries/status a.default", KubeApiError(500, "x", "down"))
    with caplog.at_level(logging.INFO, logger="test.repeats"):
        for second in range(61):
            clock.now = float(second)
            limiter.failed("cycle of canary a.default failed", error)
        limiter.failed("cycle of canary a.default failed", KubeApiError(403, "x", "denied"))
        limiter.clear("cycle of canary a.default")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "cycle of canary a.default failed: patch canaries/status a.default: KubeApiError: down",
        "cycle of canary a.default failed: patch canaries/status a.default: KubeApiError: down"
        " (repeated 30 times in 30s)",
        "cycle of canary a.default failed: patch canaries/status a.default: KubeApiError: down"
        " (repeated 30 times in 30s)",
        "cycle of canary a.default failed: KubeApiError: denied",
        "cycle of canary a.default works again (0 more failures were not logged)",
    ]
    assert all(record.exc_info is None for record in caplog.records)


def test_a_multi_line_message_is_described_on_one_line() -> None:
    assert describe(ValueError("a\n  b")) == "ValueError: a b"
