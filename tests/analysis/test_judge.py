"""The judge's pure parts on small, hand-checkable numbers: pre-processing, direction, effect-size
gates, classification edge cases and the bounded cost of the Hodges-Lehmann interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from coalmine.analysis.judge import JudgeConfig, hodges_lehmann, judge, preprocess
from coalmine.api.models import MetricJudge

BASE = [float(v) for v in np.random.default_rng(11).normal(100, 5, 60)]
SLOWER = [v * 1.1 for v in np.random.default_rng(12).normal(100, 5, 60)]


def test_nan_samples_are_removed_or_replaced_by_zero() -> None:
    values = [1.0, math.nan, 3.0, math.inf]
    assert list(preprocess(values, JudgeConfig())) == [1.0, 3.0]
    assert list(preprocess(values, JudgeConfig(nan_strategy="replace"))) == [1.0, 0.0, 3.0]


def test_outliers_outside_the_iqr_fence_are_removed_only_when_asked() -> None:
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 1000.0]
    assert 1000.0 in preprocess(values, JudgeConfig())
    kept = preprocess(values, JudgeConfig(outliers="remove", outlier_factor=3.0))
    assert list(kept) == [10.0, 11.0, 12.0, 13.0, 14.0]


def test_direction_limits_which_change_fails() -> None:
    assert judge(SLOWER, BASE, JudgeConfig()).classification == "High"
    assert judge(SLOWER, BASE, JudgeConfig(direction="decrease")).classification == "Pass"
    assert judge(BASE, SLOWER, JudgeConfig(direction="increase")).classification == "Pass"
    assert judge(BASE, SLOWER, JudgeConfig()).classification == "Low"


def test_tolerance_band_lets_a_significant_but_small_shift_pass() -> None:
    assert judge(SLOWER, BASE, JudgeConfig(tolerance=0.2)).classification == "Pass"


def test_effect_size_gates_practical_significance() -> None:
    assert judge(SLOWER, BASE, JudgeConfig(allowed_increase=1.2)).classification == "Pass"
    cles = judge(SLOWER, BASE, JudgeConfig(effect_size="cles", allowed_increase=0.6))
    u = stats.mannwhitneyu(SLOWER, BASE).statistic
    assert cles.effect == pytest.approx(u / (60 * 60))
    assert cles.classification == "High"


def test_identical_constants_pass_and_empty_sides_have_no_data() -> None:
    assert judge([5.0] * 10, [5.0] * 10, JudgeConfig()).classification == "Pass"
    assert judge([], BASE, JudgeConfig()).classification == "NoData"
    assert judge([math.nan] * 5, BASE, JudgeConfig()).classification == "NoData"


def test_hodges_lehmann_interval_contains_the_estimate_and_the_true_shift() -> None:
    a, b = np.asarray(SLOWER), np.asarray(BASE)
    estimate, lower, upper = hodges_lehmann(a, b, 0.98)
    assert lower <= estimate <= upper
    assert 5.0 < estimate < 15.0  # the true shift is ~10 (10 % of 100)


def test_large_samples_are_thinned_so_the_cost_stays_bounded() -> None:
    big = np.random.default_rng(3).normal(100, 5, 20_000)
    estimate, lower, upper = hodges_lehmann(big + 1, big, 0.98)
    assert estimate == pytest.approx(1.0, abs=0.3)
    assert lower < estimate < upper


def test_config_defaults_follow_the_effect_size_kind() -> None:
    assert JudgeConfig.of(MetricJudge(), "m").allowed_increase == 1.0
    config = JudgeConfig.of(MetricJudge(effect_size="cles"), "m")
    assert (config.allowed_increase, config.allowed_decrease, config.group) == (0.5, 0.5, "m")


def test_queries_see_the_workload_and_role_of_each_side() -> None:
    from coalmine.analysis.judging import RoleTemplateModel
    from coalmine.analysis.templates import render_query

    from .conftest import make_canary

    canary = make_canary("ns")
    rendered = {
        role: render_query(
            "{{ workload }}/{{ role }}/{{ target }}.{{ namespace }}",
            RoleTemplateModel.for_role(canary, "1m", None, role),
        )
        for role in ("canary", "primary", "baseline")
    }
    assert rendered == {
        "canary": "podinfo/canary/podinfo.ns",
        "primary": "podinfo-primary/primary/podinfo.ns",
        "baseline": "podinfo-baseline/baseline/podinfo.ns",
    }
