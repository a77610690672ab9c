"""Pure parts of the per-canary job loop (Flagger's `job.go`) for the controller to use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from coalmine.api.models import (
    DEFAULT_ANALYSIS_INTERVAL_SECONDS,
    MIN_ANALYSIS_INTERVAL_SECONDS,
    Canary,
)


def job_interval(canary: Canary, minimum: float = MIN_ANALYSIS_INTERVAL_SECONDS) -> float:
    """Seconds between two cycles: `analysis.interval`, 60s when unset/unparsable, never < minimum.

    `minimum` is `--min-analysis-interval` (Flagger hard-codes 10s; tests and the demo use 1s).
    """
    if canary.spec.analysis is None:
        return max(DEFAULT_ANALYSIS_INTERVAL_SECONDS, minimum)
    return canary.spec.analysis.interval_seconds(minimum)


def duplicate_target_message(target: str) -> str:
    return f"Bad things will happen! Found more than one canary with the same target {target}"


def canaries_per_namespace(canaries: Iterable[Canary]) -> dict[str, int]:
    """Values of `flagger_canary_total{namespace}`."""
    return dict(Counter(c.namespace for c in canaries))
