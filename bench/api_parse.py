"""How long reading a Canary takes: parse + validate, as the controller does on every watch event;
with `--watch N`, the step before it: receiving and decoding N Canary watch events, through
lightkube's watch (the controller's path before issue 17) and through `KubeApi.watch` (aiohttp,
msgspec per line).

Run: PYTHONPATH=src python bench/api_parse.py — prints figures, never fails on time.
     PYTHONPATH=src python bench/api_parse.py --watch 5000 [--rounds 5] [--pace 0.001]

The watch mode streams from a local aiohttp server in a child process (its CPU is not counted):
N copies of a Canary as kube-apiserver sends one while it analyses (status, managedFields), one
event per chunk. The figure is the client process's CPU time (`time.process_time`) per event,
for each path, best and median of the rounds (the paths alternate; the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from coalmine.api.manifests import iter_documents
from coalmine.api.validation import parse_object

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "api" / "flagger_examples"
NAMESPACE = "bench"


def parse_examples() -> None:
    documents = [
        document
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for document in iter_documents(path.read_text())
        if isinstance(document, dict)
        and str(document.get("apiVersion", "")).startswith("flagger.app/")
    ]
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        for document in documents:
            parse_object(document)
    elapsed = time.perf_counter() - started
    count = rounds * len(documents)
    print(f"parsed {count} objects ({len(documents)} documentation examples x {rounds})")
    print(f"{count / elapsed:,.0f} objects/s, {elapsed / count * 1e6:,.0f} µs per object")


# --- --watch: the watch stream's client cost ---------------------------------------------------


def analysing_canary(resource_version: int) -> dict[str, Any]:
    """A Canary as a watch event carries it mid-analysis (about 2.5 KB of JSON)."""
    time_ = "2026-12-04T21:00:00Z"
    fields = {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/x": {}}}}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {
            "name": "podinfo-0042",
            "namespace": NAMESPACE,
            "uid": "6f1c2a9e-2d4b-4b8e-9a57-0c2f1d7e9b31",
            "resourceVersion": str(resource_version),
            "generation": 1,
            "creationTimestamp": time_,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "flagger.app/v1beta1",
                    "time": time_,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {**fields, "f:spec": {".": {}, "f:analysis": {}}},
                },
                {
                    "manager": "coalmine",
                    "operation": "Update",
                    "apiVersion": "flagger.app/v1beta1",
                    "time": time_,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {".": {}, "f:conditions": {}, "f:phase": {}}},
                    "subresource": "status",
                },
            ],
        },
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo-0042"},
            "service": {"port": 80, "targetPort": 8080},
            "analysis": {
                "interval": "10s",
                "threshold": 5,
                "iterations": 100000,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "thresholdRange": {"min": 99},
                        "interval": "1m",
                    }
                ],
                "webhooks": [{"name": "load", "url": "http://loadtester.test/", "timeout": "5s"}],
            },
        },
        "status": {
            "phase": "Progressing",
            "canaryWeight": 0,
            "failedChecks": 0,
            "iterations": resource_version % 100000,
            "lastAppliedSpec": "5d8f7c6b9",
            "lastPromotedSpec": "7f9c8d6e5",
            "lastTransitionTime": time_,
            "trackedConfigs": {},
            "conditions": [
                {
                    "type": "Promoted",
                    "status": "Unknown",
                    "reason": "Progressing",
                    "message": "New revision detected, progressing canary analysis.",
                    "lastUpdateTime": time_,
                    "lastTransitionTime": time_,
                }
            ],
        },
    }


async def serve_watch(events: int, pace: float) -> None:
    """Child process: every GET streams `events` MODIFIED events of the Canary, then ends: all
    at once (`pace` 0), or one every `pace` seconds, so that the client reads each on its own,
    as the controller reads its status writes coming back."""
    from aiohttp import web

    lines = [
        json.dumps({"type": "MODIFIED", "object": analysing_canary(1000 + index)}).encode() + b"\n"
        for index in range(events)
    ]

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # lightkube's client stops at N
            for line in lines:
                await response.write(line)
                if pace:
                    await asyncio.sleep(pace)
            await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def through_lightkube(kubeconfig: str, events: int) -> float:
    """CPU seconds of N events through lightkube's watch, as `KubeApi.watch` did before."""
    from lightkube import AsyncClient

    from coalmine.kube.api import load_config, to_dict
    from coalmine.kube.kinds import CANARY

    client = AsyncClient(config=load_config(kubeconfig))
    stream = client.watch(
        CANARY.resource, namespace=NAMESPACE, resource_version="1", server_timeout=300
    )
    count = 0
    started = time.process_time()
    async for _, obj in stream:
        to_dict(obj)
        count += 1
        if count == events:  # lightkube re-opens a watch the server ended: stop here
            break
    cpu = time.process_time() - started
    await stream.aclose()  # type: ignore[attr-defined]
    await client.close()
    return cpu


async def through_kube_api(kubeconfig: str, events: int) -> float:
    """CPU seconds of N events through `KubeApi.watch` (aiohttp, msgspec per line)."""
    from coalmine.kube.api import KubeApi, load_config
    from coalmine.kube.kinds import CANARY

    api = KubeApi(load_config(kubeconfig))
    count = 0
    started = time.process_time()
    async for _ in api.watch(CANARY, NAMESPACE, "1"):
        count += 1
    cpu = time.process_time() - started
    await api.close()
    if count != events:
        raise SystemExit(f"KubeApi.watch brought {count} events, not {events}")
    return cpu


def watch_figures(events: int, rounds: int, pace: float) -> None:
    command = [sys.executable, __file__, "--serve-watch", str(events), "--pace", str(pace)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as kubeconfig:
            json.dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "b", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "b", "user": {}}],
                    "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}],
                    "current-context": "b",
                },
                kubeconfig,
            )
            kubeconfig.flush()
            report(events, rounds, kubeconfig.name, pace)
    finally:
        server.terminate()
        server.wait()


def report(events: int, rounds: int, kubeconfig: str, pace: float) -> None:
    paths = {
        "lightkube (httpx)": through_lightkube,
        "KubeApi.watch (aiohttp+msgspec)": through_kube_api,
    }
    per_event: dict[str, list[float]] = {name: [] for name in paths}
    for index in range(rounds):
        order = list(paths.items()) if index % 2 == 0 else list(reversed(paths.items()))
        for name, path in order:
            per_event[name].append(asyncio.run(path(kubeconfig, events)) / events * 1e6)
    size = len(json.dumps(analysing_canary(1000)))
    arrival = f"one every {pace * 1000:g} ms" if pace else "all at once"
    print(f"{events} Canary watch events ({size} bytes of JSON each, {arrival}) x {rounds} rounds")
    print("client CPU per event, µs: best / median")
    for name, figures in per_event.items():
        print(f"  {name:34} {min(figures):7.1f} / {statistics.median(figures):7.1f}")
    old, new = (statistics.median(figures) for figures in per_event.values())
    print(f"ratio (median): {old / new:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--watch", type=int, metavar="N", help="decode N Canary watch events")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pace",
        type=float,
        default=0.001,
        help="seconds between two events of the stream (0: all at once); default %(default)s",
    )
    parser.add_argument("--serve-watch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_watch:
        asyncio.run(serve_watch(args.serve_watch, args.pace))
    elif args.watch:
        watch_figures(args.watch, args.rounds, args.pace)
    else:
        parse_examples()


if __name__ == "__main__":
    main()
