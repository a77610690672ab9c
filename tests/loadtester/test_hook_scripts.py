"""Flagger's `cmd`/`bash` hooks parsed by the bash grammar and run as argv pipelines.

The shapes come from Flagger's docs and tutorials; each must parse, pass the default allow-list
and give the argv a shell would give."""

from __future__ import annotations

import pytest

from binaries import require_binary
from coalmine.loadtester import LoadTesterConfig, Refusal, Task, build_task
from coalmine.loadtester.pipeline import expand, run_script
from coalmine.loadtester.shell import AndOr, Pipeline, Redirect, ShellError, commands_of, parse

from .loadtester_client import MakeClient, Target, payload, post

SIGNED = LoadTesterConfig(signing_keys=(b"k" * 16,))


def installed(program: str) -> str:
    return f"/usr/bin/{program}"


def argvs(task: Task | Refusal) -> list[list[str]]:
    assert isinstance(task, Task), task
    return [
        [text for word in command.words for text in expand(word, {})]
        for command in commands_of(task.script)
    ]


@pytest.mark.parametrize(
    ("task_type", "cmd", "expected"),
    [
        (
            "bash",
            "curl -sd 'test' http://podinfo-canary:9898/token | grep token",
            [["curl", "-sd", "test", "http://podinfo-canary:9898/token"], ["grep", "token"]],
        ),
        (
            "cmd",
            "hey -z 1m -q 10 -c 2 -H 'Cookie: canary=always' http://app.example.com/",
            [["hey", "-z", "1m", "-q", "10", "-c", "2", "-H", "Cookie: canary=always",
              "http://app.example.com/"]],
        ),
        (
            "cmd",
            "hey -z 1m -q 10 -c 2 -h2 -host app.example.com http://apisix-gateway.apisix/api/info",
            [["hey", "-z", "1m", "-q", "10", "-c", "2", "-h2", "-host", "app.example.com",
              "http://apisix-gateway.apisix/api/info"]],
        ),
        (
            "cmd",
            "ghz -z 1m -q 10 -c 2 --insecure --proto=/tmp/ghz/health.proto "
            "--call=grpc.health.v1.Health/Check podinfo-canary.test:9898",
            [["ghz", "-z", "1m", "-q", "10", "-c", "2", "--insecure",
              "--proto=/tmp/ghz/health.proto", "--call=grpc.health.v1.Health/Check",
              "podinfo-canary.test:9898"]],
        ),
        (
            "bash",
            "grpc_health_probe -connect-timeout=1s -addr=podinfo-canary.test:9898",
            [["grpc_health_probe", "-connect-timeout=1s", "-addr=podinfo-canary.test:9898"]],
        ),
        ("bash", "bats /tests", [["bats", "/tests"]]),
        ("helmv3", "test podinfo -n test", [["helm", "test", "podinfo", "-n", "test"]]),
        ("helm", "test podinfo --cleanup", [["helm", "test", "podinfo", "--cleanup"]]),
        (
            "kubectl",
            "get deploy podinfo-canary -o name",
            [["kubectl", "get", "deploy", "podinfo-canary", "-o", "name"]],
        ),
        (
            "bash",
            'curl -s http://podinfo-canary:9898/api/info | jq -r ".version" | grep -E "^6\\."',
            [["curl", "-s", "http://podinfo-canary:9898/api/info"], ["jq", "-r", ".version"],
             ["grep", "-E", "^6\\."]],
        ),
        (
            "bash",
            "sleep 5 && test -n \"ok\" || exit_code_ignored=1; wrk -t2 -c10 -d30s --latency "
            "http://podinfo-canary:9898/",
            [["sleep", "5"], ["test", "-n", "ok"], [],
             ["wrk", "-t2", "-c10", "-d30s", "--latency", "http://podinfo-canary:9898/"]],
        ),
    ],
)  # fmt: skip
def test_flaggers_hook_shapes_parse_and_are_allow_listed(
    task_type: str, cmd: str, expected: list[list[str]]
) -> None:
    task = build_task(payload({"type": task_type, "cmd": cmd}), SIGNED, installed)
    assert argvs(task) == expected


@pytest.mark.parametrize(
    ("cmd", "construct"),
    [
        ("curl $(cat /etc/hostname)", "command substitution"),
        ("curl `cat /etc/hostname`", "command substitution"),
        ("curl http://x/ > /tmp/out", "redirection '> /tmp/out'"),
        ("curl http://x/ >> /tmp/out", "redirection '>> /tmp/out'"),
        ("grep token < /etc/hostname", "redirection '< /etc/hostname'"),
        ("grep token <<< abc", "here-string"),
        ("sleep 100 &", "background job"),
        ("(sleep 1)", "subshell"),
        ("{ sleep 1; }", "command group"),
        ("if test 1; then sleep 1; fi", "if statement"),
        ("for i in 1 2; do sleep $i; done", "for loop"),
        ("f() { sleep 1; }", "function definition"),
        ("[ -f /etc/hostname ]", "test brackets"),
        ("export X=1", "declaration"),
        ("curl http://x/$((1+2))", "arithmetic expansion"),
        ("curl ${X:-http://x/}", "parameter expansion '${X:-http://x/}'"),
        ("curl <(echo x)", "process substitution"),
        ("curl 'unclosed", "cannot parse cmd"),
        ("$PROGRAM http://x/", "a program name must be a literal word"),
    ],
)
def test_unsupported_constructs_are_a_400_naming_the_construct(cmd: str, construct: str) -> None:
    refusal = build_task(payload({"type": "bash", "cmd": cmd}), SIGNED, installed)
    assert isinstance(refusal, Refusal)
    assert refusal.status == 400
    assert construct in refusal.reason


def test_a_program_off_the_allow_list_anywhere_in_the_script_is_a_403() -> None:
    refusal = build_task(
        payload({"type": "bash", "cmd": "curl -s http://x/ | grep a && sh -c id"}),
        SIGNED,
        installed,
    )
    assert refusal == Refusal(
        403,
        "program 'sh' is not allowed on this load tester (allowed: hey, wrk, ghz, curl, grep, "
        "jq, grpc_health_probe, helm, kubectl, bats, sleep, test); start it with "
        "--allow-program sh to allow it",
    )


@pytest.mark.parametrize(
    ("word", "variables", "fields"),
    [
        ('"a b"c', {}, ["a bc"]),
        ("a\\ b", {}, ["a b"]),
        ("'$X'", {"X": "no"}, ["$X"]),
        ('"$X"', {"X": "one two"}, ["one two"]),
        ("$X", {"X": " one  two "}, ["one", "two"]),
        ("pre$X", {"X": "one two"}, ["preone", "two"]),
        ("$X", {}, []),
        ('""', {}, [""]),
        ('"${X}"-y', {"X": "x"}, ["x-y"]),
    ],
)
def test_words_expand_as_sh_expands_them(
    word: str, variables: dict[str, str], fields: list[str]
) -> None:
    (command,) = commands_of(parse(f"prog {word}"))
    assert [text for w in command.words[1:] for text in expand(w, variables)] == fields


async def test_lists_pipelines_and_variables_follow_sh_semantics() -> None:
    require_binary("grep")
    script = parse(
        "X='two words'; test \"$X\" = 'two words' && grep -c . /dev/null || "
        'sleep 0; ! grep -q nothing /dev/null && test -n "$X" 2>&1 >/dev/null'
    )
    outcome = await run_script(script, 30, environment={"PATH": "/usr/bin:/bin"})
    assert (outcome.exit_code, outcome.output) == (0, "0\n")
    failing = await run_script(parse("sleep 0 && grep -q x /dev/null; test 1 = 2"), 30)
    assert failing.exit_code == 1


async def test_a_nul_byte_never_reaches_exec() -> None:
    with pytest.raises(ShellError, match="NUL"):
        parse("curl http://x/\x00")


async def test_a_signed_curl_pipe_grep_returns_its_output(
    make_client: MakeClient, target: tuple[Target, str]
) -> None:
    require_binary("curl")
    _, url = target
    client = await make_client()
    hook = {
        "type": "bash",
        "cmd": f"URL={url}token; curl -sd 'test' \"$URL\" | grep -o 'tok[a-z]*' && sleep 0",
        "returnCmdOutput": "true",
    }
    assert await post(client, "/", payload(hook)) == (200, "token\n")
    hook["cmd"] = f"curl -sd 'test' {url}token | grep nothing || grep -c x /dev/null"
    status, text = await post(client, "/", payload(hook))
    assert status == 500
    assert text.endswith("failed: 0: exit status 1")


def test_negation_and_redirections_bind_as_in_bash() -> None:
    (first,) = parse("! grep a | grep b && grep c 2>&1 >/dev/null").items
    assert isinstance(first, AndOr)
    assert isinstance(first.first, Pipeline)
    assert first.first.negated, "! negates the whole first pipeline"
    assert [c.program for c in first.first.commands] == ["grep", "grep"]
    assert isinstance(first.second, Pipeline)
    (last,) = first.second.commands
    assert last.redirects == (Redirect(2, "stdout"), Redirect(1, "devnull"))
    (piped,) = parse("curl -s http://x/ | grep b 2>&1").items
    assert isinstance(piped, Pipeline)
    assert [c.redirects for c in piped.commands] == [(), (Redirect(2, "stdout"),)]
