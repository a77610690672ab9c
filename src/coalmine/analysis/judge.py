"""The native statistical judge: canary samples against control samples (Kayenta's method).

Pure computation on numbers (numpy, scipy; no I/O). Per metric: NaN strategy, optional IQR outlier
removal, Mann-Whitney U (scipy) at the confidence level, the Hodges-Lehmann shift with its
distribution-free confidence interval, a tolerance band and an effect-size gate, giving Pass /
High / Low / NoData. Per run: Kayenta's weighted group score. docs/analysis.md has the methodology
and docs/decisions.md the choices where we differ from Kayenta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from coalmine.api.models import MetricJudge

Samples = NDArray[np.float64]

DEFAULT_CONFIDENCE = 0.98
DEFAULT_TOLERANCE = 0.01
DEFAULT_OUTLIER_FACTOR = 3.0
# Pairwise differences for the Hodges-Lehmann estimate are n*m; above this we thin both samples
# evenly (the judge's cost must stay bounded per cycle; see docs/performance.md).
MAX_PAIRS = 250_000


@dataclass(frozen=True)
class JudgeConfig:
    """A metric's `judge:` with the defaults filled in."""

    confidence: float = DEFAULT_CONFIDENCE
    tolerance: float = DEFAULT_TOLERANCE
    direction: str = "either"
    effect_size: str = "meanRatio"
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: str = "remove"
    outliers: str = "keep"
    outlier_factor: float = DEFAULT_OUTLIER_FACTOR
    group: str = ""

    @classmethod
    def of(cls, judge: MetricJudge, metric_name: str) -> JudgeConfig:
        neutral = 0.5 if judge.effect_size == "cles" else 1.0

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(
            confidence=pick(judge.confidence, DEFAULT_CONFIDENCE),
            tolerance=pick(judge.tolerance, DEFAULT_TOLERANCE),
            direction=judge.direction or "either",
            effect_size=judge.effect_size or "meanRatio",
            allowed_increase=pick(judge.allowed_increase, neutral),
            allowed_decrease=pick(judge.allowed_decrease, neutral),
            critical=bool(judge.critical),
            must_have_data=bool(judge.must_have_data),
            nan_strategy=judge.nan_strategy or "remove",
            outliers=judge.outliers or "keep",
            outlier_factor=pick(judge.outlier_factor, DEFAULT_OUTLIER_FACTOR),
            group=judge.group or metric_name,
        )


@dataclass(frozen=True)
class Judgement:
    """One metric's comparison. `shift` is canary minus control (Hodges-Lehmann) within
    [`lower`, `upper`] at the confidence level; `effect` is the mean ratio or the CLES."""

    classification: str  # Pass, High, Low, NoData
    canary_n: int
    control_n: int
    canary_median: float | None = None
    control_median: float | None = None
    p_value: float | None = None
    shift: float | None = None
    lower: float | None = None
    upper: float | None = None
    band: float | None = None
    effect: float | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.classification == "NoData":
            return f"no data (canary n={self.canary_n}, control n={self.control_n})"
        if self.p_value is None:
            return self.reason
        return (
            f"shift {self.shift:.4g} [{self.lower:.4g}, {self.upper:.4g}] band ±{self.band:.4g} "
            f"p={self.p_value:.3g} effect {self.effect:.4g} "
            f"n={self.canary_n}/{self.control_n}"
        )


def preprocess(values: Sequence[float], config: JudgeConfig) -> Samples:
    """NaN strategy (remove, or replace by 0 for counters that emit nothing when zero), then the
    IQR fence Q1 - k*IQR .. Q3 + k*IQR when outliers are removed; infinities always go."""
    data = np.asarray(values, dtype=np.float64)
    if config.nan_strategy == "replace":
        data = np.where(np.isnan(data), 0.0, data)
    data = data[np.isfinite(data)]
    if config.outliers == "remove" and data.size >= 4:
        q1, q3 = np.percentile(data, [25, 75])
        fence = config.outlier_factor * (q3 - q1)
        data = data[(data >= q1 - fence) & (data <= q3 + fence)]
    return data


def _thin(data: Samples, limit: int) -> Samples:
    if data.size <= limit:
        return data
    thinned: Samples = np.sort(data)[np.linspace(0, data.size - 1, limit).astype(int)]
    return thinned


def hodges_lehmann(
    canary: Samples, control: Samples, confidence: float
) -> tuple[float, float, float]:
    """(estimate, lower, upper) of the shift canary - control: the median of the pairwise
    differences and the distribution-free interval from the normal approximation of U's
    distribution (the interval R's `wilcox.test(conf.int=TRUE)` gives for large samples)."""
    per_side = max(2, int(math.sqrt(MAX_PAIRS)))
    a, b = _thin(canary, per_side), _thin(control, per_side)
    differences = np.sort(np.subtract.outer(a, b).ravel())
    n, m = a.size, b.size
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    k = math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12))
    k = min(max(k, 0), differences.size - 1)
    return (
        float(np.median(differences)),
        float(differences[k]),
        float(differences[differences.size - 1 - k]),
    )


def _effect(canary: Samples, control: Samples, u_statistic: float, how: str) -> float:
    if how == "cles":
        return u_statistic / (canary.size * control.size)
    control_mean = float(np.mean(control))
    canary_mean = float(np.mean(canary))
    if control_mean == 0:
        return 1.0 if canary_mean == 0 else math.copysign(math.inf, canary_mean)
    return canary_mean / control_mean


def judge(canary: Sequence[float], control: Sequence[float], config: JudgeConfig) -> Judgement:
    """Classify the canary against the control (see the module docstring)."""
    a, b = preprocess(canary, config), preprocess(control, config)
    if a.size == 0 or b.size == 0:
        return Judgement("NoData", int(a.size), int(b.size))
    canary_median, control_median = float(np.median(a)), float(np.median(b))
    if np.ptp(np.concatenate([a, b])) == 0:
        # One distinct value on both sides: identical, nothing to rank (Kayenta: Pass).
        return Judgement(
            "Pass",
            int(a.size),
            int(b.size),
            canary_median,
            control_median,
            reason="identical values",
        )
    test = stats.mannwhitneyu(a, b, alternative="two-sided")
    p_value = float(test.pvalue)
    shift, lower, upper = hodges_lehmann(a, b, config.confidence)
    band = config.tolerance * abs(control_median)
    effect = _effect(a, b, float(test.statistic), config.effect_size)
    significant = p_value < 1 - config.confidence
    high = (
        config.direction in ("increase", "either")
        and significant
        and lower > band
        and effect >= config.allowed_increase
    )
    low = (
        config.direction in ("decrease", "either")
        and significant
        and upper < -band
        and effect <= config.allowed_decrease
    )
    classification = "High" if high else "Low" if low else "Pass"
    return Judgement(
        classification,
        int(a.size),
        int(b.size),
        canary_median,
        control_median,
        p_value=p_value,
        shift=shift,
        lower=lower,
        upper=upper,
        band=band,
        effect=effect,
    )


@dataclass(frozen=True)
class ScoredMetric:
    group: str
    classification: str
    must_have_data: bool


def group_score(
    metrics: Sequence[ScoredMetric], weights: Mapping[str, float] | None = None
) -> float:
    """Kayenta's WeightedSumScorer: per group passes / (passes + highs + lows + nodata-fails)
    x 100 (a group with nothing scored counts 100); groups weighted by `weights` (percent), the
    unlisted ones sharing the remainder equally; half or more NoData forces 0."""
    if not metrics:
        return 100.0
    nodata = sum(1 for m in metrics if m.classification == "NoData")
    if nodata * 2 >= len(metrics):
        return 0.0
    groups: dict[str, list[ScoredMetric]] = {}
    for metric in metrics:
        groups.setdefault(metric.group, []).append(metric)
    scores: dict[str, float] = {}
    for name, members in groups.items():
        passes = sum(1 for m in members if m.classification == "Pass")
        counted = passes + sum(
            1
            for m in members
            if m.classification in ("High", "Low")
            or (m.classification == "NoData" and m.must_have_data)
        )
        scores[name] = 100.0 if counted == 0 else passes / counted * 100
    given = {g: w for g, w in (weights or {}).items() if g in scores}
    rest = [g for g in scores if g not in given]
    share = max(0.0, 100.0 - sum(given.values())) / len(rest) if rest else 0.0
    total_weight = sum(given.values()) + share * len(rest)
    if total_weight <= 0:
        return 0.0
    total = sum(scores[g] * given.get(g, share) for g in scores) / total_weight
    return round(total, 2)
