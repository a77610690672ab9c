"""Flagger's Go-style flags: what its Helm chart renders starts the controller, and each tuning
flag (log level and encoding, QPS/burst, threadiness, master) does what Flagger's does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from clusters import devcluster_for_test
from coalmine import __version__
from coalmine.controller.jobs import JobManager
from coalmine.controller.logs import configure_logging
from coalmine.controller.settings import go_style_argv, parse_settings
from coalmine.kube.api import load_config
from coalmine.kube.ratelimit import RequestGate

# The args Flagger's chart (charts/flagger/templates/deployment.yaml) renders with its values,
# plus klog's verbosity and the tuning flags users set.
FLAGGER_CHART_ARGS = [
    "-log-level=info",
    "-mesh-provider=kubernetes",
    "-metrics-server=http://127.0.0.1:9",
    "-selector-labels=app,name,app.kubernetes.io/name",
    "-enable-config-tracking=true",
    "-slack-user=flagger",
    "-kubeconfig-qps=100",
    "-kubeconfig-burst=250",
    "-threadiness=2",
    "-zap-replace-globals",
    "-zap-encoding=json",
    "-v=2",
    "-logtostderr",
]


def test_flaggers_chart_args_parse_with_one_dash() -> None:
    settings = parse_settings(FLAGGER_CHART_ARGS, environ={})
    assert settings.mesh_provider == "kubernetes"
    assert settings.selector_labels == ("app", "name", "app.kubernetes.io/name")
    assert settings.kubeconfig_qps == 100.0
    assert settings.kubeconfig_burst == 250
    assert settings.threadiness == 2
    assert settings.zap_encoding == "json"


@pytest.mark.parametrize(
    "argv",
    [["-namespace=apps"], ["-namespace", "apps"], ["--namespace=apps"], ["--namespace", "apps"]],
)
def test_every_go_flag_form_sets_the_flag(argv: list[str]) -> None:
    assert parse_settings(argv, environ={}).namespace == "apps"


def test_double_dash_ends_the_flags_as_in_go() -> None:
    assert go_style_argv(["-a=1", "--", "-b"]) == ["--a=1", "--", "-b"]


def test_json_is_the_default_encoding_as_in_flagger_and_console_is_chosen_by_flag() -> None:
    assert parse_settings([], environ={}).log_json is True
    assert parse_settings(["-zap-encoding=console"], environ={}).log_json is False
    assert parse_settings(["--log-json=false"], environ={}).zap_encoding == "console"


def test_warn_level_really_is_warning(capsys: pytest.CaptureFixture[str]) -> None:
    level = parse_settings(["-log-level=warn"], environ={}).log_level
    configure_logging(level, "json")
    try:
        logging.getLogger("coalmine.test").info("hidden")
        logging.getLogger("coalmine.test").warning("shown")
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["shown"]
    assert json.loads(lines[0])["level"] == "warn"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["-log-level=verbose"], "log-level"),
        (["-zap-encoding=logfmt"], "zap-encoding"),
        (["-threadiness=two"], "threadiness"),
        (["-kubeconfig-qps=fast"], "kubeconfig-qps"),
        (["-no-such-flag=1"], "no-such-flag"),
    ],
)
def test_values_that_cannot_work_are_refused_with_the_flag_named(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, environ={})
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_version_flag_prints_the_version_and_exits() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "controller", "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_master_overrides_the_kubeconfigs_server(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://10.0.0.1:6443'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    config = load_config(str(kubeconfig), master="https://127.0.0.1:6443")
    assert config.cluster.server == "https://127.0.0.1:6443"  # type: ignore[union-attr]
    assert config.user is not None  # type: ignore[union-attr]
    alone = load_config(None, master="http://127.0.0.1:8001").get()
    assert alone is not None
    assert alone.cluster.server == "http://127.0.0.1:8001"


async def test_the_token_bucket_lets_a_burst_through_then_holds_requests() -> None:
    gate = RequestGate(max_in_flight=10, qps=0.001, burst=3)
    for _ in range(3):
        async with gate:
            pass
    held = asyncio.create_task(gate.__aenter__())
    await asyncio.sleep(0.2)
    assert not held.done()
    held.cancel()


async def test_threadiness_caps_the_cycles_running_at_once() -> None:
    running = 0
    most = 0
    finished = asyncio.Event()
    cycles = 0

    async def cycle() -> None:
        nonlocal running, most, cycles
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        cycles += 1
        if cycles >= 8:
            finished.set()

    jobs = JobManager(threadiness=2)
    for index in range(5):
        jobs.ensure(f"canary-{index}", 0.01, cycle)
    await asyncio.wait_for(finished.wait(), 30)
    await jobs.stop_all()
    assert most == 2


@pytest.mark.e2e
def test_controller_started_with_flaggers_chart_args_starts_and_logs_json(tmp_path: Path) -> None:
    with devcluster_for_test() as cluster:
        log_path = tmp_path / "controller.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "coalmine", "controller",
                    f"-kubeconfig={cluster.controller_kubeconfig}",
                    "-listen-address=127.0.0.1:0",
                    *FLAGGER_CHART_ARGS,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            entries = _wait_for_log(log_path, process, "serving /metrics")
            port = int(entries[-1]["msg"].rsplit(":", 1)[1])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                assert answer.status == 200
        finally:
            process.terminate()
            process.wait(timeout=40)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert {"ts", "level", "logger", "caller", "msg"} <= set(entries[0])
    assert entries[0]["ts"].endswith("Z")  # zap's ISO8601 encoder


def _wait_for_log(
    log_path: Path, process: subprocess.Popen[bytes], text: str
) -> list[dict[str, str]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        lines = [line for line in log_path.read_text().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]
        if any(text in entry["msg"] for entry in entries):
            return [entry for entry in entries if text in entry["msg"]]
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in {log_path.read_text()}")
