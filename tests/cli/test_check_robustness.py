"""`coalmine check` never prints a traceback: hostile YAML, wrong Canaries, closed pipes, and a
fuzz of a few thousand inputs; plus the summary, JSON output and exit codes a tool relies on."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalmine.cli.check import (
    EXIT_NOTHING_CHECKED,
    EXIT_OK,
    EXIT_PROBLEMS,
    check_bytes,
    json_report,
)

CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            "webhooks": [{"name": "load", "url": "http://hooks/", "timeout": "5s"}],
        },
    },
}
FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when built with it


def run_check(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "coalmine", "check", *args],
        capture_output=True,
        input=stdin,
        timeout=60,
    )


BILLION_LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
).encode()


@pytest.mark.parametrize(
    ("stdin", "first_line"),
    [
        (b"a: !!float x\n", "-:1:4: error: yaml: 'x' is not a valid !!float"),
        (b"a: !!int x\n", "-:1:4: error: yaml: 'x' is not a valid !!int"),
        (b"a: !!timestamp x\n", "-:1:4: error: yaml: 'x' is not a valid !!timestamp"),
        (b"a: !!binary \xc3\xa9\n", "-:1:4: error: yaml: failed to convert base64 data"),
        (b"a: &x [1, *x]\n", "-:1:4: error: yaml: an alias refers to itself"),
        (BILLION_LAUGHS, "error: yaml: excessive aliasing"),
        (b"spec: " + b"[" * 3000 + b"]" * 3000, "error: yaml: nested too deeply"),
        (b"a: b\nc: \xff\n", "-:2:4: error: yaml: not UTF-8 (byte ff)"),
        (b"- just\n- a list\n", "-:1:1: error: document: must be an object"),
        (b"a: [unclosed\n", "-:2:1: error: yaml: while parsing a flow sequence"),
    ],
)
def test_hostile_input_on_stdin_is_an_error_with_a_position_not_a_traceback(
    stdin: bytes, first_line: str
) -> None:
    result = run_check("-f", "-", stdin=stdin)
    assert result.returncode == EXIT_PROBLEMS, result.stderr
    assert b"Traceback" not in result.stderr
    assert first_line in result.stdout.decode().splitlines()[0]
    assert result.stdout.decode().splitlines()[-1].startswith("0 objects checked, 1 problem ")


def test_a_closed_pipe_ends_output_quietly_and_the_exit_status_still_tells(
    tmp_path: Path,
) -> None:
    noisy = copy.deepcopy(CANARY)
    del noisy["spec"]["analysis"]["metrics"][0]["thresholdRange"]  # a warning each
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump_all([noisy] * 2000))  # far more than a pipe buffer
    broken = copy.deepcopy(CANARY)
    broken["spec"]["targetRef"]["name"] = ""
    (tmp_path / "z-broken.yaml").write_text(yaml.safe_dump(broken))
    process = subprocess.Popen(
        [sys.executable, "-m", "coalmine", "check", "-f", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    line = process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == EXIT_PROBLEMS  # the error after the pipe closed counts
    assert b": warning: " in line
    assert b"Traceback" not in stderr
    assert b"BrokenPipeError" not in stderr


def test_nothing_to_check_warns_and_exits_3(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    others = tmp_path / "configmap.yaml"
    others.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    folder = tmp_path / "no-yaml"
    folder.mkdir()
    (folder / "notes.txt").write_text("kind: Canary")
    for target in (empty, others, folder):
        result = run_check("-f", str(target))
        assert result.returncode == EXIT_NOTHING_CHECKED, result
        assert result.stdout.decode() == "0 objects checked, no problems\n"
        assert b"warning: nothing checked: no Canary, MetricTemplate or AlertProvider" in (
            result.stderr
        )
    assert b"no *.yaml, *.yml or *.json files" in run_check("-f", str(folder)).stderr


def test_json_output_has_the_documented_schema(tmp_path: Path) -> None:
    bad = copy.deepcopy(CANARY)
    analysis = bad["spec"]["analysis"]
    analysis["stepweight"] = analysis.pop("stepWeight")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False) + "---\na: !!float x\n")
    result = run_check("-f", str(path), "-o", "json")
    assert result.returncode == EXIT_PROBLEMS
    report = json.loads(result.stdout)
    assert report["version"] == 1
    assert report["summary"] == {
        "files": 1,
        "objects": 1,
        "errors": 2,
        "warnings": 0,
        "exitCode": 1,
    }
    misspelt, tag = report["problems"]
    assert misspelt == {
        "file": str(path),
        "line": 24,
        "column": 5,
        "severity": "error",
        "path": "spec.analysis.stepweight",
        "message": 'unknown field; did you mean "stepWeight"?',
        "kind": "Canary",
        "name": "podinfo",
        "namespace": "test",
    }
    assert tag["path"] is None
    assert tag["message"] == "'x' is not a valid !!float"
    assert (tag["line"], tag["column"]) == (26, 4)


def test_the_summary_counts_objects_errors_and_warnings(tmp_path: Path) -> None:
    warned = copy.deepcopy(CANARY)
    warned["spec"]["analysis"]["metrics"][0]["thresholdRange"] = {}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([CANARY, warned]))
    result = run_check("-f", str(path))
    assert result.returncode == EXIT_OK
    assert result.stdout.decode().splitlines()[-1] == (
        "2 objects checked, 1 problem (0 errors, 1 warning)"
    )
    quiet = run_check("-q", "-f", str(path))
    assert quiet.returncode == EXIT_OK
    assert quiet.stdout == b""


# --- fuzz -------------------------------------------------------------------------------------

TOKENS = [
    "a", "kind", "spec", "Canary", ":", ": ", " ", "  ", "\n", "- ", "-", "!!float", "!!int",
    "!!timestamp", "!!binary", "!!str", "!!map", "!!seq", "!!set", "!!omap", "!!python/name:x",
    "!local", "&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ",", "'", '"', "#", "---", "...",
    "? ", "|", ">", "<<: ", "1", "0x1f", "1e999", "9" * 30, ".nan", "~", "x", "\t", "%YAML 1.1",
    "é", "\x00", "\x85", "\ufeff", "\\", "=", "@", "`",
]  # fmt: skip
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["", "5", "1m", "99999999999999999999m", "1441m", "http://x/", "Service"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELD_PATHS: list[tuple[str | int, ...]] = [
    ("spec", "targetRef", "name"),
    ("spec", "targetRef", "kind"),
    ("spec", "service", "port"),
    ("spec", "service"),
    ("spec", "analysis", "interval"),
    ("spec", "analysis", "threshold"),
    ("spec", "analysis", "stepWeight"),
    ("spec", "analysis", "stepweight"),
    ("spec", "analysis", "metrics", 0, "thresholdRange"),
    ("spec", "analysis", "metrics", 0, "name"),
    ("spec", "analysis", "webhooks", 0, "timeout"),
    ("spec", "analysis", "webhooks", 0, "url"),
    ("spec", "provider"),
    ("metadata", "name"),
    ("metadata",),
    ("apiVersion",),
]


def _container_at(document: Any, parents: list[str | int]) -> Any:
    """The dict or list at `parents`, or None once an earlier change replaced the way there."""
    node = document
    for part in parents:
        if (isinstance(part, int) and isinstance(node, list) and part < len(node)) or (
            isinstance(part, str) and isinstance(node, dict) and part in node
        ):
            node = node[part]
        else:
            return None
    return node


@st.composite
def wrong_canaries(draw: st.DrawFn) -> str:
    """A well-formed Canary with a few fields set to arbitrary values, as YAML text."""
    document = copy.deepcopy(CANARY)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        *parents, last = draw(st.sampled_from(FIELD_PATHS))
        node = _container_at(document, parents)
        if (isinstance(node, dict) and isinstance(last, str)) or (
            isinstance(node, list) and isinstance(last, int) and last < len(node)
        ):
            node[last] = draw(VALUES)
    text = yaml.dump(document, Dumper=FAST_DUMPER, sort_keys=False)
    if draw(st.booleans()):  # a tag or alias where a plain value was
        text = text.replace("5s", draw(st.sampled_from(["!!float 5s", "!!int x", "*z", "&z 5s"])))
    return text


def assert_check_answers(data: bytes) -> None:
    """What `coalmine check` does with a file's bytes: a documented exit code, placed problems,
    one line each, and a JSON report (argparse and files are the subprocess tests' part)."""
    result = check_bytes(data, "input.yaml")
    code = result.exit_code()
    assert code in (EXIT_OK, EXIT_PROBLEMS, EXIT_NOTHING_CHECKED)
    assert (code == EXIT_PROBLEMS) == any(f.severity == "error" for f in result.findings)
    for finding in result.findings:
        assert finding.line >= 1
        assert finding.column >= 1
        assert finding.text().startswith(f"input.yaml:{finding.line}:{finding.column}: ")
        assert "\n" not in finding.text()
        assert "Traceback" not in finding.text()
    assert "\n" not in result.summary()
    json.dumps(json_report(result, code))


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=YAMLISH | st.text(max_size=60))
def test_fuzz_yamlish_text_never_crashes(text: str) -> None:
    assert_check_answers(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_fuzz_arbitrary_bytes_never_crash(data: bytes) -> None:
    assert_check_answers(data)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=wrong_canaries())
def test_fuzz_wrong_canaries_never_crash(text: str) -> None:
    assert_check_answers(text.encode())
