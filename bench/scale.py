"""Benchmark of the controller at scale: N Service-target canaries analysing at a 10 s interval.

    PYTHONPATH=src python bench/scale.py --canaries 1000 [--interval 10s] [--duration 60s]
        [--samples 50] [--rollout-delay 0.05]

Three processes, as in production: `coalmine devcluster` (the API server, with coalmine's CRDs),
`coalmine controller` (`--min-analysis-interval 1s`; the canaries' own `analysis.interval` sets
the pace) and this one, which creates the objects, changes targets and watches the Canaries
through lightkube. The canaries are Service targets with `provider: kubernetes` and no metrics
(each analysis cycle runs the state machine, its cache reads, status write and event, but no
metric query), and `iterations: 100000`, so that once started they stay `Progressing`.

Figures, each over a window of `--duration` with nothing else changing:

- *at rest*: every canary `Initialized`, a cycle every interval finds nothing new;
- *analysing*: every canary `Progressing`, each cycle is one blue/green iteration;
- controller CPU seconds per canary-cycle (utime+stime from /proc over the window, divided by
  the growth of `coalmine_canary_cycles_total`) and API requests per canary-cycle (growth of
  `coalmine_kube_requests_total`, watches excluded);
- target-change-to-Progressing latency: a sample of targets gets a new selector, spaced over one
  interval; time from the PATCH response to the `Progressing` status arriving on the watch;
- controller and devcluster RSS (current and peak) and devcluster CPU for context.

Prints figures only; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from coalmine.api.models import parse_go_duration
from coalmine.kube.api import Conflict, KubeApi, Object, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, NAMESPACE, SERVICE

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "deploy" / "crds"
BENCH_NAMESPACE = "scale"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
AIM_REQUESTS_PER_CYCLE = 1.5
AIM_LATENCY_SECONDS = 1.0
AIM_RSS_MIB_AT_1000 = 300


# --- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _environment() -> dict[str, str]:
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def start_devcluster(workdir: Path, rollout_delay: float) -> tuple[Process, Path]:
    """`coalmine devcluster` with coalmine's CRDs; returns it and its kubeconfig once serving."""
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "devcluster.log"
    loads = [
        f"--load={path}"
        for path in sorted(CRD_DIR.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    ]
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "devcluster",
                "--port=0",
                f"--kubeconfig-out={kubeconfig}",
                f"--rollout-delay={rollout_delay}",
                *loads,
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=_environment(),
        )
    process = Process("devcluster", popen, log_path)
    assert popen.stdout is not None
    line = popen.stdout.readline().decode().strip()
    if not line.startswith("http"):
        process.stop()
        raise SystemExit(f"coalmine devcluster did not start: {line!r}\n{process.tail()}")
    return process, kubeconfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CONTROLLER_FLAGS = (
    "--min-analysis-interval=1s",
    "--mesh-provider=kubernetes",
    "--metrics-server=http://127.0.0.1:9",
    "--log-level=info",
)


def start_controller(workdir: Path, kubeconfig: Path) -> tuple[Process, str]:
    """`coalmine controller`; returns it and the base URL of its /metrics."""
    port = free_port()
    log_path = workdir / "controller.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "controller",
                f"--kubeconfig={kubeconfig}",
                f"--listen-address=127.0.0.1:{port}",
                *CONTROLLER_FLAGS,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
    return Process("controller", popen, log_path), f"http://127.0.0.1:{port}"


# --- /proc and /metrics ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of `pid` in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


@dataclass
class Scrape:
    cycles: float
    requests: dict[str, float]
    controller_cpu: float
    devcluster_cpu: float
    at: float

    def api_requests(self) -> float:
        return sum(n for key, n in self.requests.items() if not key.startswith("watch "))


async def scrape(
    session: aiohttp.ClientSession, metrics_url: str, controller: int, devcluster: int
) -> Scrape:
    async with session.get(f"{metrics_url}/metrics") as reply:
        text = await reply.text()
    cycles = 0.0
    requests: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "coalmine_canary_cycles_total":
                cycles = sample.value
            elif sample.name == "coalmine_kube_requests_total":
                requests[f"{sample.labels['verb']} {sample.labels['resource']}"] = sample.value
    return Scrape(
        cycles, requests, cpu_seconds(controller), cpu_seconds(devcluster), time.monotonic()
    )


@dataclass
class Window:
    name: str
    cycles: float
    requests: float
    by_request: dict[str, float]
    controller_cpu: float
    devcluster_cpu: float
    seconds: float

    def report(self) -> None:
        cycles = max(self.cycles, 1.0)
        breakdown = ", ".join(
            f"{key} {count / cycles:.2f}"
            for key, count in sorted(self.by_request.items(), key=lambda kv: -kv[1])
            if count
        )
        print(f"{self.name} ({self.seconds:.0f} s, {self.cycles:.0f} canary-cycles):")
        print(
            f"  controller CPU         {1000 * self.controller_cpu / cycles:8.3f} ms per canary-cycle"
            f"  ({self.controller_cpu:.1f} s CPU, {100 * self.controller_cpu / self.seconds:.0f} %"
            " of one core)"
        )
        print(
            f"  API requests           {self.requests / cycles:8.3f} per canary-cycle"
            f"  (aim <= {AIM_REQUESTS_PER_CYCLE}; {breakdown or 'none'})"
        )
        print(
            f"  devcluster CPU         {1000 * self.devcluster_cpu / cycles:8.3f} ms per canary-cycle"
            f"  ({100 * self.devcluster_cpu / self.seconds:.0f} % of one core)"
        )


def window(name: str, before: Scrape, after: Scrape) -> Window:
    keys = set(before.requests) | set(after.requests)
    by_request = {
        key: after.requests.get(key, 0.0) - before.requests.get(key, 0.0)
        for key in keys
        if not key.startswith("watch ")
    }
    return Window(
        name,
        after.cycles - before.cycles,
        after.api_requests() - before.api_requests(),
        by_request,
        after.controller_cpu - before.controller_cpu,
        after.devcluster_cpu - before.devcluster_cpu,
        after.at - before.at,
    )


# --- objects --------------------------------------------------------------------------------


def target_name(index: int) -> str:
    return f"app-{index:04d}"


def service(index: int, colour: str) -> Object:
    name = target_name(index)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": BENCH_NAMESPACE},
        "spec": {
            "selector": {"app": f"{name}-{colour}"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def canary(index: int, interval: str) -> Object:
    name = target_name(index)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": BENCH_NAMESPACE},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {
                "interval": interval,
                "threshold": 5,
                "iterations": 100_000,
                "metrics": [],
            },
        },
    }


async def in_parallel(work: Iterable[Callable[[], Awaitable[Any]]], concurrency: int = 16) -> None:
    queue = list(work)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def change_selector(api: KubeApi, index: int, colour: str) -> Callable[[], Awaitable[Object]]:
    patch = {"spec": {"selector": {"app": f"{target_name(index)}-{colour}"}}}
    return lambda: api.patch(SERVICE, target_name(index), patch, BENCH_NAMESPACE)


# --- watching phases ------------------------------------------------------------------------


@dataclass
class Phases:
    """The phase of every canary as the watch delivers it, and when each sample first progressed."""

    current: dict[str, str] = field(default_factory=dict)
    progressing_at: dict[str, float] = field(default_factory=dict)

    def __call__(self, event_type: str, obj: Object) -> None:
        name = obj["metadata"]["name"]
        phase = str((obj.get("status") or {}).get("phase") or "")
        self.current[name] = phase
        if phase == "Progressing" and name not in self.progressing_at:
            self.progressing_at[name] = time.monotonic()

    def count(self, phase: str) -> int:
        return sum(1 for value in self.current.values() if value == phase)


async def wait_for(predicate: Callable[[], bool], limit: float, what: str) -> float:
    """Seconds until `predicate` holds; exits with a message after `limit` seconds."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > limit:
            raise SystemExit(f"gave up after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the run --------------------------------------------------------------------------------


async def measure(
    name: str,
    seconds: float,
    session: aiohttp.ClientSession,
    metrics_url: str,
    pids: tuple[int, int],
) -> Window:
    before = await scrape(session, metrics_url, *pids)
    await asyncio.sleep(seconds)
    after = await scrape(session, metrics_url, *pids)
    return window(name, before, after)


async def run(args: argparse.Namespace) -> None:
    count: int = args.canaries
    interval_seconds = duration_seconds(args.interval)
    duration: float = args.duration
    samples = min(args.samples, count)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        workdir = Path(directory)
        devcluster, kubeconfig = start_devcluster(workdir, args.rollout_delay)
        controller: Process | None = None
        api = KubeApi(load_config(str(kubeconfig)))
        phases = Phases()
        informer = Informer(api, CANARY, BENCH_NAMESPACE)
        informer.subscribe(phases)
        try:
            print(
                f"{count} canaries, analysis.interval {args.interval}, windows of "
                f"{duration:.0f} s; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
            )
            started = time.monotonic()
            with contextlib.suppress(Conflict):
                await api.create(
                    NAMESPACE,
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": BENCH_NAMESPACE},
                    },
                )
            await in_parallel(
                partial(api.create, SERVICE, service(i, "blue")) for i in range(count)
            )
            await in_parallel(
                partial(api.create, CANARY, canary(i, args.interval)) for i in range(count)
            )
            print(f"created {count} Services and Canaries in {time.monotonic() - started:.1f} s")
            informer.start()
            await informer.wait_synced()

            controller, metrics_url = start_controller(workdir, kubeconfig)
            pids = (controller.popen.pid, devcluster.popen.pid)
            started = time.monotonic()
            init_limit = 60 + count * 0.2
            try:
                await wait_for(
                    lambda: phases.count("Initialized") == count,
                    init_limit,
                    f"{count} canaries Initialized",
                )
            except SystemExit:
                print(controller.tail())
                raise
            print(
                f"controller start to {count} canaries Initialized: "
                f"{time.monotonic() - started:.1f} s"
            )
            async with aiohttp.ClientSession() as session:
                # Let the initialisation burst pass: one full interval of ordinary cycles.
                await asyncio.sleep(interval_seconds)
                at_rest = await measure(
                    "at rest (all Initialized)", duration, session, metrics_url, pids
                )
                rest_rss = rss_mib(pids[0])

                # Latency: sample targets changed one after another, spread over one interval.
                latencies: list[float] = []
                patched_at: dict[str, float] = {}
                spacing = interval_seconds / samples
                for index in range(samples):
                    await change_selector(api, index, "green")()
                    patched_at[target_name(index)] = time.monotonic()
                    await asyncio.sleep(spacing)
                await wait_for(
                    lambda: all(name in phases.progressing_at for name in patched_at),
                    30 + samples,
                    "the sampled canaries to be Progressing",
                )
                latencies = [phases.progressing_at[n] - t for n, t in patched_at.items()]

                # Everyone analysing.
                started = time.monotonic()
                await in_parallel(change_selector(api, i, "green") for i in range(samples, count))
                await wait_for(
                    lambda: phases.count("Progressing") == count,
                    60 + count * 0.2,
                    f"{count} canaries Progressing",
                )
                print(
                    f"all {count} targets changed to all Progressing: "
                    f"{time.monotonic() - started:.1f} s"
                )
                await asyncio.sleep(interval_seconds)
                analysing = await measure(
                    "analysing (all Progressing, one iteration per cycle)",
                    duration,
                    session,
                    metrics_url,
                    pids,
                )
            print()
            at_rest.report()
            analysing.report()
            print(
                f"target change to Progressing ({samples} canaries, PATCH response to watch): "
                f"p50 {1000 * statistics.median(latencies):.0f} ms, "
                f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, "
                f"max {1000 * max(latencies):.0f} ms  (aim < {AIM_LATENCY_SECONDS * 1000:.0f} ms)"
            )
            rss, peak = rss_mib(pids[0])
            print(
                f"controller RSS           {rest_rss[0]:.0f} MiB at rest, {rss:.0f} MiB analysing, "
                f"peak {peak:.0f} MiB  (aim < {AIM_RSS_MIB_AT_1000} MiB at 1,000 canaries)"
            )
            rss, peak = rss_mib(pids[1])
            print(f"devcluster RSS           {rss:.0f} MiB, peak {peak:.0f} MiB")
        finally:
            await informer.stop()
            await api.close()
            if controller is not None:
                controller.stop()
            devcluster.stop()


def duration_seconds(text: str) -> float:
    seconds = parse_go_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f"not a positive Go duration: {text!r}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument("--interval", default="10s", help="the canaries' analysis.interval")
    parser.add_argument(
        "--duration",
        type=duration_seconds,
        default=30.0,
        help="length of each measurement window (Go duration, default 30s)",
    )
    parser.add_argument("--samples", type=int, default=50, help="target changes timed")
    parser.add_argument("--rollout-delay", type=float, default=0.05)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
