"""Rules of `spec.analysis.baseline` (a fresh baseline, docs/analysis.md): what the baseline
needs of the target and the strategy. What it needs of the router (a three-way split) is the
routers' verdict (`coalmine.routers.verdict`), so `coalmine check` and the controller agree."""

from __future__ import annotations

from coalmine.api.models import Canary, CanaryAnalysis
from coalmine.api.validation.problems import Problem

PATH = "spec.analysis.baseline.enabled"
#: The baseline takes as much traffic as the canary, out of the primary's share.
MAX_SHARED_WEIGHT = 50


def baseline_problems(canary: Canary, analysis: CanaryAnalysis) -> list[Problem]:
    if not analysis.wants_baseline:
        return []
    target = canary.spec.target_ref
    problems: list[Problem] = []
    if target.kind not in ("Deployment", "Service") or target.is_knative:
        problems.append(
            Problem(
                PATH,
                f"a fresh baseline is built for Deployment and Service targets, not "
                f"{target.kind} {target.name}",
            )
        )
    if analysis.effective_iterations > 0:
        problems.append(
            Problem(
                PATH,
                "a fresh baseline takes the canary's traffic share, which needs progressive "
                "weights (stepWeight or stepWeights); iterations send all traffic to one side",
            )
        )
    elif analysis.mirror:
        problems.append(
            Problem(PATH, "a fresh baseline cannot be combined with mirror: it takes real traffic")
        )
    highest = analysis.highest_canary_weight
    if highest > MAX_SHARED_WEIGHT:
        problems.append(
            Problem(
                PATH,
                f"the canary weight reaches {highest} and the baseline takes as much, leaving "
                f"the primary {100 - 2 * highest} %: keep the canary's weights at or below "
                f"{MAX_SHARED_WEIGHT} (maxWeight, stepWeight, stepWeights)",
            )
        )
    return problems
