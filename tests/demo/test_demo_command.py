"""`coalmine demo` as a user runs it: a subprocess without a terminal, so it prints plain lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from binaries import require_binary

DEMO = [sys.executable, "-m", "coalmine", "demo", "--interval", "1s"]


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def summary(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        key, separator, value = line.partition(":")
        if separator and key in {"Result", "Steps", "Checks", "Primary", "Metrics", "Duration"}:
            lines[key] = value.strip()
    return lines


@pytest.mark.parametrize(
    ("scenario", "primary"),
    [
        ("service", "Service podinfo-primary selector app=podinfo-green"),
        ("externalname", "Service podinfo-primary externalName podinfo.green-cluster.example.com"),
        ("deployment", "Deployment podinfo-primary image ghcr.io/stefanprodan/podinfo:6.6.0"),
    ],
)
def test_a_healthy_release_is_promoted_step_by_step(scenario: str, primary: str) -> None:
    result = run_demo("--scenario", scenario, "--metrics", "http")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = summary(result.stdout)
    assert lines["Result"] == "Succeeded (expected Succeeded)"
    assert lines["Steps"] == "10% → 20% → 40% → 60% → 80% → promoted"
    assert lines["Primary"] == primary
    assert lines["Checks"].endswith("passed, 0 failed")
    done = {
        # Service targets say what happened to the traffic; Deployments keep Flagger's text.
        "deployment": "Promotion completed! Scaling down podinfo.default",
    }.get(
        scenario,
        "Promotion completed! podinfo-primary.default now serves the revision of podinfo.default",
    )
    assert f"event Normal: {done}" in result.stdout
    # The canary's own traffic was measured: a success rate of 100% was read.
    assert "success-rate 100.00%" in lines["Metrics"]


def test_a_failing_green_is_rolled_back_and_the_primary_keeps_blue() -> None:
    result = run_demo("--scenario", "rollback", "--metrics", "http")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = summary(result.stdout)
    assert lines["Result"] == "Failed (expected Failed)"
    assert lines["Steps"].endswith("→ rolled back")
    assert lines["Checks"].endswith("2 failed")
    assert lines["Primary"] == "Service podinfo-primary selector app=podinfo-blue"
    assert "Rolling back podinfo.default failed checks threshold reached 2" in result.stdout
    assert "Halt podinfo.default advancement success-rate" in result.stdout


def test_metrics_come_from_a_real_prometheus_when_asked() -> None:
    require_binary("prometheus")
    result = run_demo("--scenario", "service", "--metrics", "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics: Prometheus http://127.0.0.1:" in result.stdout
    lines = summary(result.stdout)
    assert lines["Result"] == "Succeeded (expected Succeeded)"
    assert "success-rate 100.00%" in lines["Metrics"]


def test_asking_for_prometheus_without_the_binary_is_a_clear_error() -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    result = run_demo("--metrics", "prometheus", env=env)
    assert result.returncode == 2
    assert "prometheus binary is not on the PATH" in result.stderr


def test_a_bad_interval_is_refused_with_the_option_named() -> None:
    result = run_demo("--interval", "soon")
    assert result.returncode == 2
    assert "--interval" in result.stderr


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_keep_running_serves_the_cluster_until_ctrl_c_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    metrics = "prometheus" if os.environ.get("CI") == "true" else "auto"
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [*DEMO, "--metrics", metrics, "--keep-running"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C to stop" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        text = output.read_text()
        kubeconfig = text.split("kubeconfig: ", 1)[1].split()[0]
        assert Path(kubeconfig).exists()
        kubectl = require_binary("kubectl")
        got = subprocess.run(
            [
                kubectl,
                f"--kubeconfig={kubeconfig}",
                f"--cache-dir={tmp_path / 'kube-cache'}",
                "get",
                "canary",
                "podinfo",
                "-o",
                "jsonpath={.status.phase}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert got.stdout == "Succeeded", got.stderr
        children = _children(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, output.read_text()
        assert not Path(kubeconfig).exists()
        for child in children:
            assert (
                not Path(f"/proc/{child}").exists()
                or "zombie" in Path(f"/proc/{child}/status").read_text()
            ), f"child {child} survived"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_during_the_release_stops_everything_with_code_130(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [*DEMO, "--metrics", "http"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Advance podinfo.default canary weight 10" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130, output.read_text()
        assert "interrupted" in output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
