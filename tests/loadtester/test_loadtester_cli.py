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

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def loadtester() -> Iterator[str]:
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
            "^test$",
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


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_process_prints_its_url_and_serves_the_gate_api(loadtester: str) -> None:
    canary = {"name": "podinfo", "namespace": "test"}
    assert call(f"{loadtester}/healthz") == (200, "OK")
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
