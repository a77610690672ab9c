"""`DevCluster`: an in-process Kubernetes API server for tests, the demo and local play.

    async with DevCluster(port=0) as cluster:
        client = lightkube.AsyncClient(KubeConfig.from_file(cluster.kubeconfig_path))

Like envtest, but in-process and instant: no etcd, no binaries. The workload simulator (the rollout
status of Deployments and DaemonSets, by `coalmine.devcluster.simulator`; no Pods or ReplicaSets)
runs unless `simulator=False`; `rollout_delay` is the seconds it waits before a rollout step.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import yaml
from aiohttp import web

from coalmine.devcluster.faults import Faults
from coalmine.devcluster.kubeconfig import write_kubeconfig
from coalmine.devcluster.server import ApiServer, ServerOptions
from coalmine.devcluster.store import Store

log = logging.getLogger(__name__)


class Simulator(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def load_manifests(text: str) -> list[dict[str, Any]]:
    """The documents of a (multi-document) YAML or JSON text, `List` kinds flattened."""
    docs: list[dict[str, Any]] = []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on big CRDs
    for doc in yaml.load_all(text, Loader=loader):
        if not isinstance(doc, dict) or not doc:
            continue
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            docs.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            docs.append(doc)
    return docs


class DevCluster:
    """A running devcluster: HTTP server, store, fault injection and (optionally) simulator."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        simulator: bool = True,
        rollout_delay: float = 0.0,
        kubeconfig_path: str | os.PathLike[str] | None = None,
        history_size: int = 10_000,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.simulator_enabled = simulator
        self.rollout_delay = rollout_delay
        self.store = Store(history_size=history_size)
        self.faults = Faults(self.store.storage)
        self.server = ApiServer(self.store, self.faults, ServerOptions(token, bookmark_interval))
        self._kubeconfig_given = kubeconfig_path is not None
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else Path()
        self._runner: web.AppRunner | None = None
        self._simulator: Simulator | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(
            self.server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if not self._kubeconfig_given:
            self._tempdir = tempfile.TemporaryDirectory(prefix="devcluster-")
            self.kubeconfig_path = Path(self._tempdir.name) / "kubeconfig"
        self.write_kubeconfig(self.kubeconfig_path)
        if self.simulator_enabled:
            self._simulator = self._make_simulator()
            if self._simulator is not None:
                self._simulator.start()

    def _make_simulator(self) -> Simulator | None:
        try:
            module = importlib.import_module("coalmine.devcluster.simulator")
        except ImportError:
            log.warning("devcluster: the workload simulator is not available; running without it")
            return None
        simulator: Simulator = module.WorkloadSimulator(
            self.store, rollout_delay=self.rollout_delay
        )
        return simulator

    async def stop(self) -> None:
        if self._simulator is not None:
            self._simulator.stop()
            self._simulator = None
        self.store.storage.close_watchers()
        if self._runner is not None:
            await asyncio.sleep(0)
            await self._runner.cleanup()
            self._runner = None
        if self._tempdir is not None:
            with contextlib.suppress(OSError):
                self._tempdir.cleanup()
            self._tempdir = None

    async def __aenter__(self) -> DevCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        return write_kubeconfig(path, self.url, self.token)

    def apply_manifests(self, docs: Iterable[dict[str, Any]] | str) -> list[dict[str, Any]]:
        """Server-side apply documents (or a YAML text), CRDs and Namespaces first."""
        if isinstance(docs, str):
            docs = load_manifests(docs)
        return self.store.apply_manifests(docs)
