# PYTHON_ARGCOMPLETE_OK
"""The `coalmine` command.

Every subcommand lives in its own module under `coalmine.cli` and is listed once in
`SUBCOMMANDS`. A module exposes `register(subparsers)`, which adds its parser and sets
`handler` to a function taking the parsed arguments and returning the exit code. Modules
import their heavy dependencies inside the handler so `coalmine --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from coalmine import __version__

Handler = Callable[[argparse.Namespace], int]

SUBCOMMANDS: tuple[str, ...] = (
    "coalmine.cli.demo",
    "coalmine.cli.abort",
    "coalmine.cli.check",
    "coalmine.cli.completion",
    "coalmine.cli.controller",
    "coalmine.cli.crds",
    "coalmine.cli.devcluster",
    "coalmine.cli.loadtester",
    "coalmine.cli.pause",
    "coalmine.cli.promote",
    "coalmine.cli.resume",
    "coalmine.cli.retry",
    "coalmine.cli.status",
)


def build_parser(prog: str = "coalmine") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Progressive delivery for Kubernetes: canary, A/B and blue/green releases of "
            "anything behind a Service, compatible with Flagger's API."
        ),
    )
    parser.add_argument("--version", action="version", version=f"coalmine {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "coalmine") -> int:
    import argcomplete

    parser = build_parser(prog)
    argcomplete.autocomplete(parser)  # answers and exits when a shell asks for completions
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["controller"]:
        from coalmine.controller.settings import go_style_argv

        argv = ["controller", *go_style_argv(argv[1:])]
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)


def kubectl_main() -> int:
    """Entry point `kubectl-coalmine`: kubectl runs it for `kubectl coalmine …`."""
    return main(prog="kubectl coalmine")
