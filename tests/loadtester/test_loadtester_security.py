"""The load tester under hostile input: unsigned/stale requests, NUL, deep JSON, slow clients,
task floods, and the argument policies that keep unsigned requests away from files and scripts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from binaries import require_binary
from coalmine.hooks.signing import sign_headers
from coalmine.loadtester import LoadTesterConfig, create_app
from coalmine.loadtester.server import RUNNER_KEY
from coalmine.loadtester.serving import serve, stop

from .loadtester_client import KEY, MakeClient, Target, payload, post


async def test_unsigned_request_is_refused(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("/", "/gate/open", "/gate/check", "/rollback/open"):
        status, text = await post(client, path, payload({"cmd": "sleep 0"}), signed=False)
        assert status == 401, path
        assert "not signed" in text
    assert (await post(client, "/gate/check", payload()))[0] == 403, "gate still closed"


async def test_stale_or_foreign_signatures_are_refused_even_when_unsigned_is_accepted(
    make_client: MakeClient,
) -> None:
    client = await make_client(accept_unsigned=True)
    stale = await post(client, "/gate/open", payload(), signed_at=time.time() - 600)
    assert stale[0] == 401
    assert "stale" in stale[1]
    foreign = await post(client, "/gate/open", payload(), key=b"attacker-key-0123456789")
    assert foreign[0] == 401
    assert (await post(client, "/gate/check", payload()))[0] == 403


async def test_the_namespace_check_reads_the_signed_body(make_client: MakeClient) -> None:
    client = await make_client(namespace_regexp="test")
    raw = json.dumps(payload(namespace="test")).encode()
    headers = sign_headers([KEY], raw)
    forged = raw.replace(b'"test"', b'"prod"')
    response = await client.post("/gate/open", data=forged, headers=headers)
    assert response.status == 401


@pytest.mark.parametrize("namespace", ["test\n", "test-other", "atest", "", "TEST"])
async def test_the_namespace_expression_must_match_the_whole_namespace(
    make_client: MakeClient, namespace: str
) -> None:
    client = await make_client(namespace_regexp="test")
    assert await post(client, "/gate/open", payload(namespace=namespace)) == (403, "Forbidden")
    assert await post(client, "/gate/open", payload(namespace="test")) == (202, "")


async def test_a_nul_byte_in_cmd_is_a_400(make_client: MakeClient) -> None:
    client = await make_client(accept_unsigned=True)
    for signed in (True, False):
        status, text = await post(
            client, "/", payload({"cmd": "curl http://127.0.0.1:1/\x00x"}), signed=signed
        )
        assert (status, text) == (400, "cmd contains a NUL byte")


async def test_deeply_nested_json_is_a_400_not_a_500(make_client: MakeClient) -> None:
    client = await make_client(accept_unsigned=True, max_body_bytes=1024 * 1024)
    deep = b"[" * 100_000 + b"]" * 100_000
    for signed in (True, False):
        status, text = await post(client, "/", deep, signed=signed)
        assert status == 400
        assert "nested over 32" in text
    inside = b'{"name": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "namespace": "test"}'
    assert await post(client, "/gate/open", inside) == (202, ""), "brackets in strings count not"


async def test_an_oversized_body_is_a_413(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=1024)
    status, _ = await post(client, "/", payload({"cmd": "sleep 0", "pad": "x" * 4096}))
    assert status == 413


@pytest.fixture
async def served() -> AsyncIterator[tuple[web.Application, int]]:
    config = LoadTesterConfig(
        signing_keys=(KEY,), header_timeout_seconds=0.3, body_timeout_seconds=0.3
    )
    app = create_app(config)
    runner, server, port = await serve(app, "127.0.0.1", 0)
    yield app, port
    await stop(runner, server)


async def test_a_client_sending_headers_slowly_is_disconnected(
    served: tuple[web.Application, int],
) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /gate/check HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 30) == b"", "the server closed the connection"
    writer.close()
    healthy_reader, healthy_writer = await asyncio.open_connection("127.0.0.1", port)
    healthy_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(healthy_reader.read(), 30)).startswith(b"HTTP/1.1 200")
    healthy_writer.close()


async def test_a_client_sending_the_body_slowly_gets_a_408(
    served: tuple[web.Application, int],
) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /gate/check HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 30)
    assert answer.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_task_caps_answer_429_globally_and_per_namespace(make_client: MakeClient) -> None:
    client = await make_client(max_tasks=2, max_tasks_per_namespace=1)
    first = await post(client, "/", payload({"cmd": "sleep 30"}, namespace="a"))
    assert first == (202, "task started")
    assert await post(client, "/", payload({"cmd": "sleep 30"}, namespace="a")) == (
        202,
        "task already running",
    )
    same_namespace = await post(client, "/", payload({"cmd": "sleep 31"}, namespace="a"))
    assert same_namespace[0] == 429
    assert "namespace 'a'" in same_namespace[1]
    assert (await post(client, "/", payload({"cmd": "sleep 30"}, namespace="b")))[0] == 202
    everywhere = await post(client, "/", payload({"cmd": "sleep 30"}, namespace="c"))
    assert everywhere[0] == 429
    assert "too many tasks running (2)" in everywhere[1]
    blocking = await post(client, "/", payload({"type": "bash", "cmd": "sleep 0"}, "c"))
    assert blocking[0] == 429, "blocking tasks count too"
    await client.app[RUNNER_KEY].stop()
    assert (await post(client, "/", payload({"type": "bash", "cmd": "sleep 0"}, "c")))[0] == 200


async def test_unknown_task_types_are_a_400_signed_or_not(make_client: MakeClient) -> None:
    client = await make_client(accept_unsigned=True)
    for signed in (True, False):
        assert await post(client, "/", payload({"type": "nuke", "cmd": "x"}), signed=signed) == (
            400,
            "unknown task type nuke",
        )


async def test_an_unsigned_load_test_runs_within_the_policy(
    make_client: MakeClient, target: tuple[Target, str]
) -> None:
    require_binary("hey")
    peer, url = target
    client = await make_client(accept_unsigned=True)
    started = await post(client, "/", payload({"cmd": f"hey -n 2 -c 1 -m GET {url}"}), signed=False)
    assert started == (202, "task started")
    await client.app[RUNNER_KEY].wait_idle()
    assert peer.requests == 2


async def test_an_unsigned_curl_pipe_grep_check_runs_within_the_policy(
    make_client: MakeClient, target: tuple[Target, str]
) -> None:
    require_binary("curl")
    _, url = target
    client = await make_client(accept_unsigned=True)
    check = payload({"type": "bash", "cmd": f"curl -sd 'test' {url}token | grep -q token"})
    assert await post(client, "/", check, signed=False) == (200, "")


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("curl -s -o {out} {url}", "option -o writes a file"),
        ("curl -so{out} {url}", "option -o writes a file"),
        ("curl --output={out} {url}", "option --output is not on the allow-list"),
        ("curl --data-binary @/etc/hostname {url}", "reads a local file"),
        ("curl -sd @/etc/hostname {url}", "reads a local file"),
        ("curl -H @/etc/hostname {url}", "reads a local file"),
        ("curl -w '%output{{{out}}}x' {url}", "writes a local file"),
        ("curl -K /etc/hostname {url}", "option -K reads a config file"),
        ("curl file:///etc/hostname", "must be an http:// or https:// URL"),
        ("hey -D /etc/hostname {url}", "option -D sends a local file"),
        ("hey -D=/etc/hostname {url}", "option -D sends a local file"),
        ("wrk -s {out} {url}", "option -s runs a Lua script"),
        ("wrk --script={out} {url}", "option --script runs a Lua script"),
        ("ghz --protoset {out} --call a.B/C 127.0.0.1:1", "option --protoset reads a local file"),
        ("ghz --call a.B/C unix:///var/run/docker.sock", "must be host:port"),
        ("curl -s {url} | grep token /etc/hostname", "at most 1 operand"),
        ("curl -s {url} | grep -f /etc/hostname", "option -f reads a local file"),
        ("jq . /etc/hostname", "needs a signed request"),
        ("kubectl config view", "needs a signed request"),
        ("test -f /etc/hostname", "needs a signed request"),
        ("X=1 curl {url}", "variables and assignments need a signed request"),
    ],
)
async def test_unsigned_requests_never_read_or_write_files_or_run_scripts(
    make_client: MakeClient, target: tuple[Target, str], tmp_path: Path, command: str, named: str
) -> None:
    peer, url = target
    out = tmp_path / "written"
    client = await make_client(accept_unsigned=True)
    status, text = await post(
        client, "/", payload({"cmd": command.format(out=out, url=url)}), signed=False
    )
    assert status == 403, text
    assert named in text
    assert "not allowed in an unsigned request" in text or "signed request" in text
    await client.app[RUNNER_KEY].wait_idle()
    assert not out.exists()
    assert peer.requests == 0


@pytest.mark.parametrize("task_type", ["kubectl", "helm", "helmv3"])
async def test_unsigned_kubectl_and_helm_tasks_are_refused(
    make_client: MakeClient, task_type: str
) -> None:
    client = await make_client(accept_unsigned=True)
    cmd = "config set-credentials x --exec-command=/bin/sh"
    status, text = await post(client, "/", payload({"type": task_type, "cmd": cmd}), signed=False)
    assert (status, text) == (403, f"{task_type} tasks need a signed request")


async def test_unsigned_bash_never_reaches_a_real_bash(
    make_client: MakeClient, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    client = await make_client(accept_unsigned=True, allow_bash=True)
    bash = payload({"type": "bash", "cmd": f"touch {marker}"})
    status, text = await post(client, "/", bash, signed=False)
    assert status == 403
    assert "'touch' is not allowed" in text
    assert not marker.exists()
