"""Release verbs (`coalmine promote|abort|retry|pause|resume`) as the scheduler sees them.

The CLI writes annotations on the Canary; each cycle reads them from the canary it is given, acts
once per action id, and acknowledges through the `ActionLog` port after the effects and status
write. These tests drive the scheduler cycle by cycle with the fakes.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from coalmine.analysis import AnalysisOutcome, MetricResult
from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.scheduler import Scheduler, verbs
from coalmine.scheduler.verbs import Verb
from coalmine.targets.base import TargetNotReady

from .fakes import Crash, FakeStatusStore, Rig, World, make_canary


class FakeActionLog:
    """The controller's annotation patch: merged into the stored canary's metadata."""

    def __init__(self, world: World, store: FakeStatusStore) -> None:
        self.world = world
        self.store = store

    async def handled(self, canary: Canary, annotations: dict[str, str]) -> Canary:
        def persist() -> None:
            def merge(stored: Canary) -> None:
                stored.metadata.annotations = {**(stored.metadata.annotations or {}), **annotations}

            self.store.update_spec(merge)

        self.world.write(f"handled {annotations[naming.ACTION_RESULT_ANNOTATION]}", persist)
        merged = {**(canary.metadata.annotations or {}), **annotations}
        return canary.model_copy(
            update={"metadata": canary.metadata.model_copy(update={"annotations": merged})}
        )


class VerbRig(Rig):
    """A Rig whose scheduler acknowledges verbs into the stored canary."""

    def restart(self) -> Scheduler:
        scheduler = super().restart()
        scheduler.deps = dataclasses.replace(
            scheduler.deps, actions=FakeActionLog(self.world, self.store)
        )
        return scheduler

    def request(self, verb: Verb) -> str:
        """What `coalmine VERB` writes (a merge patch of annotations)."""
        action_id = str(uuid.uuid4())

        def annotate(canary: Canary) -> None:
            annotations = dict(canary.metadata.annotations or {})
            for key, value in verbs.request_annotations(verb, action_id).items():
                if value is None:
                    annotations.pop(key, None)
                else:
                    annotations[key] = value
            canary.metadata.annotations = annotations

        self.store.update_spec(annotate)
        return action_id

    def result(self, action_id: str) -> tuple[str, str] | None:
        return verbs.result_of(self.canary.metadata.annotations or {}, action_id)

    async def run_until(self, *phases: str, limit: int = 30) -> None:
        for _ in range(limit):
            if self.phase in phases:
                return
            await self.cycle()
        raise AssertionError(f"never reached {phases}: {self.phase}")


PASSING = AnalysisOutcome((MetricResult("request-success-rate", 100.0, True),))


def with_hooks(*hooks: tuple[str, str], **analysis: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"interval": "1m", "threshold": 10, "stepWeight": 10, "maxWeight": 50}
    body.update(analysis)
    body["webhooks"] = [
        {"name": name, "type": hook_type, "url": f"http://hooks/{name}"}
        for name, hook_type in hooks
    ]
    return body


async def progressing(rig: VerbRig, steps: int = 2) -> None:
    await rig.new_revision()
    await rig.cycles(steps)
    assert rig.phase == "Progressing"


# --- promote ------------------------------------------------------------------------------------


async def test_promote_while_progressing_skips_the_rest_of_the_analysis() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    assert rig.weights == (90, 10)
    checks = rig.analyzer.calls
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.phase == "Promoting"
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.result(action_id) == ("done", "promoting")
    assert "Promotion requested by coalmine promote: skipping the rest of the analysis" in (
        rig.recorder.messages
    )
    await rig.run_until("Succeeded")
    assert rig.analyzer.calls == checks
    assert rig.target.promotions == 1
    assert rig.weights == (100, 0)
    assert rig.target.scaled_to_zero


async def test_promote_while_waiting_for_promotion_skips_the_confirm_promotion_gate() -> None:
    rig = VerbRig(make_canary(analysis=with_hooks(("approve", "confirm-promotion"), stepWeight=50)))
    rig.webhooks.failing["approve"] = "not yet"
    await rig.new_revision()
    await rig.run_until("WaitingPromotion")
    gate_calls = len(rig.webhooks.calls_of("confirm-promotion"))
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.phase == "Promoting"
    assert len(rig.webhooks.calls_of("confirm-promotion")) == gate_calls
    assert rig.result(action_id) == ("done", "promoting")
    await rig.run_until("Succeeded")


async def test_promote_waits_for_a_canary_that_is_not_ready_yet() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.target.canary_error = TargetNotReady("podinfo.default not ready", retriable=True)
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.phase == "Progressing"
    assert rig.result(action_id) is None
    rig.target.canary_error = None
    await rig.cycle()
    assert rig.phase == "Promoting"
    assert rig.result(action_id) == ("done", "promoting")


@pytest.mark.parametrize("phase", ["Initialized", "Succeeded"])
async def test_promote_without_a_release_is_refused_and_changes_nothing(phase: str) -> None:
    rig = VerbRig(make_canary())
    await rig.initialise()
    if phase == "Succeeded":
        await rig.new_revision()
        await rig.run_until("Succeeded")
    written = rig.world.log[:]
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.phase == phase
    outcome = rig.result(action_id)
    assert outcome is not None
    assert outcome[0] == "refused"
    assert "nothing to promote" in outcome[1]
    assert rig.recorder.events[-1][0] == "Warning"
    assert rig.world.log[len(written) :] == [f"handled refused: {outcome[1]}"]


async def test_promote_seen_while_already_promoting_is_acknowledged_as_done() -> None:
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 5, "stepWeight": 50}))
    await rig.new_revision()
    await rig.run_until("Promoting")
    action_id = rig.request("promote")
    await rig.cycle()
    assert rig.result(action_id) == ("done", "already Promoting")
    await rig.run_until("Succeeded")
    assert rig.target.promotions == 1


# --- abort --------------------------------------------------------------------------------------


async def test_abort_while_progressing_rolls_back_and_leaves_the_primary_untouched() -> None:
    rig = VerbRig(make_canary(autoscaler=True))
    await progressing(rig, steps=3)
    assert rig.weights == (80, 20)
    action_id = rig.request("abort")
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)
    assert rig.target.primary_spec == {"image": "podinfo:1.0.0"}
    assert rig.target.promotions == 0
    assert rig.target.scaled_to_zero
    assert rig.scaler.paused
    assert rig.result(action_id) == ("done", "rolled back")
    assert "Rolling back podinfo.default: abort requested by coalmine abort" in (
        rig.recorder.messages
    )
    assert ("Rolling back: abort requested by coalmine abort", "warn", False) in rig.alerts.sent
    assert rig.metrics.failures == {("podinfo", "default", "canary", "completed"): 1}
    await rig.cycles(3)
    assert rig.phase == "Failed"
    assert rig.metrics.failures == {("podinfo", "default", "canary", "completed"): 1}


async def test_abort_while_waiting_for_rollout_approval_fails_the_revision() -> None:
    rig = VerbRig(make_canary(analysis=with_hooks(("gate", "confirm-rollout"))))
    rig.webhooks.failing["gate"] = "closed"
    await rig.new_revision()
    await rig.cycle()
    assert rig.phase == "Waiting"
    action_id = rig.request("abort")
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.result(action_id) == ("done", "rolled back")
    assert rig.target.primary_spec == {"image": "podinfo:1.0.0"}


async def test_abort_while_waiting_for_promotion_rolls_back() -> None:
    rig = VerbRig(make_canary(analysis=with_hooks(("approve", "confirm-promotion"), stepWeight=50)))
    rig.webhooks.failing["approve"] = "not yet"
    await rig.new_revision()
    await rig.run_until("WaitingPromotion")
    action_id = rig.request("abort")
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (100, 0)
    assert rig.result(action_id) == ("done", "rolled back")


async def test_abort_while_promoting_is_refused_and_the_promotion_finishes() -> None:
    rig = VerbRig(
        make_canary(
            analysis={"interval": "1m", "threshold": 5, "stepWeight": 50, "stepWeightPromotion": 10}
        )
    )
    await rig.new_revision()
    await rig.run_until("Promoting")
    action_id = rig.request("abort")
    await rig.cycle()
    outcome = rig.result(action_id)
    assert outcome is not None
    assert outcome[0] == "refused"
    assert "the primary already runs the new revision" in outcome[1]
    await rig.run_until("Succeeded")
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}


# --- retry --------------------------------------------------------------------------------------


async def failed(rig: VerbRig) -> None:
    await rig.new_revision()
    await rig.cycles(2)
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 50.00% < 99%")
    await rig.run_until("Failed")
    assert rig.target.primary_spec == {"image": "podinfo:1.0.0"}


async def test_retry_after_a_failure_runs_the_same_revision_again_and_can_promote_it() -> None:
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 2, "stepWeight": 25}))
    await failed(rig)
    await rig.cycles(2)
    assert rig.phase == "Failed"  # no new run without a change or a retry
    rig.analyzer.default = PASSING
    action_id = rig.request("retry")
    await rig.cycle()
    assert rig.phase == "Progressing"
    assert not rig.target.scaled_to_zero
    assert rig.status.failed_checks == 0
    assert rig.result(action_id) == ("done", "new run started")
    assert "Retry requested by coalmine retry: starting a new run of podinfo.default" in (
        rig.recorder.messages
    )
    await rig.run_until("Succeeded")
    assert rig.target.primary_spec == {"image": "podinfo:2.0.0"}
    assert rig.target.promotions == 1


async def test_a_retried_run_that_fails_again_is_not_retried_twice() -> None:
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 2, "stepWeight": 25}))
    await failed(rig)
    action_id = rig.request("retry")
    await rig.cycle()
    assert rig.phase == "Progressing"
    await rig.run_until("Failed")
    await rig.cycles(3)
    assert rig.phase == "Failed"
    assert rig.result(action_id) == ("done", "new run started")
    starts = [m for m in rig.recorder.messages if m.startswith("Retry requested")]
    assert len(starts) == 1


async def test_retry_honours_confirm_rollout() -> None:
    rig = VerbRig(
        make_canary(
            analysis=with_hooks(("gate", "confirm-rollout"), threshold=1, stepWeight=25),
        )
    )
    await failed(rig)
    rig.webhooks.failing["gate"] = "closed"
    action_id = rig.request("retry")
    await rig.cycle()
    assert rig.phase == "Waiting"
    assert rig.result(action_id) == ("done", "new run waiting for confirm-rollout approval")


@pytest.mark.parametrize("phase", ["Initialized", "Succeeded"])
async def test_retry_without_a_failure_is_refused(phase: str) -> None:
    rig = VerbRig(make_canary())
    await rig.initialise()
    if phase == "Succeeded":
        await rig.new_revision()
        await rig.run_until("Succeeded")
    action_id = rig.request("retry")
    await rig.cycles(2)
    assert rig.phase == phase
    outcome = rig.result(action_id)
    assert outcome is not None
    assert outcome[0] == "refused"
    assert "nothing to retry" in outcome[1]


# --- pause and resume ---------------------------------------------------------------------------


async def test_pause_freezes_a_run_and_resume_carries_on_from_the_same_step() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    assert rig.weights == (90, 10)
    pause_id = rig.request("pause")
    checks = rig.analyzer.calls
    await rig.cycles(4)
    assert rig.phase == "Progressing"
    assert rig.weights == (90, 10)
    assert rig.analyzer.calls == checks
    assert rig.result(pause_id) == ("done", "paused")
    assert (
        rig.recorder.messages.count(
            "Paused by coalmine pause: no step is taken until coalmine resume"
        )
        == 1
    )
    assert "skipping canary run as object is paused (coalmine.dev/paused)" in (
        rig.recorder.messages
    )
    resume_id = rig.request("resume")
    await rig.cycle()
    assert rig.result(resume_id) == ("done", "resumed")
    assert rig.weights == (80, 20)
    await rig.run_until("Succeeded")


async def test_a_paused_canary_does_not_start_a_run_for_a_new_revision() -> None:
    rig = VerbRig(make_canary())
    await rig.initialise()
    rig.request("pause")
    rig.target.set_image("podinfo:2.0.0")
    await rig.cycles(3)
    assert rig.phase == "Initialized"
    assert rig.target.scaled_to_zero
    rig.request("resume")
    await rig.cycle()
    assert rig.phase == "Progressing"


async def test_verbs_wait_while_paused() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.request("pause")
    await rig.cycle()
    action_id = rig.request("abort")
    await rig.cycles(2)
    assert rig.phase == "Progressing"
    assert rig.result(action_id) is None


# --- once per id, and crash safety --------------------------------------------------------------


async def test_an_acknowledged_abort_is_not_acted_on_again_after_a_new_revision() -> None:
    rig = VerbRig(make_canary())
    await progressing(rig)
    rig.request("abort")
    await rig.cycle()
    assert rig.phase == "Failed"
    rig.target.set_image("podinfo:3.0.0")
    await rig.run_until("Succeeded")
    assert rig.target.primary_spec == {"image": "podinfo:3.0.0"}


async def scenario_end_state(verb: Verb, crash_at: int | None, after: bool) -> tuple[Any, ...]:
    """Run `verb` from its natural phase with a crash at write `crash_at` of the verb's cycle."""
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 2, "stepWeight": 25}))
    if verb == "retry":
        await failed(rig)
        rig.analyzer.default = PASSING
    else:
        await progressing(rig)
    action_id = rig.request(verb)
    if crash_at is not None:
        rig.world.crash_at = rig.world.writes + crash_at
        rig.world.crash_after = after
    for _ in range(30):
        try:
            await rig.cycle()
        except Crash:
            rig.restart()
        if rig.phase in {"Succeeded", "Failed"} and rig.result(action_id) is not None:
            break
    return (
        rig.phase,
        (rig.result(action_id) or ("pending",))[0],
        rig.target.primary_spec,
        rig.target.promotions,
        rig.weights,
    )


@pytest.mark.parametrize("verb", ["promote", "abort", "retry"])
async def test_a_crash_at_any_write_of_a_verb_reaches_the_same_end_state(verb: Verb) -> None:
    expected = await scenario_end_state(verb, None, False)
    assert expected[1] == "done"
    for crash_at in range(1, 8):
        for after in (False, True):
            assert await scenario_end_state(verb, crash_at, after) == expected, (crash_at, after)


# --- the rules the CLI shares -------------------------------------------------------------------

PHASES = [
    "Initializing",
    "Initialized",
    "Waiting",
    "Progressing",
    "WaitingPromotion",
    "Promoting",
    "Finalising",
    "Succeeded",
    "Failed",
]
ALLOWED: dict[str, set[str]] = {
    "promote": {"Progressing", "WaitingPromotion"},
    "abort": {"Waiting", "Progressing", "WaitingPromotion"},
    "retry": {"Failed"},
}


@pytest.mark.parametrize("verb", ["promote", "abort", "retry"])
@pytest.mark.parametrize("phase", PHASES)
def test_each_verb_makes_sense_only_in_its_phases(verb: Verb, phase: str) -> None:
    reason = verbs.refusal(verb, phase, paused=False)
    assert (reason is None) == (phase in ALLOWED[verb]), reason
    assert verbs.refusal(verb, phase, paused=True) is not None


def test_pause_and_resume_follow_the_annotation() -> None:
    assert verbs.refusal("pause", "Progressing", paused=False) is None
    assert verbs.refusal("pause", "Progressing", paused=True) == "it is already paused"
    assert verbs.refusal("resume", "Succeeded", paused=True) is None
    assert verbs.refusal("resume", "Succeeded", paused=False) == "it is not paused"


def test_a_request_is_pending_until_its_own_id_is_handled() -> None:
    first = {
        naming.ACTION_ANNOTATION: "promote",
        naming.ACTION_ID_ANNOTATION: "1",
    }
    assert verbs.pending_action(first) == verbs.Action("promote", "1")
    handled = {**first, **verbs.handled_annotations("1", "done", "promoting")}
    assert verbs.pending_action(handled) is None
    assert verbs.result_of(handled, "1") == ("done", "promoting")
    again = {**handled, naming.ACTION_ANNOTATION: "abort", naming.ACTION_ID_ANNOTATION: "2"}
    assert verbs.pending_action(again) == verbs.Action("abort", "2")
    assert verbs.pending_action({naming.ACTION_ANNOTATION: "explode", "x": "y"}) is None


def test_every_verb_is_refused_on_a_suspended_canary() -> None:
    for verb in verbs.VERBS:
        reason = verbs.refusal(verb, "Progressing", paused=verb == "resume", suspended=True)
        assert reason is not None
        assert "spec.suspend" in reason


async def test_without_an_action_log_verbs_stay_pending_and_a_failed_run_is_not_retried() -> None:
    rig = Rig(make_canary(analysis={"interval": "1m", "threshold": 2, "stepWeight": 25}))
    await rig.new_revision()
    await rig.cycles(2)
    rig.analyzer.fail_with("Halt podinfo.default advancement success rate 50.00% < 99%")
    for _ in range(10):
        await rig.cycle()
    assert rig.phase == "Failed"
    rig.store.update_spec(
        lambda canary: setattr(
            canary.metadata, "annotations", verbs.request_annotations("retry", "1")
        )
    )
    await rig.cycles(3)
    assert rig.phase == "Failed"
    assert not any(m.startswith("Retry requested") for m in rig.recorder.messages)


async def test_retry_after_a_failed_promotion_with_the_primary_still_broken_is_refused_once() -> (
    None
):
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 5, "stepWeight": 50}))
    await rig.new_revision()
    await rig.run_until("Promoting")
    rig.target.primary_error = TargetNotReady("primary stuck", retriable=False)
    await rig.cycle()
    assert rig.phase == "Failed"
    assert rig.weights == (0, 100)
    failures = dict(rig.metrics.failures)
    action_id = rig.request("retry")
    await rig.cycles(3)
    assert rig.result(action_id) == ("refused", "the primary is not ready: primary stuck")
    assert rig.phase == "Failed"
    assert rig.weights == (0, 100)
    assert rig.metrics.failures == failures


async def test_retry_after_a_failed_promotion_promotes_once_the_primary_recovers() -> None:
    rig = VerbRig(make_canary(analysis={"interval": "1m", "threshold": 5, "stepWeight": 50}))
    await rig.new_revision()
    await rig.run_until("Promoting")
    rig.target.primary_error = TargetNotReady("primary stuck", retriable=False)
    await rig.cycle()
    assert rig.phase == "Failed"
    rig.target.primary_error = None
    action_id = rig.request("retry")
    await rig.cycle()
    assert rig.result(action_id) == ("done", "new run started")
    await rig.run_until("Succeeded")
    assert rig.weights == (100, 0)
    assert rig.target.promotions == 1
