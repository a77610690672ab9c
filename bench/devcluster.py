"""Benchmark of `coalmine devcluster`: request rates, watch fan-out and memory with 10,000 objects.

    PYTHONPATH=src python bench/devcluster.py [--objects 10000] [--seconds 5] [--watchers 100]
        [--updates 200] [--deployments 1000]

Starts the server as a separate process (`python -m coalmine devcluster --port 0`), so client and
server do not share a core's event loop, fills it with ConfigMaps, then measures from one
keep-alive aiohttp client. Prints figures only; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

TARGET_GET = 2000
TARGET_PATCH = 500
NAMESPACE = "bench"
WATCH_NAMESPACE = "bench-watch"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    kubeconfig: Path


def start_server(workdir: Path) -> Server:
    kubeconfig = workdir / "kubeconfig"
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalmine",
            "devcluster",
            "--port",
            "0",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http"):
        process.kill()
        raise SystemExit(f"coalmine devcluster did not start (printed {line!r})")
    return Server(line, process, kubeconfig)


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of `pid` in MiB, from /proc."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def configmap(name: str, namespace: str, index: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "true"}},
        "data": {"index": str(index), "payload": "x" * 200},
    }


async def create_namespace(session: aiohttp.ClientSession, url: str, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    async with session.post(f"{url}/api/v1/namespaces", json=body) as reply:
        if reply.status not in (201, 409):
            raise SystemExit(f"creating namespace {name}: {reply.status} {await reply.text()}")


async def fill(session: aiohttp.ClientSession, url: str, count: int) -> float:
    """Create `count` ConfigMaps over a few connections; returns creates per second."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = configmap(f"cm-{index}", NAMESPACE, index)
            async with session.post(
                f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps", json=body
            ) as reply:
                if reply.status != 201:
                    raise SystemExit(f"create cm-{index}: {reply.status} {await reply.text()}")
                await reply.read()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    return count / (time.perf_counter() - start)


async def rate(
    session: aiohttp.ClientSession, seconds: float, request: str, url: str, count: int
) -> tuple[float, int]:
    """Sequential requests on one keep-alive connection for `seconds`: (per second, errors)."""
    names = [f"cm-{i}" for i in range(count)]
    done = errors = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    base = f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps/"
    headers = {"Content-Type": "application/merge-patch+json"}
    while time.perf_counter() < deadline:
        name = random.choice(names)
        if request == "GET":
            reply = await session.get(base + name)
        else:
            body = json.dumps({"data": {"index": str(done)}})
            reply = await session.patch(base + name, data=body, headers=headers)
        await reply.read()
        if reply.status != 200:
            errors += 1
        done += 1
    return done / (time.perf_counter() - start), errors


def deployment(name: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:6.0"}]},
            },
        },
    }


async def simulated_rollouts(session: aiohttp.ClientSession, url: str, count: int) -> float:
    """Create `count` Deployments and wait until the simulator reports every one rolled out;
    returns seconds from the first create (includes the default 0.5 s rollout delay)."""
    base = f"{url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    start = time.perf_counter()
    for index in range(count):
        async with session.post(base, json=deployment(f"app-{index}")) as reply:
            if reply.status != 201:
                raise SystemExit(f"create app-{index}: {reply.status} {await reply.text()}")
            await reply.read()
    while True:
        async with session.get(base) as reply:
            items = (await reply.json())["items"]
        done = sum(
            1
            for item in items
            if (item.get("status") or {}).get("observedGeneration")
            == item["metadata"]["generation"]
            and (item.get("status") or {}).get("availableReplicas") == 2
        )
        if done == count:
            return time.perf_counter() - start
        if time.perf_counter() - start > 120:
            raise SystemExit(f"only {done}/{count} Deployments rolled out after 120 s")
        await asyncio.sleep(0.1)


async def watch_fan_out(url: str, watchers: int, updates: int) -> tuple[float, int, int, float]:
    """`watchers` watch streams on one namespace, `updates` writes to it.

    Returns (events delivered per second, watchers that saw every update, total events received,
    seconds from the first write until the last watcher got the last event)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await create_namespace(session, url, WATCH_NAMESPACE)
        async with session.post(
            f"{url}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps",
            json=configmap("watched", WATCH_NAMESPACE, 0),
        ) as reply:
            created = await reply.json()
        start_rv = created["metadata"]["resourceVersion"]
        counts = [0] * watchers
        all_seen = asyncio.Event()
        finished = 0
        ready = 0
        all_ready = asyncio.Event()
        last_event_at = 0.0

        async def watcher(index: int) -> None:
            nonlocal finished, ready, last_event_at
            params = {
                "watch": "true",
                "resourceVersion": start_rv,
                "timeoutSeconds": "120",
                "allowWatchBookmarks": "true",
            }
            async with session.get(
                f"{url}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps", params=params
            ) as reply:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                async for line in reply.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") != "MODIFIED":
                        continue
                    counts[index] += 1
                    if counts[index] == updates:
                        finished += 1
                        last_event_at = time.perf_counter()
                        if finished == watchers:
                            all_seen.set()
                        return

        tasks = [asyncio.create_task(watcher(i)) for i in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 30)
        headers = {"Content-Type": "application/merge-patch+json"}
        target = f"{url}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps/watched"
        start = time.perf_counter()
        for index in range(updates):
            body = json.dumps({"data": {"index": str(index + 1)}})
            async with session.patch(target, data=body, headers=headers) as reply:
                await reply.read()
        try:
            await asyncio.wait_for(all_seen.wait(), 60)
        except TimeoutError:
            last_event_at = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = max(last_event_at - start, 1e-9)
        total = sum(counts)
        complete = sum(1 for c in counts if c == updates)
        return total / elapsed, complete, total, elapsed


async def run(objects: int, seconds: float, watchers: int, updates: int, deployments: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-devcluster-") as workdir:
        server = start_server(Path(workdir))
        try:
            pid = server.process.pid
            print(f"devcluster at {server.url} (pid {pid}), {os.cpu_count()} CPUs")
            base_rss, _ = rss_mib(pid)
            async with aiohttp.ClientSession() as session:
                await create_namespace(session, server.url, NAMESPACE)
                creates = await fill(session, server.url, objects)
                rss, _ = rss_mib(pid)
                print(
                    f"create:        {creates:8.0f} ConfigMaps/s  ({objects} objects, 8 connections)"
                )
                print(
                    f"RSS:           {base_rss:8.1f} MiB empty, {rss:.1f} MiB with {objects} ConfigMaps"
                )
                gets, get_errors = await rate(session, seconds, "GET", server.url, objects)
                print(
                    f"GET:           {gets:8.0f} /s  (target > {TARGET_GET}; errors {get_errors})"
                )
                patches, patch_errors = await rate(session, seconds, "PATCH", server.url, objects)
                print(
                    f"PATCH (merge): {patches:8.0f} /s  (target > {TARGET_PATCH}; errors {patch_errors})"
                )
                start = time.perf_counter()
                async with session.get(
                    f"{server.url}/api/v1/namespaces/{NAMESPACE}/configmaps"
                ) as reply:
                    listed = len((await reply.json())["items"])
                print(
                    f"LIST:          {time.perf_counter() - start:8.3f} s for {listed} ConfigMaps"
                )
                if deployments:
                    seconds_taken = await simulated_rollouts(session, server.url, deployments)
                    print(
                        f"simulator:     {seconds_taken:8.2f} s to create {deployments} Deployments "
                        "and see every one rolled out (rollout delay 0.5 s)"
                    )
            per_second, complete, total, elapsed = await watch_fan_out(
                server.url, watchers, updates
            )
            print(
                f"watch fan-out: {per_second:8.0f} events/s delivered  ({watchers} watchers x "
                f"{updates} updates = {total}/{watchers * updates} events in {elapsed:.2f} s; "
                f"{complete}/{watchers} watchers got every event; target: all)"
            )
            rss, peak = rss_mib(pid)
            print(f"RSS at end:    {rss:8.1f} MiB (peak {peak:.1f} MiB)")
        finally:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.objects, args.seconds, args.watchers, args.updates, args.deployments))


if __name__ == "__main__":
    main()
