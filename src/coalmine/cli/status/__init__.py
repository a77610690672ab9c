"""`coalmine status [NAME]`: canaries at a glance, one in detail, and a wait for CI pipelines.

Exit status (also with `--watch`): 0 when the canary (every canary, without NAME) is at rest and
not Failed — Initialized or Succeeded, or Failed with its target reverted to the promoted revision
(a `Reverted=True` condition: nothing left to release); 1 when one is Failed or refused by the controller (an
invalid spec, a target another canary releases: a `Valid=False` condition); 2 for bad usage
(argparse); 3 when the status cannot be read (no such canary, API server unreachable, bad
kubeconfig); 4 when `--watch` timed out first.

`--watch` returns at once for a canary at rest with nothing pending. Otherwise it waits until
the canary is at rest again: a run in progress (or waiting for approval) finishes, a first
deployment is initialised, a retry requested through `coalmine retry` has run, or a target
changed since the last run (the target's spec hash differs from `status.lastAppliedSpec` and is
not the promoted one: a release the controller has not picked up yet) has been released. So
`kubectl apply -f app.yaml && coalmine status podinfo --watch` never reports the previous
release. Without NAME it waits for every canary in the namespace (with `-A`, in every namespace).

The package: `reading` (client, raw fields), `model` (the `-o json|yaml` schema every view
renders), `render` (tree, lines, table, documents), `watch` (the wait and the live view).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from coalmine.cli.status.reading import (
    AT_REST,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
    View,
    add_cluster_arguments,
    connect,
    exit_code,
    run_cli,
)
from coalmine.cli.status.render import print_measurements

if TYPE_CHECKING:
    from rich.console import Console

    from coalmine.kube.api import KubeApi

OUTPUTS = ("tree", "json", "yaml")

__all__ = [
    "AT_REST",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CliError",
    "add_cluster_arguments",
    "connect",
    "console_for",
    "print_measurements",
    "run_cli",
    "status_command",
]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show canaries, or one canary in detail; --watch waits for a release (for CI)",
        description=(
            "Without NAME: a table of the canaries in the namespace (-A: in every namespace). "
            "With NAME: a tree of the canary — primary and canary revisions, strategy and "
            "current step, each metric's last value against its threshold, webhooks and gates, "
            "elapsed and remaining time, the last request, recent events. --watch waits until "
            "the release in progress ends, redrawing the tree on a terminal and printing one "
            "line per change otherwise. Exit status: 0 Succeeded/Initialized, 1 Failed or "
            "refused, 2 bad usage, 3 cannot read, 4 --watch timed out."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from coalmine.cli.completion import canary_names
    from coalmine.controller.settings import parse_duration

    name = parser.add_argument("name", nargs="?", metavar="NAME", help="a Canary's name")
    name.completer = canary_names  # type: ignore[attr-defined]
    add_cluster_arguments(parser)
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="canaries of every namespace (not with NAME)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="tree",
        help="tree (default: a table without NAME), or the versioned json/yaml document",
    )
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="wait until the canary (every canary, without NAME) is at rest, showing each change",
    )
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        default=600.0,
        metavar="DURATION",
        help="give up waiting after this long (like 30s, 10m; default 10m), exit status 4",
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.all_namespaces and args.name:
        print("coalmine status: NAME and -A/--all-namespaces do not go together", file=sys.stderr)
        return EXIT_USAGE
    # No markup: event messages and names are printed as they are, brackets included.
    console = Console(highlight=False, markup=False)
    # With -o json|yaml stdout holds the document alone; the watch shows its progress on stderr.
    progress = (
        console if args.output == "tree" else Console(stderr=True, highlight=False, markup=False)
    )

    async def main() -> int:
        async with connect(args) as (api, namespace):
            return await status_command(
                api,
                None if args.all_namespaces else namespace,
                args.name,
                watch=args.watch,
                limit=args.timeout,
                console=console,
                output=args.output,
                progress=progress,
            )

    return run_cli(main)


async def status_command(
    api: KubeApi,
    namespace: str | None,
    name: str | None,
    *,
    watch: bool,
    limit: float,
    console: Console,
    output: str = "tree",
    progress: Console | None = None,
) -> int:
    """The whole `coalmine status` (namespace None: every namespace); returns the exit status."""
    from coalmine.cli.status.watch import watch_until_settled
    from coalmine.kube.api import NotFound
    from coalmine.kube.kinds import CANARY

    if name is not None:
        try:
            views = [View(await api.get(CANARY, name, namespace))]
        except NotFound:
            raise CliError(f"canary {name} not found in namespace {namespace}") from None
    else:
        views = [View(obj) for obj in (await api.list(CANARY, namespace)).items]
        views.sort(key=lambda view: (view.namespace, view.name))
        if not views and output == "tree":
            where = f"namespace {namespace}" if namespace else "any namespace"
            console.print(f"No canaries in {where}.")
            return EXIT_OK

    async def describe(current: Sequence[View]) -> list[dict[str, Any]]:
        return await describe_all(api, namespace, current)

    def frame(models: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        return full_view(models, name is not None, namespace is None)

    if watch:
        result = await watch_until_settled(
            api, namespace, name, views, limit, progress or console, describe, frame
        )
        if result is None:
            return EXIT_TIMEOUT
        views = result
    models = await describe(views)
    if output == "tree":
        from coalmine.cli.status.render import print_lines

        print_lines(console, frame(models))
    else:
        from coalmine.cli.status.model import document
        from coalmine.cli.status.render import print_document

        print_document(console, document(models), output)
    return exit_code(views)


async def describe_all(
    api: KubeApi, namespace: str | None, views: Sequence[View]
) -> list[dict[str, Any]]:
    """The models of `views`: one list of events, the target and primary of each."""
    from coalmine.cli.status.model import describe
    from coalmine.cli.status.reading import canary_events, read_target

    events = await canary_events(api, namespace)
    targets = await asyncio.gather(*(read_target(api, view) for view in views))
    primaries = await asyncio.gather(*(read_target(api, view, primary=True) for view in views))
    return [
        describe(view, events.get((view.namespace, view.name), []), target, primary)
        for view, target, primary in zip(views, targets, primaries, strict=True)
    ]


def full_view(
    models: Sequence[dict[str, Any]], detail: bool, all_namespaces: bool
) -> list[tuple[str, str]]:
    """With NAME: the tree and the recent events; without: the table."""
    from coalmine.cli.status.render import event_lines, table_lines, tree_lines

    if detail:
        return [*tree_lines(models[0]), ("", ""), *event_lines(models[0])]
    table = [
        (line, "bold" if index == 0 else "")
        for index, line in enumerate(table_lines(models, all_namespaces))
    ]
    traffic = [(f"{model['name']}: {model['traffic']}", "") for model in models if model["traffic"]]
    return table + traffic


def console_for(out: TextIO, width: int = 200) -> Console:
    """A console writing plain text to `out` (tests, pipes)."""
    from rich.console import Console

    return Console(file=out, width=width, highlight=False, markup=False, color_system=None)
