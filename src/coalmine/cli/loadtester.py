"""`coalmine loadtester`: the load-testing webhook service canaries call."""

from __future__ import annotations

import argparse
import os
from typing import Any

DEFAULT_PORT = 9090
KEY_FILE_ENVIRONMENT = "COALMINE_WEBHOOK_SIGNING_KEY_FILE"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "loadtester",
        help="serve Flagger's load tester API (load tests, approval gates, rollback switches)",
        description=(
            "Serve the load tester HTTP API. Prints the URL on one line when ready and serves "
            "until SIGINT/SIGTERM. Requests must be signed by the controller "
            "(--signing-key-file); hook commands run as argv pipelines, never through a shell."
        ),
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--signing-key-file",
        default=os.environ.get(KEY_FILE_ENVIRONMENT, ""),
        help=f"file with the controller's webhook signing key(s) (env {KEY_FILE_ENVIRONMENT})",
    )
    parser.add_argument(
        "--insecure-accept-unsigned",
        action="store_true",
        help="also serve unsigned requests, limited to the safe subset in docs/loadtester.md",
    )
    parser.add_argument(
        "--namespace-regexp",
        default="",
        help="only canaries whose namespace fully matches this regular expression may use it",
    )
    parser.add_argument(
        "--allow-program",
        action="append",
        dest="allowed_programs",
        metavar="PROGRAM",
        help="one more program hook commands may run (repeatable; adds to the default list)",
    )
    parser.add_argument(
        "--allow-bash",
        action="store_true",
        help="run signed `bash` tasks with a real bash (arbitrary shell code)",
    )
    parser.add_argument(
        "--log-cmd-output", action="store_true", help="log the output of every task"
    )
    parser.add_argument("--timeout", default="1h", help="maximum run time of a task (Go duration)")
    parser.add_argument(
        "--max-tasks", type=int, default=32, help="tasks running at once; more get 429"
    )
    parser.add_argument(
        "--max-tasks-per-namespace",
        type=int,
        default=8,
        help="tasks running at once for one namespace; more get 429",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(handler=run)


def _config_or_error(args: argparse.Namespace) -> Any:
    """The LoadTesterConfig of the flags, or the error text (exit 2)."""
    import re

    from coalmine.api.models import parse_go_duration
    from coalmine.hooks.keys import read_key_file
    from coalmine.loadtester import DEFAULT_ALLOWED_PROGRAMS, LoadTesterConfig

    timeout = parse_go_duration(args.timeout)
    if timeout is None or timeout <= 0:
        return f"--timeout {args.timeout!r} is not a duration"
    try:
        re.compile(args.namespace_regexp)
    except re.error as error:
        return f"--namespace-regexp: {error}"
    if args.max_tasks < 1 or args.max_tasks_per_namespace < 1:
        return "--max-tasks and --max-tasks-per-namespace must be at least 1"
    keys: tuple[bytes, ...] = ()
    if args.signing_key_file:
        try:
            keys = read_key_file(args.signing_key_file)
        except ValueError as error:
            return f"--signing-key-file: {error}"
    elif not args.insecure_accept_unsigned:
        return (
            "no --signing-key-file: give the controller's webhook signing key, or start with "
            "--insecure-accept-unsigned to serve unsigned requests (limited to the safe subset)"
        )
    extra = tuple(
        name for name in args.allowed_programs or () if name not in DEFAULT_ALLOWED_PROGRAMS
    )
    return LoadTesterConfig(
        namespace_regexp=args.namespace_regexp,
        allowed_programs=DEFAULT_ALLOWED_PROGRAMS + extra,
        allow_bash=args.allow_bash,
        log_cmd_output=args.log_cmd_output,
        timeout_seconds=timeout,
        signing_keys=keys,
        accept_unsigned=args.insecure_accept_unsigned,
        max_tasks=args.max_tasks,
        max_tasks_per_namespace=args.max_tasks_per_namespace,
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    import sys

    from coalmine.loadtester import create_app
    from coalmine.loadtester.serving import serve, stop

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _config_or_error(args)
    if isinstance(config, str):
        print(f"coalmine loadtester: {config}", file=sys.stderr)
        return 2
    if config.accept_unsigned:
        logging.getLogger("coalmine").warning(
            "--insecure-accept-unsigned: unsigned requests are served (safe subset only)"
        )

    async def main() -> int:
        try:
            runner, server, port = await serve(create_app(config), args.host, args.port)
        except OSError as error:
            print(
                f"coalmine loadtester: cannot listen on {args.host}:{args.port}: {error}",
                file=sys.stderr,
            )
            return 1
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"http://{shown_host}:{port}", flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, done.set)
        try:
            await done.wait()
        finally:
            await stop(runner, server)
        return 0

    return asyncio.run(main())
