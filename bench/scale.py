"""Benchmark of the controller at scale: N Service-target canaries analysing at a 10 s interval.

    PYTHONPATH=src python bench/scale.py --canaries 1000 [--interval 10s] [--duration 60s]
        [--samples 50] [--rollout-delay 0.05] [--compare-ref COMMIT]

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
- cycle lag p50/p99: from the controller's `coalmine_canary_cycle_lag_seconds` histogram (due
  tick or trigger to the cycle's start), over each window;
- garbage-collector pauses per canary-cycle and those over 250 ms (`coalmine_gc_pause_seconds`),
  when the controller exports them;
- cycles not repeated because nothing they read had changed since a cycle at rest
  (`coalmine_canary_cycles_unchanged_total`), when the controller exports them;
- controller and devcluster RSS (current and peak) and devcluster CPU for context.

`--compare-ref COMMIT` runs everything twice on fresh devclusters, first with the controller of
COMMIT (its `src` exported by `git archive`), then with this checkout's, and prints the ratio of
controller CPU per canary-cycle: the machines these run on are too noisy to compare runs made
at different times.

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
from collections.abc import Awaitable, Callable, Iterable, Iterator
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


def _environment(src_root: Path = ROOT / "src") -> dict[str, str]:
    src = str(src_root)
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


def start_controller(workdir: Path, kubeconfig: Path, src_root: Path) -> tuple[Process, str]:
    """`coalmine controller` from `src_root`; returns it and the base URL of its /metrics."""
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
            env=_environment(src_root),
        )
    return Process("controller", popen, log_path), f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def source_of(ref: str) -> Iterator[Path]:
    """The `src` directory of commit `ref`, exported into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-ref-") as directory:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
        yield Path(directory) / "src"


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
    lag_buckets: dict[float, float] = field(default_factory=dict)
    gc_pauses: float | None = None
    gc_long_pauses: float = 0.0
    unchanged: float | None = None

    def api_requests(self) -> float:
        return sum(n for key, n in self.requests.items() if not key.startswith("watch "))


async def scrape(
    session: aiohttp.ClientSession, metrics_url: str, controller: int, devcluster: int
) -> Scrape:
    async with session.get(f"{metrics_url}/metrics") as reply:
        text = await reply.text()
    cycles = 0.0
    requests: dict[str, float] = {}
    lag: dict[float, float] = {}
    gc_pauses: float | None = None
    unchanged: float | None = None
    long_pauses: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "coalmine_canary_cycles_total":
                cycles = sample.value
            elif sample.name == "coalmine_canary_cycles_unchanged_total":
                unchanged = sample.value
            elif sample.name == "coalmine_kube_requests_total":
                requests[f"{sample.labels['verb']} {sample.labels['resource']}"] = sample.value
            elif sample.name == "coalmine_canary_cycle_lag_seconds_bucket":
                lag[float(sample.labels["le"])] = sample.value
            elif sample.name == "coalmine_gc_pause_seconds_sum":
                gc_pauses = (gc_pauses or 0.0) + sample.value
            elif sample.name == "coalmine_gc_pause_seconds_bucket":
                bound = sample.labels["le"]
                if bound in ("0.25", "+Inf"):
                    long_pauses[bound] = long_pauses.get(bound, 0.0) + sample.value
    return Scrape(
        cycles,
        requests,
        cpu_seconds(controller),
        cpu_seconds(devcluster),
        time.monotonic(),
        lag,
        gc_pauses,
        long_pauses.get("+Inf", 0.0) - long_pauses.get("0.25", 0.0),
        unchanged,
    )


def bucket_percentile(cumulative: dict[float, float], fraction: float) -> float | None:
    """The `fraction` quantile of a Prometheus histogram's cumulative buckets, interpolated
    linearly inside its bucket (as PromQL's histogram_quantile); None without observations."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = fraction * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


@dataclass
class Window:
    name: str
    cycles: float
    requests: float
    by_request: dict[str, float]
    controller_cpu: float
    devcluster_cpu: float
    seconds: float
    lag_buckets: dict[float, float] = field(default_factory=dict)
    gc_pauses: float | None = None
    gc_long_pauses: float = 0.0
    unchanged: float | None = None

    @property
    def cpu_ms_per_cycle(self) -> float:
        return 1000 * self.controller_cpu / max(self.cycles, 1.0)

    def lag_text(self) -> str:
        p50, p99 = (bucket_percentile(self.lag_buckets, q) for q in (0.5, 0.99))
        if p50 is None or p99 is None:
            return "not measured (this controller has no coalmine_canary_cycle_lag_seconds)"
        return f"p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms  (aim p99 < 1 s)"

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
        print(f"  cycle lag (due tick to cycle start): {self.lag_text()}")
        if self.gc_pauses is not None:
            print(
                f"  garbage collector      {1000 * self.gc_pauses / cycles:8.3f} ms per canary-cycle"
                f"  ({100 * self.gc_pauses / max(self.controller_cpu, 1e-9):.0f} % of the CPU;"
                f" {self.gc_long_pauses:.0f} pauses over 250 ms)"
            )
        if self.unchanged is not None:
            print(
                f"  cycles not repeated    {self.unchanged:8.0f}"
                f"  ({100 * self.unchanged / cycles:.0f} %: at rest, nothing they read had changed)"
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
        {le: n - before.lag_buckets.get(le, 0.0) for le, n in after.lag_buckets.items()},
        None
        if after.gc_pauses is None or before.gc_pauses is None
        else after.gc_pauses - before.gc_pauses,
        after.gc_long_pauses - before.gc_long_pauses,
        None
        if after.unchanged is None or before.unchanged is None
        else after.unchanged - before.unchanged,
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


@dataclass
class Result:
    """The figures of one run of the workload against one controller."""

    label: str
    init_seconds: float
    at_rest: Window
    analysing: Window
    latencies: list[float]
    rest_rss: float
    rss: float
    peak_rss: float
    devcluster_rss: tuple[float, float]

    def report(self) -> None:
        print(f"\n== {self.label}")
        print(f"controller start to all Initialized: {self.init_seconds:.1f} s")
        self.at_rest.report()
        self.analysing.report()
        latencies = self.latencies
        print(
            f"target change to Progressing ({len(latencies)} canaries, PATCH response to watch): "
            f"p50 {1000 * statistics.median(latencies):.0f} ms, "
            f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, "
            f"max {1000 * max(latencies):.0f} ms  (aim < {AIM_LATENCY_SECONDS * 1000:.0f} ms)"
        )
        print(
            f"controller RSS           {self.rest_rss:.0f} MiB at rest, {self.rss:.0f} MiB "
            f"analysing, peak {self.peak_rss:.0f} MiB"
        )
        rss, peak = self.devcluster_rss
        print(f"devcluster RSS           {rss:.0f} MiB, peak {peak:.0f} MiB")


async def create_workload(api: KubeApi, count: int, interval: str) -> None:
    with contextlib.suppress(Conflict):
        await api.create(
            NAMESPACE,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
        )
    await in_parallel(partial(api.create, SERVICE, service(i, "blue")) for i in range(count))
    await in_parallel(partial(api.create, CANARY, canary(i, interval)) for i in range(count))


async def time_target_changes(
    api: KubeApi, phases: Phases, samples: int, interval_seconds: float
) -> list[float]:
    """Sample targets changed one after another, spread over one interval: seconds from each
    PATCH response to the canary's `Progressing` on the watch."""
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
    return [phases.progressing_at[n] - t for n, t in patched_at.items()]


async def scenario(args: argparse.Namespace, src_root: Path, label: str) -> Result:
    """One fresh devcluster and workload, the controller of `src_root`, both windows."""
    count: int = args.canaries
    interval_seconds = duration_seconds(args.interval)
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
            started = time.monotonic()
            await create_workload(api, count, args.interval)
            print(
                f"[{label}] created {count} Services and Canaries in {time.monotonic() - started:.1f} s"
            )
            informer.start()
            await informer.wait_synced()

            controller, metrics_url = start_controller(workdir, kubeconfig, src_root)
            pids = (controller.popen.pid, devcluster.popen.pid)
            try:
                init_seconds = await wait_for(
                    lambda: phases.count("Initialized") == count,
                    60 + count * 0.2,
                    f"{count} canaries Initialized",
                )
            except SystemExit:
                print(controller.tail())
                raise
            async with aiohttp.ClientSession() as session:
                # Let the initialisation burst pass: one full interval of ordinary cycles.
                await asyncio.sleep(interval_seconds)
                at_rest = await measure(
                    "at rest (all Initialized)", args.duration, session, metrics_url, pids
                )
                rest_rss = rss_mib(pids[0])[0]
                latencies = await time_target_changes(api, phases, samples, interval_seconds)
                started = time.monotonic()
                await in_parallel(change_selector(api, i, "green") for i in range(samples, count))
                await wait_for(
                    lambda: phases.count("Progressing") == count,
                    60 + count * 0.2,
                    f"{count} canaries Progressing",
                )
                print(
                    f"[{label}] all {count} targets changed to all Progressing: "
                    f"{time.monotonic() - started:.1f} s"
                )
                await asyncio.sleep(interval_seconds)
                analysing = await measure(
                    "analysing (all Progressing, one iteration per cycle)",
                    args.duration,
                    session,
                    metrics_url,
                    pids,
                )
            rss, peak = rss_mib(pids[0])
            return Result(
                label,
                init_seconds,
                at_rest,
                analysing,
                latencies,
                rest_rss,
                rss,
                peak,
                rss_mib(pids[1]),
            )
        finally:
            await informer.stop()
            await api.close()
            if controller is not None:
                controller.stop()
            devcluster.stop()


def compare(reference: Result, current: Result) -> None:
    """Per-cycle CPU of both controllers, measured in the same run, and the ratio."""
    print(f"\n== per canary-cycle controller CPU, {reference.label} / {current.label}")
    for name in ("at_rest", "analysing"):
        before: Window = getattr(reference, name)
        after: Window = getattr(current, name)
        ratio = before.cpu_ms_per_cycle / max(after.cpu_ms_per_cycle, 1e-9)
        print(
            f"{name.replace('_', ' '):10s} {before.cpu_ms_per_cycle:7.3f} ms -> "
            f"{after.cpu_ms_per_cycle:7.3f} ms   {ratio:.2f}x lower"
        )


async def run(args: argparse.Namespace) -> None:
    print(
        f"{args.canaries} canaries, analysis.interval {args.interval}, windows of "
        f"{args.duration:.0f} s; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
    if args.compare_ref is None:
        scenario_result = await scenario(args, ROOT / "src", "this checkout")
        scenario_result.report()
        return
    with source_of(args.compare_ref) as reference_src:
        reference = await scenario(args, reference_src, f"controller of {args.compare_ref}")
    current = await scenario(args, ROOT / "src", "this checkout")
    reference.report()
    current.report()
    compare(reference, current)


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
    parser.add_argument(
        "--compare-ref",
        metavar="COMMIT",
        help="first run the same workload against the controller of COMMIT (its src, exported "
        "with git archive; devcluster stays this checkout's), then this checkout's; print both "
        "and the ratio of controller CPU per canary-cycle",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
