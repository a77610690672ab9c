"""`coalmine check`: output format, positions, summary, exit status, stdin, directories, YAML errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coalmine.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "api" / "flagger_examples"

ISSUE_MANIFEST = """\
apiVersion: flagger.app/v1alpha3
kind: Canary
metadata: {name: podinfo}
spec:
  provider: kubernetes
  targetRef: {apiVersion: core/v1, kind: Service, name: podinfo}
  service: {port: 9898}
  canaryAnalysis: {interval: 10s, threshold: 2, iterations: 2, metrics: []}
"""

# Said for every Service-target canary (issue 13): which traffic follows the weights.
COVERAGE = (
    "provider kubernetes: no traffic follows the canary weights; only clients of podinfo-primary "
    "and podinfo-canary are kept apart, and every client of podinfo.default moves to a new "
    "revision as soon as the Service changes"
)

BAD_CANARY = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: passed-over}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898, foo: 1}
  analysis:
    interval: 1m
    threshold: 5
    stepWeights: [1, 20, 10, 200]
"""


def run_check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalmine", "check", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_the_v1alpha3_service_target_manifest_of_the_issue_passes(tmp_path: Path) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(ISSUE_MANIFEST)
    result = run_check("-f", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"{path}:5:3: warning: spec.provider: {COVERAGE}\n"
        "1 object checked, 1 problem (0 errors, 1 warning)\n"
    )


def test_every_flagger_documentation_example_passes() -> None:
    """Every provider of Flagger's examples has a router here: no example is refused."""
    result = run_check("-f", str(EXAMPLES))
    *problems, summary = result.stdout.splitlines()
    assert [line for line in problems if ": error: " in line] == []
    assert result.returncode == 0, result.stdout
    assert any(": warning: " in line for line in problems)  # the beta HPA versions, say
    assert int(summary.split()[0]) > 40


def test_problems_are_printed_at_the_line_and_column_of_their_field_and_errors_exit_1(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CANARY)
    result = run_check("-f", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:10:25: error: spec.service.foo: unknown field",
        "1 object checked, 1 problem (1 error, 0 warnings)",
    ]
    path.write_text(BAD_CANARY.replace(", foo: 1", ""))
    result = run_check("-f", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:14:26: error: spec.analysis.stepWeights[2]: "
        "must be greater than the previous step (10 <= 20)",
        f"{path}:14:30: warning: spec.analysis.stepWeights[3]: "
        "the last step is capped at 100, got 200",
        "1 object checked, 2 problems (1 error, 1 warning)",
    ]


def test_warnings_alone_exit_0_and_quiet_hides_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text(BAD_CANARY.replace(", foo: 1", "").replace("[1, 20, 10, 200]", "[1, 20, 200]"))
    assert main(["check", "-f", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}:14:26: warning: spec.analysis.stepWeights[2]: "
        "the last step is capped at 100, got 200\n"
        "1 object checked, 1 problem (0 errors, 1 warning)\n"
    )
    assert main(["check", "-q", "-f", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_stdin_is_read_with_dash() -> None:
    result = run_check("-f", "-", stdin=BAD_CANARY)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "-:10:25: error: spec.service.foo: unknown field"


def test_several_files_and_directories_are_checked_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ISSUE_MANIFEST)
    folder = tmp_path / "dir"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "bad.yml").write_text(BAD_CANARY)
    (folder / "notes.txt").write_text("not: [yaml")
    assert main(["check", "-f", str(good), "-f", str(folder)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{good}:5:3: warning: spec.provider: {COVERAGE}",
        f"{folder / 'nested' / 'bad.yml'}:10:25: error: spec.service.foo: unknown field",
        "2 objects checked, 2 problems (1 error, 1 warning)",
    ]


def test_yaml_syntax_errors_name_their_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(ISSUE_MANIFEST + "---\nkind: [Canary\n")
    assert main(["check", "-f", str(path)]) == 1
    coverage, line, summary = capsys.readouterr().out.splitlines()
    assert coverage == f"{path}:5:3: warning: spec.provider: {COVERAGE}"
    assert line.startswith(f"{path}:11:1: error: yaml: ")
    assert summary == "1 object checked, 2 problems (1 error, 1 warning)"


def test_unquoted_timestamps_stay_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exported.yaml"
    path.write_text(
        ISSUE_MANIFEST.replace(
            "metadata: {name: podinfo}",
            "metadata: {name: podinfo, creationTimestamp: 2024-01-01T00:00:00Z}",
        )
    )
    assert main(["check", "-f", str(path)]) == 0
    assert capsys.readouterr().out.endswith("1 object checked, 1 problem (0 errors, 1 warning)\n")


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-f", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cross_namespace_and_mesh_provider_options_reach_the_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text(
        BAD_CANARY.replace(", foo: 1", "").replace(
            "stepWeights: [1, 20, 10, 200]",
            "stepWeight: 10\n    metrics:\n"
            "    - {name: x, templateRef: {name: t, namespace: other}, thresholdRange: {max: 1}}",
        )
    )
    assert main(["check", "-f", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", "--no-cross-namespace-refs", "-f", str(path)]) == 1
    assert "cross-namespace references are blocked" in capsys.readouterr().out
    assert main(["check", "--mesh-provider", "nginx", "-f", str(path)]) == 1
    assert "spec.ingressRef: required by the nginx provider" in capsys.readouterr().out


def test_deeply_nested_yaml_is_reported_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nspec: " + "[" * 5000 + "]" * 5000
    )
    assert main(["check", "-f", str(path)]) == 1
    (line,) = capsys.readouterr().out.splitlines()[:-1]
    assert line.startswith(f"{path}:3:")
    assert line.endswith(": error: yaml: nested too deeply")


def test_non_printable_characters_are_reported_with_their_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "binary.yaml"
    path.write_text("a: b\n\x1f")
    assert main(["check", "-f", str(path)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{path}:2:1: error: yaml: special characters are not allowed (U+001F)"
    )


def test_items_of_a_kubectl_list_are_checked_with_their_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "list.yaml"
    canaries = list(yaml.safe_load_all(BAD_CANARY))
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": canaries}))
    assert main(["check", "-f", str(path)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{path}:22:7: error: items[1].spec.service.foo: unknown field"
    )
