"""The shapes `coalmine status` prints as users read them: -o json through a pipe, -A, failed
runs, requests of earlier releases, exit codes, full-width lines in CI and the live view in tmux."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from coalmine.cli.status import status_command
from coalmine.cli.status.model import SCHEMA_VERSION
from coalmine.cli.verbs import request_verb
from coalmine.controller.runtime import Controller
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, NAMESPACE, SERVICE

from .rig import Hooks, Output, canary, create, release, service, wait_phase
from .test_status_cli import run_cli


async def test_json_output_through_a_pipe_is_the_versioned_schema(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, user_kubeconfig: Path
) -> None:
    await create(
        ns,
        api,
        iterations=None,
        stepWeights=[10, 20, 50],
        webhooks=[hooks.hook("approve", "confirm-promotion")],
        metrics=[{"name": "latency", "query": "vector(1)", "thresholdRange": {"max": 500}}],
    )
    await wait_phase(ns, api, "Initialized")
    code, text = await run_cli("status", "podinfo", "-o", "json", f"--kubeconfig={user_kubeconfig}")
    assert code == 0, text
    document = json.loads(text)
    assert document["schemaVersion"] == SCHEMA_VERSION
    item = document["items"][0]
    assert item["name"] == "podinfo"
    assert item["phase"] == "Initialized"
    assert item["target"]["primary"] == {
        "name": "podinfo-primary",
        "selector": {"app": "podinfo-blue"},
    }
    assert item["strategy"]["steps"] == [10, 20, 50]
    assert item["metrics"][0]["threshold"] == "≤ 500"
    assert item["webhooks"][0] == {
        "name": "approve",
        "type": "confirm-promotion",
        "gate": True,
        "url": hooks.hook("approve", "confirm-promotion")["url"],
        "state": "not called in this run",
    }
    code, text = await run_cli("status", "-o", "yaml", f"--kubeconfig={user_kubeconfig}")
    assert code == 0, text
    assert yaml.safe_load(text)["items"][0]["name"] == "podinfo"


async def test_all_namespaces_lists_canaries_of_each_namespace(
    ns: str, api: KubeApi, controller: Controller, output: Output
) -> None:
    team = f"{ns}-team"
    await api.create(NAMESPACE, {"metadata": {"name": team}})
    await create(ns, api, "frontend")
    other_service = service(ns, "backend", "blue")
    other_service["metadata"]["namespace"] = team
    other = canary(ns, "backend")
    other["metadata"]["namespace"] = team
    await api.create(SERVICE, other_service)
    await api.create(CANARY, other)
    await wait_phase(ns, api, "Initialized", name="frontend")
    code = await status_command(api, None, None, watch=False, limit=1, console=output.console())
    lines = output.text.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    # The real control plane is shared by the session's tests: only this test's namespaces count.
    ours = [line.split()[:2] for line in lines[1:] if line.split()[:1] in ([ns], [team])]
    assert ours == [[ns, "frontend"], [team, "backend"]]
    # -A exits 1 when any listed canary failed: only other tests' canaries may have.
    others = [line for line in lines[1:] if line.split()[:1] not in ([ns], [team])]
    assert code == 0 or any("Failed" in line or "Invalid" in line for line in others), output.text


async def test_a_failed_run_shows_the_failed_checks_it_reached(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, output: Output
) -> None:
    hooks.refusing.add("acceptance")
    await create(ns, api, threshold=2, webhooks=[hooks.hook("acceptance", "rollout")])
    await release(ns, api)
    await wait_phase(ns, api, "Failed")
    status = (await api.get(CANARY, "podinfo", ns))["status"]
    assert status["failedChecks"] == 0  # Flagger resets it on rollback
    code = await status_command(api, ns, "podinfo", watch=False, limit=1, console=output.console())
    assert code == 1
    assert "failed checks 2/2 in the failed run" in output.text
    assert "acceptance  rollout: failed" in output.text


async def test_a_request_of_an_earlier_release_is_not_shown_and_no_checks_says_so(
    ns: str, api: KubeApi, controller: Controller, output: Output
) -> None:
    await create(ns, api, iterations=1000)
    await release(ns, api)
    await wait_phase(ns, api, "Progressing")
    assert await request_verb(api, ns, "podinfo", "abort", limit=30) == 0
    await wait_phase(ns, api, "Failed")
    before = Output()
    await status_command(api, ns, "podinfo", watch=False, limit=1, console=before.console())
    assert "Last request  coalmine abort" in before.text
    await release(ns, api, colour="red")
    await wait_phase(ns, api, "Progressing")
    await status_command(api, ns, "podinfo", watch=False, limit=1, console=output.console())
    assert "Last request" not in output.text
    assert "Metrics       none (it advances on time alone)" in output.text


async def test_usage_errors_and_timeouts_have_distinct_exit_codes(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, user_kubeconfig: Path
) -> None:
    kubeconfig = f"--kubeconfig={user_kubeconfig}"
    assert (await run_cli("status", "--output", "xml", kubeconfig))[0] == 2
    assert (await run_cli("status", "podinfo", "-A", kubeconfig))[0] == 2
    hooks.refusing.add("approve")
    await create(ns, api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(ns, api)
    await wait_phase(ns, api, "WaitingPromotion")
    code, text = await run_cli("status", "podinfo", "--watch", "--timeout=1s", kubeconfig)
    assert code == 4, text
    assert "timed out after 1s" in text


async def test_watch_lines_in_a_pipe_are_never_cut_at_80_columns(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, user_kubeconfig: Path
) -> None:
    name = "checkout-payments-gateway-eu-west"
    hooks.refusing.add("approve")
    await create(ns, api, name, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(ns, api, name)
    await wait_phase(ns, api, "WaitingPromotion", name=name)
    watching = asyncio.create_task(
        run_cli("status", name, "--watch", f"--kubeconfig={user_kubeconfig}")
    )
    await asyncio.sleep(1)
    hooks.refusing.clear()
    code, text = await watching
    assert code == 0, text
    assert f"{name}: WaitingPromotion, blue/green, 2 iterations, failed checks 0/1" in text
    assert f"├─ Target        Service/{name}\n" in text
    assert max(len(line) for line in text.splitlines()) > 80


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def tmux_screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
async def test_watch_on_a_terminal_redraws_the_tree_live(
    ns: str,
    api: KubeApi,
    controller: Controller,
    hooks: Hooks,
    user_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    hooks.refusing.add("approve")
    await create(ns, api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(ns, api)
    await wait_phase(ns, api, "WaitingPromotion")
    session = f"coalmine-status-{os.getpid()}"
    command = (
        f"{sys.executable} -m coalmine status podinfo --watch "
        f"--kubeconfig={user_kubeconfig}; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    try:
        screen = ""
        deadline = time.monotonic() + 30
        while "watching, up to 10m0s" not in screen and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            screen = tmux_screen(session)
        assert f"podinfo.{ns}  WaitingPromotion" in screen
        assert "approve  confirm-promotion (gate): waiting" in screen
        hooks.refusing.clear()
        while "EXIT=" not in screen and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            screen = tmux_screen(session)
        assert "EXIT=0" in screen
        assert f"podinfo.{ns}  Succeeded" in screen
        assert "watching, up to" not in screen  # the live frame is replaced by the result
    finally:
        tmux("kill-session", "-t", session)


async def test_watch_with_json_output_keeps_stdout_a_document(
    ns: str, api: KubeApi, controller: Controller, hooks: Hooks, user_kubeconfig: Path
) -> None:
    hooks.refusing.add("approve")
    await create(ns, api, webhooks=[hooks.hook("approve", "confirm-promotion")])
    await release(ns, api)
    await wait_phase(ns, api, "WaitingPromotion")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalmine",
        "status",
        "podinfo",
        "--watch",
        "-o",
        "json",
        f"--kubeconfig={user_kubeconfig}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(1)
    hooks.refusing.clear()
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["items"][0]["phase"] == "Succeeded"
    assert "podinfo: WaitingPromotion" in err.decode()  # the progress, on stderr


async def test_measurements_recorded_in_the_status_are_shown_with_the_judge_score(
    ns: str, api: KubeApi, output: Output
) -> None:
    await api.create(SERVICE, service(ns, "podinfo", "blue"))
    body = canary(
        ns, "podinfo", metrics=[{"name": "latency", "query": "q", "thresholdRange": {"max": 500}}]
    )
    await api.create(CANARY, body)
    status = {
        "phase": "Progressing",
        "failedChecks": 0,
        "canaryWeight": 0,
        "iterations": 1,
        "judgeScore": 87.5,
        "metrics": [
            {
                "name": "latency",
                "measurements": [
                    {"time": "2026-01-01T12:00:00Z", "verdict": "Pass", "value": 120.0},
                    {
                        "time": "2026-01-01T12:01:00Z",
                        "verdict": "Pass",
                        "value": 130.5,
                        "threshold": "<= 500",
                    },
                ],
            }
        ],
    }
    await api.patch(CANARY, "podinfo", {"status": status}, ns, status=True)
    await status_command(api, ns, "podinfo", watch=False, limit=1, console=output.console())
    assert "latency  130.5 (<= 500) Pass at 2026-01-01T12:01:00Z [status]" in output.text
    assert "└─ Judge score   87.5" in output.text
    assert "├─ Strategy      blue/green, iteration 2/2" in output.text
