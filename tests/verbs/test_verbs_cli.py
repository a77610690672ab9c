"""`coalmine promote|abort|retry|pause|resume` against a running controller and devcluster."""

from __future__ import annotations

import pytest

from coalmine.api import naming
from coalmine.cli.status import status_command
from coalmine.cli.verbs import request_verb
from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, EVENT
from coalmine.scheduler.verbs import Verb

from .rig import (
    Hooks,
    Output,
    create,
    eventually,
    get_canary,
    messages,
    phase_of,
    primary_colour,
    release,
    wait_phase,
)


def annotations_of(obj: dict[str, object]) -> dict[str, str]:
    metadata = obj.get("metadata")
    assert isinstance(metadata, dict)
    return dict(metadata.get("annotations") or {})


async def test_promote_skips_a_closed_promotion_gate_and_releases(
    api: KubeApi, controller: Controller, hooks: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks.refusing.add("approve")
    await create(api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(api)
    await wait_phase(api, "WaitingPromotion")
    assert await request_verb(api, "default", "podinfo", "promote", limit=30) == 0
    assert "promote done for canary podinfo.default: promoting" in capsys.readouterr().out
    await wait_phase(api, "Succeeded")
    assert await primary_colour(api) == "green"
    assert "Promotion requested by coalmine promote: skipping the rest of the analysis" in (
        await messages(api)
    )
    annotations = annotations_of(await get_canary(api))
    assert (
        annotations[naming.HANDLED_ACTION_ANNOTATION] == (annotations[naming.ACTION_ID_ANNOTATION])
    )
    assert annotations[naming.ACTION_RESULT_ANNOTATION] == "done: promoting"
    detail = Output()
    await status_command(api, "default", "podinfo", watch=False, limit=1, console=detail.console())
    action_id = annotations[naming.ACTION_ID_ANNOTATION]
    assert f"coalmine promote ({action_id}): done: promoting" in detail.text


async def test_abort_rolls_back_a_run_in_progress_and_keeps_the_primary(
    api: KubeApi, controller: Controller
) -> None:
    await create(api, iterations=1000)
    await release(api)
    await wait_phase(api, "Progressing")
    assert await request_verb(api, "default", "podinfo", "abort", limit=30) == 0
    assert await phase_of(api) == "Failed"
    assert await primary_colour(api) == "blue"
    assert "Rolling back podinfo.default: abort requested by coalmine abort" in (
        await messages(api)
    )


async def test_retry_runs_a_failed_release_again_without_editing_the_target(
    api: KubeApi, controller: Controller, hooks: Hooks
) -> None:
    hooks.refusing.add("acceptance")
    await create(api, webhooks=[hooks.hook("acceptance", "rollout")])
    await release(api)
    await wait_phase(api, "Failed")
    assert await primary_colour(api) == "blue"
    hooks.refusing.clear()
    assert await request_verb(api, "default", "podinfo", "retry", limit=30) == 0
    await wait_phase(api, "Succeeded")
    assert await primary_colour(api) == "green"
    assert (
        "Retry requested by coalmine retry: starting a new run of podinfo.default"
        in await messages(api)
    )


async def skipped_cycles(api: KubeApi) -> int:
    events = (await api.list(EVENT, "default")).items
    return sum(
        int(e.get("count") or 1)
        for e in events
        if e["message"] == "skipping canary run as object is paused (coalmine.dev/paused)"
    )


async def test_pause_freezes_a_run_and_resume_lets_it_carry_on(
    api: KubeApi, controller: Controller
) -> None:
    await create(api, iterations=1000)
    await release(api)
    await wait_phase(api, "Progressing")
    assert await request_verb(api, "default", "podinfo", "pause", limit=30) == 0
    frozen = (await get_canary(api))["status"]

    async def skipped_twice() -> bool:
        return await skipped_cycles(api) >= 2

    await eventually(skipped_twice, what="two paused cycles")
    assert (await get_canary(api))["status"] == frozen
    assert "Paused by coalmine pause: no step is taken until coalmine resume" in (
        await messages(api)
    )
    assert await request_verb(api, "default", "podinfo", "resume", limit=30) == 0

    async def iterating() -> bool:
        status = (await get_canary(api))["status"]
        return bool(status.get("iterations", 0) > frozen.get("iterations", 0))

    await eventually(iterating, what="iterations after resume")
    assert naming.PAUSED_ANNOTATION not in annotations_of(await get_canary(api))


@pytest.mark.parametrize(
    ("verb", "reason"),
    [
        ("promote", "nothing to promote"),
        ("abort", "nothing to abort"),
        ("retry", "nothing to retry"),
        ("resume", "it is not paused"),
    ],
)
async def test_a_verb_out_of_place_is_refused_without_writing(
    api: KubeApi,
    controller: Controller,
    capsys: pytest.CaptureFixture[str],
    verb: Verb,
    reason: str,
) -> None:
    await create(api)
    await wait_phase(api, "Initialized")
    before = await get_canary(api)
    assert await request_verb(api, "default", "podinfo", verb, limit=5) == 1
    assert reason in capsys.readouterr().err
    after = await get_canary(api)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert naming.ACTION_ANNOTATION not in annotations_of(after)


async def test_without_a_controller_the_request_stays_and_the_wait_times_out(
    api: KubeApi, devcluster: DevCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await create(api)
    assert await request_verb(api, "default", "podinfo", "pause", limit=0.3) == 4
    assert "did not handle the request" in capsys.readouterr().err
    annotations = annotations_of(await api.get(CANARY, "podinfo", "default"))
    assert annotations[naming.ACTION_ANNOTATION] == "pause"
    assert annotations[naming.PAUSED_ANNOTATION] == "true"
    assert naming.HANDLED_ACTION_ANNOTATION not in annotations
    assert await request_verb(api, "default", "podinfo", "resume", wait=False) == 0
    out = capsys.readouterr().out
    assert "replacing the pending pause request" in out
    assert naming.PAUSED_ANNOTATION not in annotations_of(
        await api.get(CANARY, "podinfo", "default")
    )


async def test_a_request_for_a_missing_canary_is_an_error(
    api: KubeApi, devcluster: DevCluster
) -> None:
    from coalmine.cli.status import CliError

    with pytest.raises(CliError, match="canary ghost not found in namespace default"):
        await request_verb(api, "default", "ghost", "abort")


async def test_a_verb_is_handled_at_once_even_with_an_hour_between_cycles(
    api: KubeApi, controller: Controller
) -> None:
    await create(api, interval="60m")
    await wait_phase(api, "Initialized")
    # Only the annotation change can run the cycle that acknowledges these within the limit.
    assert await request_verb(api, "default", "podinfo", "pause", limit=20) == 0
    assert await request_verb(api, "default", "podinfo", "resume", limit=20) == 0


async def test_a_gitops_apply_of_the_manifest_keeps_the_pause(
    api: KubeApi, controller: Controller, devcluster: DevCluster
) -> None:
    from lightkube.types import PatchType

    from coalmine.kube.api import load_config

    from .rig import canary

    await create(api, iterations=1000)
    await release(api)
    await wait_phase(api, "Progressing")
    assert await request_verb(api, "default", "podinfo", "pause", limit=30) == 0
    gitops = KubeApi(load_config(str(devcluster.kubeconfig_path)), field_manager="flux")
    try:
        manifest = canary("podinfo", iterations=1000)
        manifest["metadata"]["annotations"] = {"team": "payments"}
        await gitops.patch(CANARY, "podinfo", manifest, "default", patch_type=PatchType.APPLY)
    finally:
        await gitops.close()
    annotations = annotations_of(await get_canary(api))
    assert annotations["team"] == "payments"
    assert annotations[naming.PAUSED_ANNOTATION] == "true"
    assert await request_verb(api, "default", "podinfo", "pause", limit=5) == 1
