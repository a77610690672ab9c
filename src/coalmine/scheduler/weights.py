"""Traffic weight arithmetic of the canary strategy (Flagger's `nextStepWeight` and `maxWeight`),
pure and exhaustively testable."""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.api.models import CanaryAnalysis

TOTAL_WEIGHT = 100


def max_weight(analysis: CanaryAnalysis | None) -> int:
    """The canary weight at which promotion starts (last of `stepWeights`, capped at 100)."""
    if analysis is None:
        return TOTAL_WEIGHT
    return analysis.effective_max_weight


def next_step_weight(analysis: CanaryAnalysis | None, canary_weight: int) -> int:
    """How much the next step adds to `canary_weight`; 0 means the run never advances."""
    if analysis is None:
        return 0
    step = analysis.step_weight or 0
    steps = analysis.step_weights or []
    if step > 0 or not steps:
        return max(step, 0)
    remaining = TOTAL_WEIGHT - canary_weight
    if remaining == 0:
        return 1
    if canary_weight == 0:
        return min(remaining, steps[0])
    for index, weight in enumerate(steps[:-1]):
        if weight == canary_weight:
            return min(remaining, steps[index + 1] - canary_weight)
    return remaining


@dataclass(frozen=True)
class Step:
    primary_weight: int
    canary_weight: int
    mirrored: bool


def canary_step(
    analysis: CanaryAnalysis | None,
    primary_weight: int,
    canary_weight: int,
    mirrored: bool,
    *,
    mirror: bool,
) -> Step:
    """The split after one traffic increase (Flagger's runCanary below maxWeight).

    With `mirror` (analysis.mirror on a router that can mirror) the first step from 0 only starts
    the mirror; the next one shifts real traffic. There is no clamp to maxWeight: stepWeight 20
    with maxWeight 50 goes 20, 40, 60.
    """
    step = next_step_weight(analysis, canary_weight)
    if mirror and canary_weight == 0:
        if not mirrored:
            return Step(TOTAL_WEIGHT, 0, True)
        return Step(TOTAL_WEIGHT - step, step, False)
    return Step(max(primary_weight - step, 0), min(canary_weight + step, TOTAL_WEIGHT), False)


def promotion_step(
    analysis: CanaryAnalysis | None, primary_weight: int, canary_weight: int
) -> tuple[int, int]:
    """The split after one promotion step of `stepWeightPromotion` back to the primary."""
    step = (analysis.step_weight_promotion or 0) if analysis is not None else 0
    return min(primary_weight + step, TOTAL_WEIGHT), max(canary_weight - step, 0)
