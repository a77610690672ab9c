"""`coalmine devcluster`: serve the embedded Kubernetes API server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "devcluster",
        help="run an embedded Kubernetes API server (tests, demo, local play; no cluster needed)",
        description=(
            "Serve the Kubernetes API from memory. Prints one line with the server URL when ready "
            "and serves until SIGINT or SIGTERM."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--kubeconfig-out", metavar="PATH", help="write a kubeconfig here")
    parser.add_argument(
        "--load",
        metavar="FILE",
        action="append",
        default=[],
        help="apply the manifests of FILE at start (multi-document YAML; CRDs first); repeatable",
    )
    parser.add_argument("--token", help="require this bearer token on every request")
    parser.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="do not simulate the rollout status of Deployments and DaemonSets",
    )
    parser.add_argument(
        "--rollout-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how long the simulator takes per rollout step (default 0.5)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    from pathlib import Path

    from coalmine.devcluster import ApiError, DevCluster, load_manifests

    docs = []
    for file in args.load:
        try:
            docs.extend(load_manifests(Path(file).read_text()))
        except (OSError, ValueError) as error:
            print(f"coalmine devcluster: cannot load {file}: {error}", file=sys.stderr)
            return 2

    async def serve() -> int:
        cluster = DevCluster(
            port=args.port,
            host=args.host,
            token=args.token,
            simulator=args.simulator,
            rollout_delay=args.rollout_delay,
            kubeconfig_path=args.kubeconfig_out,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await cluster.start()
        except OSError as error:
            print(
                f"coalmine devcluster: cannot listen on {args.host}:{args.port}: {error}",
                file=sys.stderr,
            )
            return 1
        try:
            try:
                cluster.apply_manifests(docs)
            except ApiError as error:
                print(f"coalmine devcluster: --load failed: {error}", file=sys.stderr)
                return 2
            print(f"coalmine devcluster: kubeconfig {cluster.kubeconfig_path}", file=sys.stderr)
            print(cluster.url, flush=True)
            housekeeping = asyncio.create_task(_keep_collector_pauses_short(stop))
            await stop.wait()
            await housekeeping
        finally:
            await cluster.stop()
        return 0

    return asyncio.run(serve())


async def _keep_collector_pauses_short(stop: asyncio.Event) -> None:
    """The controller's collector housekeeping (`controller.memory`) for the stored objects:
    at 10,000 canaries the store holds millions of objects, and the collector's full passes over
    them stalled every answer for seconds, which the controller saw as late cycles."""
    from coalmine.controller.memory import Refreezer, freeze_long_lived

    freeze_long_lived()
    refreezer = Refreezer()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()
        refreezer.tick()
