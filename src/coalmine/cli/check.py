"""`coalmine check -f FILE...`: validate Flagger manifests before they reach a cluster.

Output, one line per problem, in document order:

    FILE:DOC: PATH: REASON              (an error)
    FILE:DOC: PATH: warning: REASON     (a warning)
    FILE:DOC: yaml: line L, column C: MESSAGE
                                        (a YAML syntax error; the rest of that file is skipped)

DOC is the 1-based index of the document in the file's YAML stream (`-` names stdin); the items
of a `kind: List` (as `kubectl get canaries -o yaml` prints) have paths `items[N].PATH`. Objects
of other kinds than Canary, MetricTemplate and AlertProvider (flagger.app) are passed over.
Exit status: 1 when any error was found, 0 otherwise (warnings alone keep 0), 2 for bad usage
(a file that cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

YAML_SUFFIXES = (".yaml", ".yml", ".json")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate Canary, MetricTemplate and AlertProvider manifests",
        description=(
            "Validate Flagger manifests (multi-document YAML). Prints FILE:DOC: PATH: REASON per "
            "problem (warnings as PATH: warning: REASON) and exits 1 when any error is found."
        ),
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a manifest file, a directory (its *.yaml, *.yml and *.json files, recursively) "
        "or - for stdin; repeatable",
    )
    parser.add_argument(
        "--no-cross-namespace-refs",
        action="store_true",
        help="refuse references to MetricTemplates, AlertProviders and Gloo upstreams in other "
        "namespaces (as the controller flag of the same name)",
    )
    parser.add_argument(
        "--mesh-provider",
        default=None,
        help="the controller's --mesh-provider, used for canaries without spec.provider "
        "(default: provider-specific rules only apply to canaries that set spec.provider)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.set_defaults(handler=run)


def _sources(names: list[str]) -> Iterator[tuple[str, Path | None]]:
    for name in names:
        if name == "-":
            yield "-", None
            continue
        path = Path(name)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix in YAML_SUFFIXES:
                    yield str(child), child
        else:
            yield name, path


def _objects(document: object) -> Iterator[tuple[str, object]]:
    """The document itself, or the items of a `kind: List` (`kubectl get -o yaml` output)."""
    if isinstance(document, dict):
        kind = document.get("kind")
        items = document.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for position, item in enumerate(items):
                yield f"items[{position}].", item
            return
    yield "", document


def check_text(
    text: str,
    source: str,
    out: TextIO,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
    quiet: bool = False,
) -> bool:
    """Prints the problems of one YAML stream; True when it has an error."""
    from coalmine.api.manifests import YamlSyntaxError, iter_documents
    from coalmine.api.validation import inspect_object

    failed = False
    index = 0
    try:
        for index, document in enumerate(iter_documents(text), start=1):
            for prefix, item in _objects(document):
                inspection = inspect_object(
                    item,
                    no_cross_namespace_refs=no_cross_namespace_refs,
                    mesh_provider=mesh_provider,
                )
                for problem in inspection.problems:
                    if problem.severity == "error":
                        failed = True
                    elif quiet:
                        continue
                    out.write(f"{source}:{index}: {prefix}{problem}\n")
    except YamlSyntaxError as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
        out.write(f"{source}:{index + 1}: yaml: {where}{exc.message}\n")
        failed = True
    return failed


def run(args: argparse.Namespace) -> int:
    failed = False
    for source, path in _sources(args.filename):
        if path is None:
            text = sys.stdin.read()
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                print(f"{source}: cannot read: {exc}", file=sys.stderr)
                return 2
        failed |= check_text(
            text,
            source,
            sys.stdout,
            no_cross_namespace_refs=args.no_cross_namespace_refs,
            mesh_provider=args.mesh_provider,
            quiet=args.quiet,
        )
    return 1 if failed else 0
