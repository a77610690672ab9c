"""Argo-style metric semantics against a real Prometheus holding known samples.

Conditions, `aggregate` over range results, the no-data policy, dry runs and the consecutive-error
limit, each reinterpreting what the backend really answered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from coalmine.analysis import AnalysisOutcome
from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.analysis.semantics import ConditionError, evaluate_condition
from coalmine.api.models import CanaryStatus, MetricRecord

from .conftest import FakeSources, _free_port, make_canary
from .judge_data import END, cases, openmetrics, start_prometheus

SAME = 'judge_sample{case="shift-20pct",role="canary"}'
MISSING = 'judge_sample{case="nothing-here"}'
BROKEN = "sum(("


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_prometheus(tmp_path_factory.mktemp("semantics"), openmetrics(), _free_port())


async def analyse(
    url: str, metric: dict[str, Any], status: CanaryStatus | None = None
) -> AnalysisOutcome:
    canary = make_canary("semantics", [{"interval": "10m", **metric}])
    if status is not None:
        canary = canary.model_copy(update={"status": status})
    async with aiohttp.ClientSession() as session:
        analyzer = MetricAnalyzer(
            session, FakeSources(), AnalysisSettings(metrics_server=url), clock=lambda: END
        )
        return await analyzer.analyse(canary)


def canary_samples() -> list[float]:
    """The samples a 10m range query sees at its default step (15 s): every third one."""
    return cases()["shift-20pct"][0][::3]


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("avg", lambda v: float(np.mean(v))),
        ("max", max),
        ("min", min),
        ("last", lambda v: v[-1]),
        ("p95", lambda v: float(np.percentile(v, 95))),
    ],
)
async def test_aggregate_reduces_the_range_result(prom: str, how: str, expected: Any) -> None:
    outcome = await analyse(
        prom, {"name": "lat", "query": SAME, "aggregate": how, "thresholdRange": {"max": 1000}}
    )
    result = outcome.results[0]
    assert result.passed
    assert result.value == pytest.approx(expected(canary_samples()), rel=1e-9)
    assert result.threshold == "<= 1000"


async def test_success_condition_passes_and_failure_condition_fails(prom: str) -> None:
    mean = float(np.mean(canary_samples()))
    ok = await analyse(
        prom,
        {
            "name": "lat",
            "query": SAME,
            "aggregate": "avg",
            "successCondition": f"result < {mean + 1}",
        },
    )
    assert ok.ok
    assert ok.results[0].effective_verdict == "Pass"
    bad = await analyse(
        prom,
        {
            "name": "lat",
            "query": SAME,
            "aggregate": "avg",
            "failureCondition": f"result > {mean - 1}",
        },
    )
    assert not bad.ok
    assert bad.results[0].effective_verdict == "Fail"
    assert "fails the condition (failure: result >" in bad.results[0].message


async def test_neither_condition_holding_is_inconclusive(prom: str) -> None:
    mean = float(np.mean(canary_samples()))
    outcome = await analyse(
        prom,
        {
            "name": "lat",
            "query": SAME,
            "aggregate": "avg",
            "successCondition": f"result < {mean - 5}",
            "failureCondition": f"result > {mean + 5}",
        },
    )
    assert outcome.ok  # not a failed check ...
    assert outcome.inconclusive  # ... but the run waits for a decision


async def test_no_data_policy_decides_what_an_empty_answer_means(prom: str) -> None:
    default = await analyse(prom, {"name": "q", "query": MISSING, "thresholdRange": {"max": 1}})
    assert not default.ok
    assert default.results[0].effective_verdict == "NoData"
    passing = await analyse(prom, {"name": "q", "query": MISSING, "noData": "pass"})
    assert passing.ok
    waiting = await analyse(prom, {"name": "q", "query": MISSING, "noData": "inconclusive"})
    assert waiting.ok
    assert waiting.inconclusive


async def test_dry_run_metric_is_recorded_as_failed_but_never_fails_the_run(prom: str) -> None:
    outcome = await analyse(
        prom,
        {
            "name": "lat",
            "query": SAME,
            "aggregate": "max",
            "thresholdRange": {"max": 1},
            "dryRun": True,
        },
    )
    assert outcome.ok
    result = outcome.results[0]
    assert result.dry_run
    assert result.effective_verdict == "Fail"


async def test_provider_errors_are_tolerated_up_to_the_consecutive_error_limit(prom: str) -> None:
    metric = {"name": "q", "query": BROKEN, "consecutiveErrorLimit": 2}
    first = await analyse(prom, metric)
    assert first.ok
    assert first.results[0].effective_verdict == "Error"
    two_before = CanaryStatus(metrics=[MetricRecord(name="q", consecutive_errors=2)])
    third = await analyse(prom, metric, two_before)
    assert not third.ok
    assert third.results[0].effective_verdict == "Error"
    # Without the field a broken query fails the check at once, as in Flagger.
    plain = await analyse(prom, {"name": "q", "query": BROKEN})
    assert not plain.ok


def test_conditions_are_evaluated_safely() -> None:
    assert evaluate_condition("isNaN(result) or result < 1", math.nan, None)
    assert evaluate_condition("default(result, 0) == 0", None, None)
    assert evaluate_condition("result <= baseline * 1.1", 105.0, 100.0)
    for hostile in ("__import__('os').system('true')", "result.__class__", "open('x')"):
        with pytest.raises(ConditionError):
            evaluate_condition(hostile, 1.0, None)
    with pytest.raises(ConditionError, match="not true or false"):
        evaluate_condition("result + 1", 1.0, None)
