"""pytest fixtures for tests that need a Kubernetes API server.

Enable with `pytest_plugins = ["coalmine.devcluster.testing"]` in a conftest.py.

- `devcluster`: a started in-process `DevCluster` (function-scoped, async);
- `devcluster_http`: a `DevClusterHTTP` raw client of the `devcluster` fixture (status + JSON);
- `devcluster_process`: `python -m coalmine devcluster --port 0` as a subprocess, for tests that
  need the server outside their event loop (its URL, kubeconfig path and process);
  `start_devcluster_process(kubeconfig_path, *flags)` / `stop_devcluster_process(server)` start
  one with other flags (`--token`, `--load FILE`, `--no-simulator`, ...).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from coalmine.devcluster.cluster import DevCluster

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""


@dataclass
class DevClusterHTTP:
    """Raw HTTP against devcluster: exactly the requests a client library would send."""

    session: aiohttp.ClientSession
    url: str

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, str | bytes) else json.dumps(body)
            all_headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.url + path, data=data, headers=all_headers
        ) as r:
            text = await r.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Reply(r.status, parsed)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, content_type: str = MERGE, **kw: Any) -> Reply:
        return await self.request("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("DELETE", path, body, **kw)


@pytest.fixture
async def devcluster_http(devcluster: DevCluster) -> AsyncIterator[DevClusterHTTP]:
    """Raw HTTP against the `devcluster` fixture: the requests a client library would send."""
    async with aiohttp.ClientSession() as session:
        yield DevClusterHTTP(session, devcluster.url)


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
