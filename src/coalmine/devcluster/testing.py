"""pytest fixtures for tests that need a Kubernetes API server.

Enable with `pytest_plugins = ["coalmine.devcluster.testing"]` in a conftest.py.

- `devcluster`: a started in-process `DevCluster` (function-scoped, async);
- `devcluster_process`: `python -m coalmine devcluster --port 0` as a subprocess, for tests that
  need the server outside their event loop (its URL, kubeconfig path and process).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coalmine.devcluster.cluster import DevCluster


@pytest.fixture
async def devcluster() -> AsyncIterator[DevCluster]:
    async with DevCluster(port=0, rollout_delay=0.05, bookmark_interval=1.0) as cluster:
        yield cluster


@dataclass
class DevClusterProcess:
    url: str
    kubeconfig_path: Path
    process: subprocess.Popen[str]


def start_devcluster_process(kubeconfig_path: Path, *args: str) -> DevClusterProcess:
    """Start `coalmine devcluster` and wait for its URL line (fails with its stderr if it dies)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalmine",
            "devcluster",
            "--port",
            "0",
            "--kubeconfig-out",
            str(kubeconfig_path),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http"):
        process.kill()
        _, err = process.communicate(timeout=10)
        raise RuntimeError(f"coalmine devcluster did not start: {line!r} {err}")
    return DevClusterProcess(line, kubeconfig_path, process)


def stop_devcluster_process(server: DevClusterProcess) -> int:
    server.process.terminate()
    try:
        return server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait(timeout=10)
    finally:
        for stream in (server.process.stdout, server.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def devcluster_process() -> Iterator[DevClusterProcess]:
    with tempfile.TemporaryDirectory(prefix="devcluster-") as directory:
        server = start_devcluster_process(Path(directory) / "kubeconfig")
        try:
            yield server
        finally:
            stop_devcluster_process(server)
