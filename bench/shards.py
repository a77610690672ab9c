"""Benchmark of sharding: R `--shards=auto` controller processes splitting N canaries.

    PYTHONPATH=src python bench/shards.py --canaries 15000 [--replicas 3] [--interval 60s]
        [--duration 60s] [--lease 20s] [--renew-deadline 15s] [--retry 3s] [--analysing]

Processes as in production: `coalmine devcluster`, R `coalmine controller --shards=auto` (each
with a `--cycle-ledger` file: a line at the start and end of every canary cycle) and this one,
which creates N Service-target canaries (`provider: kubernetes`, no metrics; as
`bench/scale.py`) and watches them. Steps and figures:

1. all N canaries `Initialized` (each replica waits out one lease duration before acting);
2. *split*: over `--duration`, the canaries each replica ran (from the ledgers) against N/R,
   and per replica the controller CPU per canary-cycle (utime+stime from /proc over the window,
   divided by its ledger's cycles), cycles and RSS;
3. *takeover*: `kill -9` of replica 0; the time until the survivors *owned* all its canaries
   (each survivor's first rebalance marker `R` with canaries gained after the kill, in its
   ledger: written once jobs exist for every canary the rebalance gave it; the latest survivor
   counts), and until every canary it ran has started a cycle on a survivor (first survivor
   cycle start after the kill: the first, median and worst canary), against the lease duration;
4. *double handling*: across all ledgers of the whole run, cycles of one canary that ran while
   another replica ran a cycle of the same canary (a start without an end in the killed
   replica's ledger counts as running until the kill). Must be 0;
5. the survivors' cost per cycle over a second window.

By default the canaries are at rest (`Initialized`, a cycle finds nothing new); `--analysing`
gives every target a new revision first, so every cycle is one analysis iteration with its
status write and Event.

Prints figures only; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from coalmine.controller.sharding import read_ledgers
from coalmine.kube.api import Conflict, KubeApi, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, NAMESPACE, SERVICE
from scale import (
    BENCH_NAMESPACE,
    CONTROLLER_FLAGS,
    Phases,
    Process,
    _environment,
    canary,
    change_selector,
    cpu_seconds,
    duration_seconds,
    free_port,
    in_parallel,
    rss_mib,
    service,
    start_devcluster,
    wait_for,
)


def start_replica(workdir: Path, kubeconfig: Path, index: int, args: argparse.Namespace) -> Process:
    log_path = workdir / f"controller-{index}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "controller",
                f"--kubeconfig={kubeconfig}",
                f"--listen-address=127.0.0.1:{free_port()}",
                "--shards=auto",
                f"--leader-election-namespace={BENCH_NAMESPACE}",
                f"--leader-election-lease={args.lease}",
                f"--leader-election-renew-deadline={args.renew_deadline}",
                f"--leader-election-retry={args.retry}",
                f"--cycle-ledger={ledger_path(workdir, index)}",
                *CONTROLLER_FLAGS,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
    return Process(f"controller-{index}", popen, log_path)


def ledger_path(workdir: Path, index: int) -> Path:
    return workdir / f"controller-{index}.ledger"


def replica_of(workdir: Path, index: int) -> str:
    """The identity a replica writes into its ledger (its first line names it)."""
    for line in ledger_path(workdir, index).read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            return parts[3]
    return ""


async def cost_window(
    workdir: Path, replicas: list[Process], alive: list[int], seconds: float, count: int
) -> dict[str, set[str]]:
    """Per live replica: canaries run, cycles, CPU per cycle and RSS over `seconds`."""
    cpu_before = {i: cpu_seconds(replicas[i].popen.pid) for i in alive}
    start = time.time()
    await asyncio.sleep(seconds)
    end = time.time()
    cpu = {i: cpu_seconds(replicas[i].popen.pid) - cpu_before[i] for i in alive}
    ledgers = [ledger_path(workdir, i) for i in alive]
    summary = read_ledgers(ledgers, since=start)
    share = count / len(alive)
    for i in alive:
        identity = replica_of(workdir, i)
        keys = summary.keys_by_replica.get(identity, set())
        cycles = summary.cycles.get(identity, 0)
        rss, peak = rss_mib(replicas[i].popen.pid)
        print(
            f"  replica {i}: {len(keys):6d} canaries ({100 * (len(keys) - share) / share:+5.1f} % "
            f"of an even share), {cycles:6d} cycles, "
            f"{1000 * cpu[i] / max(cycles, 1):6.3f} ms CPU per cycle "
            f"({100 * cpu[i] / (end - start):.0f} % of a core), RSS {rss:.0f} MiB (peak {peak:.0f})"
        )
    union = set().union(*summary.keys_by_replica.values()) if summary.keys_by_replica else set()
    print(f"  canaries run by some replica: {len(union)} of {count}")
    return summary.keys_by_replica


async def create_objects(api: KubeApi, count: int, interval: str) -> None:
    with contextlib.suppress(Conflict):
        await api.create(
            NAMESPACE,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
        )
    await in_parallel(partial(api.create, SERVICE, service(i, "blue")) for i in range(count))
    await in_parallel(partial(api.create, CANARY, canary(i, interval)) for i in range(count))


def rebalanced_at(path: Path, after: float) -> float | None:
    """The time of the first rebalance marker after `after` that gained canaries."""
    for line in path.read_text().splitlines():
        parts = line.split()
        gained = len(parts) == 4 and parts[0] == "R" and not parts[2].startswith("+0/")
        if gained and float(parts[1]) > after:
            return float(parts[1])
    return None


async def takeover(
    workdir: Path, victim: Process, orphans: set[str], survivors: list[int]
) -> float:
    """kill -9 the victim; seconds until each of its canaries started a cycle elsewhere."""
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait()
    killed = time.time()
    first_start: dict[str, float] = {}

    def taken() -> bool:
        for index in survivors:
            for line in ledger_path(workdir, index).read_text().splitlines():
                parts = line.split()
                if len(parts) == 4 and parts[0] == "S" and parts[2] in orphans:
                    stamp = float(parts[1])
                    if stamp > killed and parts[2] not in first_start:
                        first_start[parts[2]] = stamp
        return len(first_start) == len(orphans)

    async def poll() -> bool:
        await asyncio.sleep(1.0)
        return taken()

    limit = 600.0
    while not await poll():
        if time.time() - killed > limit:
            raise SystemExit(f"{len(orphans) - len(first_start)} canaries not taken over")
    owned = [rebalanced_at(ledger_path(workdir, index), killed) for index in survivors]
    if all(stamp is not None for stamp in owned):
        print(
            f"  survivors owned all of replica 0's canaries (rebalance done) "
            f"{max(stamp or 0.0 for stamp in owned) - killed:.1f} s after the kill"
        )
    delays = sorted(stamp - killed for stamp in first_start.values())
    print(
        f"  first of replica 0's canaries on a survivor {delays[0]:.1f} s after the kill, "
        f"half of them by {delays[len(delays) // 2]:.1f} s"
    )
    return delays[-1]


async def analyse_all(api: KubeApi, phases: Phases, count: int) -> None:
    """A new revision of every target: every canary `Progressing`, one iteration per cycle."""
    started = time.monotonic()
    await in_parallel(change_selector(api, i, "green") for i in range(count))
    await wait_for(
        lambda: phases.count("Progressing") == count, 300 + count * 0.2, "all Progressing"
    )
    print(f"all {count} targets changed to all Progressing: {time.monotonic() - started:.1f} s")


async def run(args: argparse.Namespace) -> None:
    count: int = args.canaries
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as directory:
        workdir = Path(directory)
        devcluster, kubeconfig = start_devcluster(workdir, 0.05)
        replicas: list[Process] = []
        api = KubeApi(load_config(str(kubeconfig)))
        phases = Phases()
        informer = Informer(api, CANARY, BENCH_NAMESPACE)
        informer.subscribe(phases)
        killed_at = 0.0
        try:
            print(
                f"{count} canaries, {args.replicas} replicas, analysis.interval {args.interval}, "
                f"lease {args.lease}/{args.renew_deadline}/{args.retry}, windows of "
                f"{args.duration:.0f} s; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
            )
            started = time.monotonic()
            await create_objects(api, count, args.interval)
            print(f"created {count} Services and Canaries in {time.monotonic() - started:.1f} s")
            informer.start()
            await informer.wait_synced()
            started = time.monotonic()
            replicas = [start_replica(workdir, kubeconfig, i, args) for i in range(args.replicas)]
            try:
                await wait_for(
                    lambda: phases.count("Initialized") == count,
                    120 + count * 0.2,
                    f"{count} canaries Initialized",
                )
            except SystemExit:
                for replica in replicas:
                    print(replica.tail())
                raise
            print(f"replicas start to {count} canaries Initialized: "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
            if args.analysing:
                await analyse_all(api, phases, count)
            await asyncio.sleep(duration_seconds(args.interval))
            alive = list(range(args.replicas))
            print(f"split, {args.duration:.0f} s window:")
            split = await cost_window(workdir, replicas, alive, args.duration, count)
            orphans = split.get(replica_of(workdir, 0), set())
            survivors = alive[1:]
            seconds = await takeover(workdir, replicas[0], orphans, survivors)
            print(
                f"takeover after kill -9 of replica 0: every one of its {len(orphans)} canaries "
                f"cycled on a survivor {seconds:.1f} s after the kill (lease {args.lease})"
            )
            killed_at = time.time() - seconds
            await asyncio.sleep(duration_seconds(args.interval))
            print(f"survivors, {args.duration:.0f} s window:")
            await cost_window(workdir, replicas, survivors, args.duration, count)
        finally:
            for replica in replicas:
                replica.stop()
            summary = read_ledgers(
                [ledger_path(workdir, i) for i in range(len(replicas))],
                open_until=killed_at,
            )
            print(
                f"double-handled cycles (one canary on two replicas at once): "
                f"{summary.overlaps} of {sum(summary.cycles.values())} cycles"
            )
            await informer.stop()
            await api.close()
            devcluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--canaries", type=int, default=15_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--interval", default="60s", help="the canaries' analysis.interval")
    parser.add_argument("--duration", type=duration_seconds, default=60.0)
    parser.add_argument("--lease", default="20s")
    parser.add_argument("--renew-deadline", default="15s")
    parser.add_argument("--retry", default="3s")
    parser.add_argument(
        "--analysing",
        action="store_true",
        help="measure with every canary Progressing (a new revision of every target)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
