"""A controller killed just before or just after any write and restarted ends where it would have.

Each scenario is a whole release driven from a fresh canary. It runs once without a crash to learn
the end state and the number of writes, then once per write with the process "killed" before that
write and once with it killed right after; the restarted scheduler has only the persisted state (the
stored canary and the fakes' objects). Every run must reach the same end state with exactly the
expected number of promotions and without a traffic step that no check preceded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as strategies_

from coalmine.routers.base import Routes

from .fakes import Crash, Rig, make_canary

MAX_CYCLES = 60


@dataclass(frozen=True)
class Scenario:
    name: str
    analysis: dict[str, Any]
    final_phase: str
    promotions: int
    prepare: Callable[[Rig], None] | None = None
    kind: str = "Deployment"
    provider: str | None = None


def hooks(*kinds: str) -> list[dict[str, str]]:
    return [{"name": f"{kind}-hook", "type": kind, "url": f"http://hooks/{kind}"} for kind in kinds]


def failing_metrics(rig: Rig) -> None:
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 50.00% < 99%")


SCENARIOS = [
    Scenario(
        "canary",
        {
            "interval": "1m",
            "threshold": 3,
            "stepWeight": 25,
            "maxWeight": 50,
            "stepWeightPromotion": 50,
            "webhooks": hooks("pre-rollout", "rollout", "confirm-promotion", "post-rollout"),
            "sessionAffinity": {"cookieName": "canary-cookie"},
        },
        "Succeeded",
        1,
    ),
    Scenario(
        "mirrored-canary",
        {"interval": "1m", "threshold": 3, "stepWeight": 50, "maxWeight": 50, "mirror": True},
        "Succeeded",
        1,
    ),
    Scenario(
        "blue-green",
        {"interval": "1m", "threshold": 3, "iterations": 2, "mirror": True},
        "Succeeded",
        1,
    ),
    Scenario(
        "ab-testing",
        {
            "interval": "1m",
            "threshold": 3,
            "iterations": 2,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        },
        "Succeeded",
        1,
    ),
    Scenario(
        "kubernetes",
        {"interval": "1m", "threshold": 3, "iterations": 2},
        "Succeeded",
        1,
        provider="kubernetes",
    ),
    Scenario("skip-analysis", {"interval": "1m", "threshold": 3, "stepWeight": 50}, "Succeeded", 1),
    Scenario(
        "service-canary",
        {"interval": "1m", "threshold": 3, "stepWeights": [10, 60]},
        "Succeeded",
        1,
        kind="Service",
    ),
    Scenario(
        "rollback",
        {"interval": "1m", "threshold": 2, "stepWeight": 25, "maxWeight": 50},
        "Failed",
        0,
        prepare=failing_metrics,
    ),
]


def build(scenario: Scenario) -> Rig:
    spec: dict[str, Any] = {}
    if scenario.name == "skip-analysis":
        spec["skipAnalysis"] = True
    canary = make_canary(
        scenario.kind,
        scenario.analysis,
        provider=scenario.provider,
        autoscaler=scenario.kind != "Service",
        **spec,
    )
    return Rig(canary)


async def release(rig: Rig, scenario: Scenario) -> int:
    """Drive a release to its end, restarting after every crash; the number of crashes."""
    crashes = 0
    changed = False
    for _ in range(MAX_CYCLES):
        if not changed and rig.phase == "Initialized":
            rig.target.set_image("podinfo:2.0.0")
            rig.target.configs = {"configmap/podinfo-config-env": "bbbb"}
            if scenario.prepare is not None:
                scenario.prepare(rig)
            changed = True
        try:
            await rig.cycle()
        except Crash:
            crashes += 1
            rig.restart()
            continue
        if changed and rig.phase == scenario.final_phase:
            return crashes
    raise AssertionError(f"{scenario.name}: stuck in {rig.phase} after {MAX_CYCLES} cycles")


def end_state(rig: Rig) -> dict[str, Any]:
    status = rig.status
    return {
        "phase": status.phase,
        "routes": rig.router.routes,
        "canary_weight": status.canary_weight,
        "failed_checks": status.failed_checks,
        "last_applied": status.last_applied_spec,
        "last_promoted": status.last_promoted_spec,
        "tracked": status.tracked_configs,
        "primary": rig.target.primary_spec,
        "primary_configs": rig.target.primary_configs,
        "scaled_to_zero": rig.target.scaled_to_zero,
        "promotions": rig.target.promotions,
        "condition": [(c.reason, c.status) for c in status.conditions or []],
    }


def traffic_steps(history: list[Routes]) -> list[Routes]:
    """Distinct consecutive splits (a restart may write the same split twice)."""
    steps: list[Routes] = []
    for routes in history:
        if not steps or steps[-1] != routes:
            steps.append(routes)
    return steps


def assert_no_unchecked_step(rig: Rig) -> None:
    """Every increase of canary traffic (or start of a mirror) follows a passed check.

    The first step of a run follows the pre-rollout hooks instead (none configured: nothing).
    """
    analysis = rig.canary.spec.analysis
    has_pre_rollout = any(
        hook.type == "pre-rollout" for hook in (analysis.webhooks if analysis else None) or []
    )
    since_last_step: list[str] = []
    previous = Routes(100, 0, False)
    for entry in rig.world.log:
        if not entry.startswith("routes "):
            since_last_step.append(entry)
            continue
        weights, mirrored = entry.removeprefix("routes ").split(" mirrored=")
        primary, canary = (int(part) for part in weights.split("/"))
        routes = Routes(primary, canary, mirrored == "True")
        if routes.canary_weight > previous.canary_weight or (
            routes.mirrored and not previous.mirrored
        ):
            first_step = previous == Routes(100, 0, False)
            if first_step:
                passed = "hook pre-rollout" in since_last_step or not has_pre_rollout
            else:
                passed = "check" in since_last_step
            assert passed, f"unchecked step to {routes} after {since_last_step}"
        previous = routes
        since_last_step = []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_a_crash_before_or_after_any_write_changes_nothing(scenario: Scenario) -> None:
    baseline = build(scenario)
    assert await release(baseline, scenario) == 0
    expected = end_state(baseline)
    expected_steps = traffic_steps(baseline.router.history)
    assert expected["promotions"] == scenario.promotions
    assert_no_unchecked_step(baseline)
    total_writes = baseline.world.writes
    assert total_writes > 10

    for crash_at in range(1, total_writes + 1):
        for crash_after in (False, True):
            rig = build(scenario)
            rig.world.crash_at = crash_at
            rig.world.crash_after = crash_after
            crashes = await release(rig, scenario)
            where = f"crash {'after' if crash_after else 'before'} write {crash_at}"
            assert crashes == 1, where
            assert end_state(rig) == expected, where
            assert traffic_steps(rig.router.history) == expected_steps, where
            assert_no_unchecked_step(rig)


@settings(max_examples=60, deadline=None)
@given(
    crash_points=strategies_.lists(
        strategies_.integers(min_value=1, max_value=40), min_size=1, max_size=4
    ),
    after=strategies_.booleans(),
)
async def test_repeated_crashes_still_promote_exactly_once(
    crash_points: list[int], after: bool
) -> None:
    scenario = SCENARIOS[0]
    rig = build(scenario)
    pending = sorted(set(crash_points))
    rig.world.crash_after = after
    crashes = 0
    changed = False
    for _ in range(MAX_CYCLES * 2):
        if rig.world.crash_at is None and pending:
            rig.world.crash_at = rig.world.writes + pending.pop(0)
        if not changed and rig.phase == "Initialized":
            rig.target.set_image("podinfo:2.0.0")
            changed = True
        try:
            await rig.cycle()
        except Crash:
            crashes += 1
            rig.restart()
            continue
        if changed and rig.phase == "Succeeded":
            break
    assert rig.phase == "Succeeded"
    assert rig.target.promotions == 1
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.router.routes == Routes(100, 0, False)
    assert_no_unchecked_step(rig)
