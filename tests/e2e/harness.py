"""Processes for end-to-end runs: `coalmine devcluster` and `coalmine controller`, as users run them.

The test side talks to devcluster through the real lightkube client (`KubeApi`) and watches the
Canary, so every phase the controller writes is seen, however fast the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import polling
from binaries import require_binary
from clusters import TestCluster
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, EVENT

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


def leader_election_flags(namespace: str) -> tuple[str, ...]:
    """Leader election with short timings, the Lease in `namespace` (a hand-over in seconds)."""
    return (
        "--enable-leader-election",
        f"--leader-election-namespace={namespace}",
        "--leader-election-lease=3s",
        "--leader-election-renew-deadline=2s",
        "--leader-election-retry=500ms",
    )


def start_controller(cluster: TestCluster, log_dir: Path, *flags: str) -> ControllerProcess:
    """`coalmine controller` on `cluster` with the cluster's controller identity (on the real
    control plane: the deploy/ ServiceAccount, watching the test's namespace)."""
    port = free_port()
    log_path = log_dir / f"controller-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "controller",
                f"--kubeconfig={cluster.controller_kubeconfig}",
                f"--listen-address=127.0.0.1:{port}",
                *FAST_CONTROLLER_FLAGS,
                *cluster.controller_flags,
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
    """`polling.eventually` with the history of `watch` in the failure."""
    history = (lambda: f"(phase, weight, iterations, failed) {watch.history}") if watch else None
    await polling.eventually(predicate, limit, what, detail=history)


async def event_messages(api: KubeApi, namespace: str = "default") -> list[str]:
    """The controller's Event messages, oldest first, each repeated `count` times. Events of the
    cluster's own controllers (kube-apiserver's IP repair, the ReplicaSet controller) are left
    out: they exist on the real control plane only."""
    events = [
        event
        for event in (await api.list(EVENT, namespace)).items
        if (event.get("source") or {}).get("component") == "flagger"
    ]
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["message"] for e in events for _ in range(int(e.get("count") or 1))]


# --- peers of a release: local HTTP servers, a scraping Prometheus, the load tester ---------------


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free loopback port, as `http://127.0.0.1:<port>`; stopped on exit."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def failing_check(passes: int = 0) -> AsyncIterator[str]:
    """A webhook check that passes `passes` times, then fails every call (HTTP 500): what makes
    a release roll back (after `passes` steps)."""
    calls = 0

    async def check(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls <= passes:
            return web.Response(text=f"call {calls}")
        return web.Response(status=500, text="error rate too high")

    app = web.Application()
    app.router.add_post("/check", check)
    async with serve_app(app) as url:
        yield f"{url}/check"


@dataclass
class Recorder:
    """A local HTTP peer that keeps every JSON body POSTed to it (webhooks, alerts)."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def receive(request: web.Request) -> web.Response:
            self.bodies.append(json.loads(await request.text()))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", receive)
        return app


async def http_get_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.text()


async def http_post_json(url: str, body: dict[str, Any]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.text()


def sample_value(exposition: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one series in a Prometheus text exposition, or None when absent."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def controller_metric(
    controller: ControllerProcess, name: str, labels: dict[str, str]
) -> float | None:
    """One series of the controller's own `/metrics`."""
    exposition = await http_get_text(f"http://127.0.0.1:{controller.port}/metrics")
    return sample_value(exposition, name, labels)


def _start_prometheus(
    targets: list[str], workdir: Path
) -> tuple[subprocess.Popen[bytes], str, Path]:
    binary = require_binary("prometheus")
    data = workdir / "prometheus-data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}", log_path


@contextlib.asynccontextmanager
async def prometheus_scraping(targets: list[str], workdir: Path) -> AsyncIterator[str]:
    """A real Prometheus scraping `targets` (host:port) every second; yields its URL once it has
    scraped every target at least three times, so `rate()` over a few seconds has data.

    Waits are async: the exporters it scrapes may run on the caller's event loop.
    """
    process, url, log_path = _start_prometheus(targets, workdir)
    up = 'up{job="exporter"}'
    query = f"count(count_over_time({up}[1m]) >= 3 and {up} == 1) == {len(targets)}"
    try:
        async with aiohttp.ClientSession() as session:
            try:
                async with asyncio.timeout(30):
                    while True:
                        if process.poll() is not None:
                            raise RuntimeError(
                                f"prometheus exited: {log_path.read_text(errors='replace')[-2000:]}"
                            )
                        with contextlib.suppress(aiohttp.ClientError):
                            async with session.get(
                                f"{url}/api/v1/query", params={"query": query}
                            ) as response:
                                if response.status == 200:
                                    body = await response.json()
                                    if body["data"]["result"]:
                                        break
                        await asyncio.sleep(0.2)
            except TimeoutError:
                raise RuntimeError(
                    f"prometheus at {url} did not scrape {targets} in 30s: "
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                ) from None
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def prometheus_of(collector: Collector, workdir: Path) -> AsyncIterator[str]:
    """A real Prometheus scraping a local exporter of `collector`; yields the Prometheus URL."""
    registry = CollectorRegistry()
    registry.register(collector)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    async with (
        serve_app(app) as exporter,
        prometheus_scraping([exporter.removeprefix("http://")], workdir) as url,
    ):
        yield url


async def until_prometheus_answers(prometheus: str, query: str) -> None:
    """Until `query` has a result (the series the judge reads are full), at most a minute."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            async with session.get(f"{prometheus}/api/v1/query", params={"query": query}) as r:
                if (await r.json())["data"]["result"]:
                    return
            await asyncio.sleep(0.5)


@dataclass
class LoadTesterProcess:
    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def metric(self, name: str, labels: dict[str, str]) -> float:
        """One series of the load tester's `/metrics` (0 when it was never counted)."""
        exposition = await http_get_text(f"{self.url}/metrics")
        return sample_value(exposition, name, labels) or 0.0


@contextlib.contextmanager
def loadtester_process(log_path: Path, *flags: str) -> Iterator[LoadTesterProcess]:
    """`coalmine loadtester --port 0` on loopback; its URL is the line it prints when ready.

    Its log (stderr) goes to `log_path`."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "loadtester",
                "--port=0",
                "--host=127.0.0.1",
                "--log-cmd-output",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"coalmine loadtester did not print its URL (got {url!r})")
        yield LoadTesterProcess(process, url, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
