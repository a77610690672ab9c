"""`coalmine demo`: a complete canary release on this machine, no cluster needed."""

from __future__ import annotations

import argparse
from typing import Any

SCENARIO_NAMES = ("service", "externalname", "deployment", "rollback")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a complete canary release on this machine, no cluster needed",
        description=(
            "Start an embedded Kubernetes API server (devcluster), the controller, a two-version "
            "application with traffic and (if the prometheus binary is on the PATH) Prometheus, "
            "then release the new version step by step and show it live. Exit code 0 when the "
            "scenario ends as expected (Succeeded; Failed for rollback)."
        ),
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIO_NAMES,
        default="service",
        help=(
            "service: a ClusterIP Service's selector moves blue → green (default); externalname: "
            "an ExternalName moves to a new cluster; deployment: a Deployment's image changes; "
            "rollback: green answers errors and the release is rolled back"
        ),
    )
    parser.add_argument(
        "--interval", default="1s", help="analysis interval of the Canary (default 1s)"
    )
    parser.add_argument(
        "--metrics",
        choices=("auto", "prometheus", "http"),
        default="auto",
        help="where metrics come from: a real Prometheus, the http provider, or auto (Prometheus "
        "when the binary is on the PATH)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave devcluster up after the release (prints its kubeconfig) until Ctrl-C",
    )
    parser.add_argument(
        "--kubeconfig-out",
        metavar="PATH",
        default="",
        help="write devcluster's kubeconfig here (default: a temporary file, removed at exit)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        default=None,
        help="print one line per change instead of the live view (the default without a terminal)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import sys

    from coalmine.demo import DemoError, DemoOptions, run_demo
    from coalmine.demo.prometheus import PrometheusError

    options = DemoOptions(
        scenario=args.scenario,
        interval=args.interval,
        metrics=args.metrics,
        keep_running=args.keep_running,
        plain=args.plain,
        kubeconfig_out=args.kubeconfig_out,
    )
    try:
        options.interval_seconds()
    except ValueError as error:
        print(f"coalmine demo: {error}", file=sys.stderr)
        return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_demo(options, stop)

    try:
        return asyncio.run(main())
    except (DemoError, PrometheusError) as error:
        print(f"coalmine demo: {error}", file=sys.stderr)
        return 2
