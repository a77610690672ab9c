"""The load tester's HTTP API in-process, with real processes (hey, bash, kubectl) and real servers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from binaries import require_binary
from coalmine.loadtester.server import RUNNER_KEY

from .loadtester_client import MakeClient, Target, payload, post


async def test_healthz_answers_ok(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/healthz")
    assert (response.status, await response.text()) == (200, "OK")


async def test_cmd_task_runs_hey_against_the_target(
    make_client: MakeClient, target: tuple[Target, str]
) -> None:
    require_binary("hey")
    peer, url = target
    client = await make_client()
    status, text = await post(client, "/", payload({"type": "cmd", "cmd": f"hey -n 7 -c 1 {url}"}))
    assert (status, text) == (202, "task started")
    await client.app[RUNNER_KEY].wait_idle()
    assert peer.requests == 7


async def test_cmd_is_the_default_type(make_client: MakeClient, target: tuple[Target, str]) -> None:
    require_binary("hey")
    peer, url = target
    client = await make_client()
    assert (await post(client, "/", payload({"cmd": f"hey -n 1 -c 1 {url}"})))[0] == 202
    await client.app[RUNNER_KEY].wait_idle()
    assert peer.requests == 1


async def test_shell_metacharacters_in_cmd_never_reach_a_shell(
    make_client: MakeClient, target: tuple[Target, str], tmp_path: Path
) -> None:
    require_binary("hey")
    _, url = target
    pwned = tmp_path / "pwned"
    client = await make_client()
    for command, status in (
        (f"hey -n 1 -c 1 {url}; touch {pwned}", 403),
        (f"hey -n 1 -c 1 {url} && touch {pwned}", 403),
        (f"hey -n 1 -c 1 {url}$(touch {pwned})", 400),
        (f"hey -n 1 -c 1 {url}`touch {pwned}`", 400),
        (f"hey -n 1 -c 1 {url} | touch {pwned}", 403),
        (f"hey -n 1 -c 1 {url} > {pwned}", 400),
    ):
        assert (await post(client, "/", payload({"cmd": command})))[0] == status, command
    await client.app[RUNNER_KEY].wait_idle()
    assert not pwned.exists()


async def test_programs_off_the_allow_list_are_refused(
    make_client: MakeClient, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    client = await make_client()
    status, text = await post(client, "/", payload({"cmd": f"sh -c 'touch {pwned}'"}))
    assert status == 403
    assert "program 'sh' is not allowed" in text
    assert "--allow-program sh" in text
    await client.app[RUNNER_KEY].wait_idle()
    assert not pwned.exists()


async def test_the_configured_program_list_is_the_allow_list(make_client: MakeClient) -> None:
    client = await make_client(allowed_programs=("true",))
    assert (await post(client, "/", payload({"cmd": "true"})))[0] == 202
    assert (await post(client, "/", payload({"cmd": "hey http://x"})))[0] == 403


async def test_a_running_task_is_not_started_twice(
    make_client: MakeClient, target: tuple[Target, str]
) -> None:
    require_binary("hey")
    peer, url = target
    peer.release = asyncio.Event()
    client = await make_client()
    task = payload({"cmd": f"hey -n 1 -c 1 {url}"})
    assert await post(client, "/", task) == (202, "task started")
    await asyncio.wait_for(peer.arrivals.get(), 30)  # the first hey now waits inside the target
    assert await post(client, "/", task) == (202, "task already running")
    other_canary = {**task, "name": "other"}
    assert await post(client, "/", other_canary) == (202, "task started")
    await asyncio.wait_for(peer.arrivals.get(), 30)
    peer.release.set()
    await client.app[RUNNER_KEY].wait_idle()
    assert peer.requests == 2
    assert await post(client, "/", task) == (202, "task started"), "finished tasks can run again"
    await client.app[RUNNER_KEY].wait_idle()


async def test_bash_without_allow_bash_is_parsed_and_runs_only_allow_listed_programs(
    make_client: MakeClient, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    client = await make_client()
    status, text = await post(client, "/", payload({"type": "bash", "cmd": f"touch {marker}"}))
    assert status == 403
    assert "program 'touch' is not allowed" in text
    assert not marker.exists()
    shown = await post(
        client, "/", payload({"type": "bash", "cmd": "sleep 0 && test 1 = 1", "logCmdOutput": "1"})
    )
    assert shown == (200, "")


async def test_bash_runs_when_allowed_and_reports_failures(
    make_client: MakeClient, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    client = await make_client(allow_bash=True)
    ok = await post(client, "/", payload({"type": "bash", "cmd": f"touch {marker} && echo hi"}))
    assert ok == (200, "")
    assert marker.exists()
    shown = await post(
        client, "/", payload({"type": "bash", "cmd": "echo hi", "returnCmdOutput": "true"})
    )
    assert shown == (200, "hi\n")
    failed = await post(client, "/", payload({"type": "bash", "cmd": "echo bad; exit 3"}))
    assert failed == (500, "command echo bad; exit 3 failed: bad: exit status 3")


async def test_a_task_running_past_the_timeout_is_killed(make_client: MakeClient) -> None:
    client = await make_client(allow_bash=True, timeout_seconds=0.2)
    status, text = await post(client, "/", payload({"type": "bash", "cmd": "sleep 30"}))
    assert status == 500
    assert text.endswith("timeout after 0.2s")


async def test_kubectl_task_runs_kubectl_without_a_shell(make_client: MakeClient) -> None:
    require_binary("kubectl")
    client = await make_client()
    status, text = await post(
        client,
        "/",
        payload({"type": "kubectl", "cmd": "version --client", "returnCmdOutput": "true"}),
    )
    assert status == 200
    assert "Client Version" in text


async def test_unknown_task_type_is_a_400(make_client: MakeClient) -> None:
    client = await make_client()
    assert await post(client, "/", payload({"type": "nuke", "cmd": "x"})) == (
        400,
        "unknown task type nuke",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (payload(), "metadata not found in payload"),
        (payload({}), "metadata not found in payload"),
        (payload({"type": "cmd"}), "cmd not found in metadata of cmd task"),
        (payload({"cmd": "hey 'unclosed"}), "cannot parse cmd"),
        ([1, 2], "expected a JSON object"),
    ],
)
async def test_bad_task_requests_are_400_with_a_reason(
    make_client: MakeClient, body: Any, reason: str
) -> None:
    client = await make_client()
    status, text = await post(client, "/", body)
    assert status == 400
    assert reason in text


async def test_unparsable_json_is_a_400(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await post(client, "/gate/check", b"{not json"))[0] == 400


async def test_gate_open_check_close_round_trip(make_client: MakeClient) -> None:
    client = await make_client()
    canary = payload()
    assert await post(client, "/gate/check", canary) == (403, "Forbidden")
    assert await post(client, "/gate/open", canary) == (202, "")
    assert await post(client, "/gate/check", canary) == (200, "Approved")
    assert await post(client, "/gate/check", {**canary, "namespace": "prod"}) == (403, "Forbidden")
    assert await post(client, "/rollback/check", canary) == (403, "Forbidden")
    assert await post(client, "/gate/close", canary) == (202, "")
    assert await post(client, "/gate/check", canary) == (403, "Forbidden")


async def test_gate_approve_always_approves_and_halt_always_halts(make_client: MakeClient) -> None:
    client = await make_client()
    assert await post(client, "/gate/approve", payload()) == (200, "OK")
    assert await post(client, "/gate/halt", payload()) == (403, "Forbidden")


async def test_rollback_open_check_close_round_trip(make_client: MakeClient) -> None:
    client = await make_client()
    canary = payload()
    assert await post(client, "/rollback/check", canary) == (403, "Forbidden")
    assert await post(client, "/rollback/open", canary) == (202, "")
    assert await post(client, "/rollback/check", canary) == (200, "Approved")
    assert await post(client, "/gate/check", canary) == (403, "Forbidden")
    assert await post(client, "/rollback/close", canary) == (202, "")
    assert await post(client, "/rollback/check", canary) == (403, "Forbidden")


async def test_namespaces_outside_the_expression_are_forbidden(make_client: MakeClient) -> None:
    client = await make_client(namespace_regexp="team-a-.*")
    inside, outside = payload(namespace="team-a-dev"), payload(namespace="kube-system")
    assert await post(client, "/gate/open", outside) == (403, "Forbidden")
    assert await post(client, "/gate/open", inside) == (202, "")
    assert await post(client, "/", {**outside, "metadata": {"cmd": "hey x"}}) == (403, "Forbidden")
    assert await post(client, "/rollback/check", outside) == (403, "Forbidden")


async def test_metrics_count_requests(make_client: MakeClient) -> None:
    client = await make_client()
    await post(client, "/gate/check", payload())
    text = await (await client.get("/metrics")).text()
    assert 'coalmine_loadtester_requests_total{code="403",endpoint="/gate/check"} 1.0' in text
