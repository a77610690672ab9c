"""`coalmine loadtester`: the load-testing webhook service canaries call."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_PORT = 9090


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "loadtester",
        help="serve Flagger's load tester API (load tests, approval gates, rollback switches)",
        description=(
            "Serve the load tester HTTP API. Prints the URL on one line when ready and serves "
            "until SIGINT/SIGTERM. `cmd` tasks run allow-listed programs without a shell."
        ),
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--namespace-regexp",
        default="",
        help="only canaries whose namespace matches (regular expression search) may use it",
    )
    parser.add_argument(
        "--allow-program",
        action="append",
        dest="allowed_programs",
        metavar="PROGRAM",
        help="program a `cmd` task may run (repeatable; replaces the default hey, wrk, ghz, curl)",
    )
    parser.add_argument(
        "--allow-bash", action="store_true", help="run `bash` tasks (arbitrary shell code)"
    )
    parser.add_argument(
        "--log-cmd-output", action="store_true", help="log the output of every task"
    )
    parser.add_argument("--timeout", default="1h", help="maximum run time of a task (Go duration)")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import re
    import signal
    import sys

    from aiohttp import web

    from coalmine.api.models import parse_go_duration
    from coalmine.loadtester import DEFAULT_ALLOWED_PROGRAMS, LoadTesterConfig, create_app

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    timeout = parse_go_duration(args.timeout)
    if timeout is None or timeout <= 0:
        print(f"coalmine loadtester: --timeout {args.timeout!r} is not a duration", file=sys.stderr)
        return 2
    try:
        re.compile(args.namespace_regexp)
    except re.error as error:
        print(f"coalmine loadtester: --namespace-regexp: {error}", file=sys.stderr)
        return 2
    config = LoadTesterConfig(
        namespace_regexp=args.namespace_regexp,
        allowed_programs=tuple(args.allowed_programs or DEFAULT_ALLOWED_PROGRAMS),
        allow_bash=args.allow_bash,
        log_cmd_output=args.log_cmd_output,
        timeout_seconds=timeout,
    )

    async def serve() -> int:
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as error:
            print(
                f"coalmine loadtester: cannot listen on {args.host}:{args.port}: {error}",
                file=sys.stderr,
            )
            await runner.cleanup()
            return 1
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"http://{shown_host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
        return 0

    return asyncio.run(serve())
