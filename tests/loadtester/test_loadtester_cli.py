"""`coalmine loadtester` as a real process: ready line, HTTP API, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coalmine.cli import build_parser
from coalmine.cli.loadtester import _config_or_error
from coalmine.hooks.signing import sign_headers
from coalmine.loadtester import DEFAULT_ALLOWED_PROGRAMS, LoadTesterConfig

SRC = str(Path(__file__).resolve().parents[2] / "src")


KEY = b"cli-test-signing-key-0123456789"


@pytest.fixture
def loadtester(tmp_path: Path) -> Iterator[str]:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")  # as a Secret mounted from `kubectl create secret` often is
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalmine",
            "loadtester",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--namespace-regexp",
            "test",
            f"--signing-key-file={key_file}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def call(url: str, body: dict[str, Any] | None = None, *, signed: bool = True) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    headers = sign_headers([KEY], data) if data is not None and signed else {}
    request = urllib.request.Request(
        url, data=data, method="POST" if data else "GET", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_process_prints_its_url_and_serves_the_gate_api(loadtester: str) -> None:
    canary = {"name": "podinfo", "namespace": "test"}
    assert call(f"{loadtester}/healthz") == (200, "OK")
    assert call(f"{loadtester}/gate/check", canary) == (403, "Forbidden")
    assert call(f"{loadtester}/gate/open", canary, signed=False)[0] == 401
    assert call(f"{loadtester}/gate/check", canary) == (403, "Forbidden")
    assert call(f"{loadtester}/gate/open", canary) == (202, "")
    assert call(f"{loadtester}/gate/check", canary) == (200, "Approved")
    assert call(f"{loadtester}/gate/open", {**canary, "namespace": "prod"}) == (403, "Forbidden")
    assert call(f"{loadtester}/", {**canary, "metadata": {"type": "x"}}) == (
        400,
        "unknown task type x",
    )


def test_bad_flags_exit_2_with_a_reason() -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "loadtester", "--timeout", "soon"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--timeout 'soon' is not a duration" in result.stderr


def test_without_a_key_it_refuses_to_start_unless_insecure_unsigned_is_asked_for() -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("COALMINE_WEBHOOK_SIGNING_KEY_FILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "loadtester", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no --signing-key-file" in result.stderr
    assert "--insecure-accept-unsigned" in result.stderr


def test_allow_program_adds_to_the_default_list() -> None:
    args = build_parser().parse_args(
        ["loadtester", "--insecure-accept-unsigned", "--allow-program", "echo"]
    )
    config = _config_or_error(args)
    assert isinstance(config, LoadTesterConfig)
    assert config.allowed_programs == (*DEFAULT_ALLOWED_PROGRAMS, "echo")
    assert config.accept_unsigned
    assert config.signing_keys == ()


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("short\n")
    args = build_parser().parse_args(["loadtester", f"--signing-key-file={key_file}"])
    assert "at least 16 bytes" in _config_or_error(args)
