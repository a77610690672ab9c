"""Processes for end-to-end runs: `coalmine devcluster` and `coalmine controller`, as users run them.

The test side talks to devcluster through the real lightkube client (`KubeApi`) and watches the
Canary, so every phase the controller writes is seen, however fast the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coalmine.devcluster.testing import (
    DevClusterProcess,
    start_devcluster_process,
    stop_devcluster_process,
)
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, EVENT

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"

FAST_CONTROLLER_FLAGS = (
    "--min-analysis-interval=1s",
    "--control-loop-interval=1s",
    "--mesh-provider=kubernetes",
    "--metrics-server=http://127.0.0.1:9",
    "--log-level=info",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def devcluster_with_crds(*extra: Path) -> Iterator[DevClusterProcess]:
    """devcluster with coalmine's own CRDs loaded, as `coalmine crds | kubectl apply -f -` would,
    plus `extra` manifest files (e.g. a router's CRDs from `coalmine.devcluster.crds.crd_path`)."""
    with tempfile.TemporaryDirectory(prefix="e2e-") as directory:
        loads = [
            f"--load={path}"
            for path in [*sorted(CRD_DIR.glob("*.yaml")), *extra]
            if path.name != "kustomization.yaml"
        ]
        server = start_devcluster_process(
            Path(directory) / "kubeconfig", *loads, "--rollout-delay", "0.05"
        )
        try:
            yield server
        finally:
            stop_devcluster_process(server)


@dataclass
class ControllerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def kill(self) -> None:
        """SIGKILL: the crash a restart must recover from."""
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_controller(kubeconfig: Path, log_dir: Path, *flags: str) -> ControllerProcess:
    port = free_port()
    log_path = log_dir / f"controller-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "controller",
                f"--kubeconfig={kubeconfig}",
                f"--listen-address=127.0.0.1:{port}",
                *FAST_CONTROLLER_FLAGS,
                *flags,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return ControllerProcess(process, log_path, port)


@dataclass
class CanaryWatch:
    """Every phase a canary went through, in order (consecutive repeats folded)."""

    name: str
    namespace: str = "default"
    phases: list[str] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, int, int, int]] = field(default_factory=list)

    def __call__(self, event_type: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        if metadata.get("name") != self.name or metadata.get("namespace") != self.namespace:
            return
        self.last = obj
        status = obj.get("status") or {}
        self.history.append(
            (
                status.get("phase") or "",
                status.get("canaryWeight") or 0,
                status.get("iterations") or 0,
                status.get("failedChecks") or 0,
            )
        )
        phase = status.get("phase")
        if phase and (not self.phases or self.phases[-1] != phase):
            self.phases.append(phase)

    @property
    def phase(self) -> str:
        return str((self.last.get("status") or {}).get("phase") or "")


@contextlib.asynccontextmanager
async def cluster_client(kubeconfig: Path) -> AsyncIterator[tuple[KubeApi, Informer]]:
    api = KubeApi(load_config(str(kubeconfig)))
    canaries = Informer(api, CANARY)
    canaries.start()
    await canaries.wait_synced()
    try:
        yield api, canaries
    finally:
        await canaries.stop()
        await api.close()


async def eventually(
    predicate: Callable[[], bool],
    limit: float = 60.0,
    what: str = "",
    watch: CanaryWatch | None = None,
) -> None:
    try:
        async with asyncio.timeout(limit):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        seen = f"; (phase, weight, iterations, failed) {watch.history}" if watch else ""
        raise AssertionError(f"timed out waiting for {what or predicate}{seen}") from None


async def event_messages(api: KubeApi, namespace: str = "default") -> list[str]:
    events = (await api.list(EVENT, namespace)).items
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["message"] for e in events for _ in range(int(e.get("count") or 1))]
