"""`coalmine status [NAME] [--watch]` against a running controller: output and exit codes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from coalmine.cli.status import status_command
from coalmine.cli.verbs import request_verb
from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, EVENT, SERVICE

from .rig import Hooks, Output, create, eventually, get_canary, primary_colour, release, wait_phase


async def printed(output: Output, text: str) -> None:
    async def seen() -> bool:
        return text in output.text

    await eventually(seen, what=text)


async def watch(
    api: KubeApi, output: Output, name: str | None = "podinfo", limit: float = 30
) -> int:
    return await status_command(
        api, "default", name, watch=True, limit=limit, console=output.console()
    )


async def test_watch_returns_at_once_with_0_for_an_initialized_canary(
    api: KubeApi, controller: Controller, output: Output
) -> None:
    await create(api)
    await wait_phase(api, "Initialized")
    assert await watch(api, output, limit=5) == 0
    assert "Initialized" in output.text


async def test_watch_waits_for_the_run_in_progress_and_exits_0_on_success(
    api: KubeApi, controller: Controller, hooks: Hooks, output: Output
) -> None:
    hooks.refusing.add("approve")
    await create(api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(api)
    await wait_phase(api, "WaitingPromotion")
    watching = asyncio.create_task(watch(api, output))
    await printed(output, "podinfo: WaitingPromotion")
    hooks.refusing.clear()
    assert await watching == 0
    assert (await get_canary(api))["status"]["phase"] == "Succeeded"
    assert "podinfo: WaitingPromotion" in output.text
    assert "podinfo: Succeeded" in output.text


async def test_watch_exits_1_when_the_run_fails(
    api: KubeApi, controller: Controller, output: Output
) -> None:
    await create(api, iterations=1000)
    await release(api)
    await wait_phase(api, "Progressing")
    watching = asyncio.create_task(watch(api, output))
    assert await request_verb(api, "default", "podinfo", "abort", limit=30) == 0
    assert await watching == 1
    assert "podinfo: Failed" in output.text


async def test_watch_exits_4_when_the_release_does_not_end_in_time(
    api: KubeApi, controller: Controller, hooks: Hooks, output: Output
) -> None:
    hooks.refusing.add("approve")
    await create(api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(api)
    await wait_phase(api, "WaitingPromotion")
    assert await watch(api, output, limit=1) == 4
    assert "timed out after 1s" in output.text


async def test_watch_waits_for_a_target_change_the_controller_has_not_started(
    api: KubeApi, controller: Controller, output: Output
) -> None:
    await create(api)
    await wait_phase(api, "Initialized")
    assert await request_verb(api, "default", "podinfo", "pause", limit=30) == 0
    await release(api)  # the paused canary cannot start the run yet
    watching = asyncio.create_task(watch(api, output))
    await printed(output, "podinfo: Initialized")
    assert not watching.done()
    assert await request_verb(api, "default", "podinfo", "resume", limit=30) == 0
    assert await watching == 0
    assert "a target change is waiting for the controller" in output.text
    assert await primary_colour(api) == "green"


async def test_watch_of_every_canary_waits_for_all_and_exits_1_if_one_failed(
    api: KubeApi, controller: Controller, hooks: Hooks, output: Output
) -> None:
    hooks.refusing.add("acceptance")
    await create(api, "good")
    await create(api, "bad", webhooks=[hooks.hook("acceptance", "rollout")])
    await release(api, "good")
    await release(api, "bad")
    assert await watch(api, output, name=None) == 1
    assert await primary_colour(api, "good") == "green"
    assert await primary_colour(api, "bad") == "blue"
    assert "good" in output.text
    assert "bad" in output.text


async def test_the_table_lists_each_canary_with_target_phase_and_checks(
    api: KubeApi, controller: Controller, output: Output
) -> None:
    await create(api, "frontend")
    await create(api, "backend")
    await wait_phase(api, "Initialized", name="frontend")
    await wait_phase(api, "Initialized", name="backend")
    code = await status_command(
        api, "default", None, watch=False, limit=1, console=output.console()
    )
    assert code == 0
    lines = output.text.splitlines()
    assert lines[0].split() == [
        "NAME",
        "TARGET",
        "PHASE",
        "STEP",
        "FAILED",
        "CHECKS",
        "LAST",
        "TRANSITION",
        "FLAGS",
    ]
    assert lines[1].split()[:6] == [
        "backend",
        "Service/backend",
        "Initialized",
        "blue/green,",
        "2",
        "iterations",
    ]
    assert lines[1].split()[6] == "0/1"
    assert lines[2].split()[:3] == ["frontend", "Service/frontend", "Initialized"]


async def test_the_detail_shows_spec_checks_webhooks_and_events(
    api: KubeApi, controller: Controller, hooks: Hooks, output: Output
) -> None:
    await create(
        api,
        metrics=[
            # provider kubernetes + Service target: builtin checks are refused, queries are not
            {
                "name": "request-success-rate",
                "query": "vector(100)",
                "thresholdRange": {"min": 99},
                "interval": "1m",
            },
            {"name": "latency", "query": "vector(1)", "thresholdRange": {"max": 500}},
        ],
        webhooks=[hooks.hook("smoke", "pre-rollout")],
    )
    await wait_phase(api, "Initialized")
    await api.create(
        EVENT,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "podinfo.", "namespace": "default"},
            "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "default"},
            "reason": "Synced",
            "type": "Warning",
            "message": "Halt advancement latency 900.00 > 500 [p99]",
            "lastTimestamp": "2099-01-01T00:00:00Z",
        },
    )
    code = await status_command(
        api, "default", "podinfo", watch=False, limit=1, console=output.console()
    )
    assert code == 0
    text = output.text
    assert "2099-01-01T00:00:00Z  Warning  Halt advancement latency 900.00 > 500 [p99]" in text
    assert text.startswith("podinfo.default  Initialized\n")
    assert "├─ Target        Service/podinfo\n" in text
    assert "primary  podinfo-primary  selector app=podinfo-blue" in text
    assert "canary   podinfo  selector app=podinfo-blue" in text
    assert "├─ Strategy      blue/green, 2 iterations\n" in text
    assert "├─ Analysis      every 200ms, failed checks 0/1, iterations 0\n" in text
    assert "request-success-rate  no value yet (≥ 99)" in text
    assert (
        "latency               failed (≤ 500): Halt advancement latency 900.00 > 500 [p99]"
        " at 2099-01-01T00:00:00Z [events]"
    ) in text
    assert "smoke  pre-rollout: not called in this run" in text
    assert "Initialization done! podinfo.default" in text
    # which traffic is canaried, in one sentence (the controller's TrafficCoverage condition)
    assert (
        "├─ Traffic       provider kubernetes: no traffic follows the canary weights; only "
        "clients of podinfo-primary and podinfo-canary are kept apart"
    ) in text


async def test_status_of_a_missing_canary_is_an_error(api: KubeApi, devcluster: DevCluster) -> None:
    import pytest

    from coalmine.cli.status import CliError

    with pytest.raises(CliError, match="canary ghost not found"):
        await status_command(
            api, "default", "ghost", watch=False, limit=1, console=Output().console()
        )


async def run_cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalmine",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_commands_as_a_pipeline_runs_them(
    api: KubeApi, controller: Controller, hooks: Hooks, devcluster: DevCluster
) -> None:
    kubeconfig = f"--kubeconfig={Path(devcluster.kubeconfig_path)}"
    hooks.refusing.add("approve")
    await create(api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(api)
    await wait_phase(api, "WaitingPromotion")
    watching = asyncio.create_task(
        run_cli("status", "podinfo", "--watch", "--timeout=60s", kubeconfig)
    )
    promote = await run_cli("promote", "podinfo", "-n", "default", kubeconfig)
    assert promote[0] == 0, promote[1]
    code, text = await watching
    assert code == 0, text
    assert "Succeeded" in text
    again = await run_cli("promote", "podinfo", kubeconfig)
    assert again[0] == 1
    assert "nothing to promote" in again[1]
    missing = await run_cli("status", "ghost", kubeconfig)
    assert missing[0] == 3
    assert "canary ghost not found" in missing[1]
    assert (await api.get(SERVICE, "podinfo-primary", "default"))["spec"]["selector"] == {
        "app": "podinfo-green"
    }


async def test_an_unreachable_api_server_exits_3_with_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]\n"
    )
    code, text = await run_cli("status", f"--kubeconfig={kubeconfig}")
    assert code == 3
    assert f"cannot reach the API server at http://127.0.0.1:{port}" in text
    assert "/namespaces/team/canaries" in text
    code, text = await run_cli("abort", "podinfo", f"--kubeconfig={kubeconfig}", "--context=y")
    assert code == 3
    assert "Context 'y' not found" in text


async def test_watch_of_a_canary_the_controller_refuses_exits_1_with_the_reason(
    api: KubeApi, controller: Controller, output: Output
) -> None:
    from .rig import canary, service

    await api.create(SERVICE, service("podinfo", "blue"))
    bad = canary("podinfo", stepWeights=[20, 10])
    del bad["spec"]["analysis"]["iterations"]
    await api.create(CANARY, bad)
    assert await watch(api, output) == 1
    assert "refused by the controller" in output.text
    assert "spec.analysis.stepWeights[1]" in output.text
