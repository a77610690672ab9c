"""`coalmine promote|abort|retry|pause|resume` against a running controller and devcluster."""

from __future__ import annotations

import pytest

from coalmine.api import naming
from coalmine.cli.status import status_command
from coalmine.cli.verbs import request_verb
from coalmine.controller.runtime import Controller
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, EVENT
from coalmine.scheduler.verbs import Verb
from tiered import ApiServer

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
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks.refusing.add("approve")
    await create(ns, api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(ns, api)
    await wait_phase(ns, api, "WaitingPromotion")
    assert await request_verb(api, ns, "podinfo", "promote", limit=30) == 0
    assert f"promote done for canary podinfo.{ns}: promoting" in capsys.readouterr().out
    await wait_phase(ns, api, "Succeeded")
    assert await primary_colour(ns, api) == "green"
    assert "Promotion requested by coalmine promote: skipping the rest of the analysis" in (
        await messages(ns, api)
    )
    annotations = annotations_of(await get_canary(ns, api))
    assert (
        annotations[naming.HANDLED_ACTION_ANNOTATION] == (annotations[naming.ACTION_ID_ANNOTATION])
    )
    assert annotations[naming.ACTION_RESULT_ANNOTATION] == "done: promoting"
    detail = Output()
    await status_command(api, ns, "podinfo", watch=False, limit=1, console=detail.console())
    action_id = annotations[naming.ACTION_ID_ANNOTATION]
    assert f"coalmine promote ({action_id}): done: promoting" in detail.text


async def test_abort_rolls_back_a_run_in_progress_and_keeps_the_primary(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await create(ns, api, iterations=1000)
    await release(ns, api)
    await wait_phase(ns, api, "Progressing")
    assert await request_verb(api, ns, "podinfo", "abort", limit=30) == 0
    assert await phase_of(ns, api) == "Failed"
    assert await primary_colour(ns, api) == "blue"
    assert f"Rolling back podinfo.{ns}: abort requested by coalmine abort" in (
        await messages(ns, api)
    )


async def test_retry_runs_a_failed_release_again_without_editing_the_target(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks
) -> None:
    hooks.refusing.add("acceptance")
    await create(ns, api, webhooks=[hooks.hook("acceptance", "rollout")])
    await release(ns, api)
    await wait_phase(ns, api, "Failed")
    assert await primary_colour(ns, api) == "blue"
    hooks.refusing.clear()
    assert await request_verb(api, ns, "podinfo", "retry", limit=30) == 0
    await wait_phase(ns, api, "Succeeded")
    assert await primary_colour(ns, api) == "green"
    assert (
        f"Retry requested by coalmine retry: starting a new run of podinfo.{ns}"
        in await messages(ns, api)
    )


async def skipped_cycles(ns: str, api: KubeApi) -> int:
    events = (await api.list(EVENT, ns)).items
    return sum(
        int(e.get("count") or 1)
        for e in events
        if e["message"] == "skipping canary run as object is paused (coalmine.dev/paused)"
    )


async def test_pause_freezes_a_run_and_resume_lets_it_carry_on(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await create(ns, api, iterations=1000)
    await release(ns, api)
    await wait_phase(ns, api, "Progressing")
    assert await request_verb(api, ns, "podinfo", "pause", limit=30) == 0
    frozen = (await get_canary(ns, api))["status"]

    async def skipped_twice() -> bool:
        return await skipped_cycles(ns, api) >= 2

    await eventually(skipped_twice, what="two paused cycles")
    assert (await get_canary(ns, api))["status"] == frozen
    assert "Paused by coalmine pause: no step is taken until coalmine resume" in (
        await messages(ns, api)
    )
    assert await request_verb(api, ns, "podinfo", "resume", limit=30) == 0

    async def iterating() -> bool:
        status = (await get_canary(ns, api))["status"]
        return bool(status.get("iterations", 0) > frozen.get("iterations", 0))

    await eventually(iterating, what="iterations after resume")
    assert naming.PAUSED_ANNOTATION not in annotations_of(await get_canary(ns, api))


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
    ns: str,
    api: KubeApi,
    controller: Controller,
    capsys: pytest.CaptureFixture[str],
    verb: Verb,
    reason: str,
) -> None:
    await create(ns, api)
    await wait_phase(ns, api, "Initialized")
    before = await get_canary(ns, api)
    assert await request_verb(api, ns, "podinfo", verb, limit=5) == 1
    assert reason in capsys.readouterr().err
    after = await get_canary(ns, api)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert naming.ACTION_ANNOTATION not in annotations_of(after)


async def test_without_a_controller_the_request_stays_and_the_wait_times_out(
    ns: str, api: KubeApi, apiserver: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await create(ns, api)
    assert await request_verb(api, ns, "podinfo", "pause", limit=0.3) == 4
    assert "did not handle the request" in capsys.readouterr().err
    annotations = annotations_of(await api.get(CANARY, "podinfo", ns))
    assert annotations[naming.ACTION_ANNOTATION] == "pause"
    assert annotations[naming.PAUSED_ANNOTATION] == "true"
    assert naming.HANDLED_ACTION_ANNOTATION not in annotations
    assert await request_verb(api, ns, "podinfo", "resume", wait=False) == 0
    out = capsys.readouterr().out
    assert "replacing the pending pause request" in out
    assert naming.PAUSED_ANNOTATION not in annotations_of(await api.get(CANARY, "podinfo", ns))


async def test_a_request_for_a_missing_canary_is_an_error(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    from coalmine.cli.status import CliError

    with pytest.raises(CliError, match=f"canary ghost not found in namespace {ns}"):
        await request_verb(api, ns, "ghost", "abort")


async def test_a_verb_is_handled_at_once_even_with_an_hour_between_cycles(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await create(ns, api, interval="60m")
    await wait_phase(ns, api, "Initialized")
    # Only the annotation change can run the cycle that acknowledges these within the limit.
    assert await request_verb(api, ns, "podinfo", "pause", limit=20) == 0
    assert await request_verb(api, ns, "podinfo", "resume", limit=20) == 0


async def test_a_gitops_apply_of_the_manifest_keeps_the_pause(
    ns: str, api: KubeApi, controller: Controller, apiserver: ApiServer
) -> None:
    from lightkube.types import PatchType

    from coalmine.kube.api import load_config

    from .rig import canary

    await create(ns, api, iterations=1000)
    await release(ns, api)
    await wait_phase(ns, api, "Progressing")
    assert await request_verb(api, ns, "podinfo", "pause", limit=30) == 0
    gitops = KubeApi(load_config(str(apiserver.kubeconfig_path)), field_manager="flux")
    try:
        manifest = canary(ns, "podinfo", iterations=1000)
        manifest["metadata"]["annotations"] = {"team": "payments"}
        await gitops.patch(CANARY, "podinfo", manifest, ns, patch_type=PatchType.APPLY)
    finally:
        await gitops.close()
    annotations = annotations_of(await get_canary(ns, api))
    assert annotations["team"] == "payments"
    assert annotations[naming.PAUSED_ANNOTATION] == "true"
    assert await request_verb(api, ns, "podinfo", "pause", limit=5) == 1
