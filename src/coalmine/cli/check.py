"""`coalmine check -f FILE...`: validate Flagger manifests before they reach a cluster.

Text output (`-o text`, the default), one line per problem in file order, then a summary:

    FILE:LINE:COL: error: PATH: REASON
    FILE:LINE:COL: warning: PATH: REASON
    FILE:LINE:COL: error: yaml: MESSAGE      (YAML that cannot be read)
    N objects checked, M problems (E errors, W warnings)

LINE:COL is where the offending field is written (its key, or its list item); for a field that is
missing, where its parent is. `-o json` prints one JSON object instead (schema in docs/api.md).
Exit status: 0 checked and no error (warnings alone give 0), 1 an error was found, 2 bad usage or a
file that cannot be read, 3 nothing was checked (no Flagger object in any input).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from coalmine.api.providers import DEFAULT_MESH_PROVIDER

if TYPE_CHECKING:
    from coalmine.api.validation.problems import Problem, ProblemSeverity

YAML_SUFFIXES = (".yaml", ".yml", ".json")
OUTPUT_VERSION = 1

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOTHING_CHECKED = 3


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate Canary, MetricTemplate and AlertProvider manifests",
        description=(
            "Validate Flagger manifests (multi-document YAML or JSON). Prints "
            "FILE:LINE:COL: error|warning: PATH: REASON per problem and a summary line. Exit "
            "status: 0 no error, 1 errors found, 2 bad usage or an unreadable file, 3 nothing "
            "checked (no Flagger object found)."
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
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: one line per problem and a summary (default); json: one object for tools",
    )
    parser.add_argument(
        "--no-cross-namespace-refs",
        action="store_true",
        help="refuse references to MetricTemplates, AlertProviders and Gloo upstreams in other "
        "namespaces (as the controller flag of the same name)",
    )
    parser.add_argument(
        "--mesh-provider",
        default=DEFAULT_MESH_PROVIDER,
        help="the controller's --mesh-provider, used for canaries without spec.provider "
        f"(default: {DEFAULT_MESH_PROVIDER}, the controller's default)",
    )
    parser.add_argument(
        "--ingress-class",
        default="",
        help="the controller's --ingress-class (Contour's ingressClassName)",
    )
    parser.add_argument(
        "--mesh-name",
        default="",
        help="the controller's --mesh-name (App Mesh v1beta1 canaries without service.meshName)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print errors only (no warnings, no summary)"
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Finding:
    """One problem at a place in a file; `path` is None for YAML that cannot be read."""

    file: str
    line: int
    column: int
    severity: ProblemSeverity
    path: str | None
    message: str
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def text(self) -> str:
        subject = f"{self.path}: " if self.path is not None else "yaml: "
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {subject}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
        }


@dataclass
class Result:
    """What checking one or more inputs found."""

    findings: list[Finding] = field(default_factory=list)
    objects: int = 0
    files: int = 0

    @property
    def errors(self) -> int:
        return sum(finding.severity == "error" for finding in self.findings)

    @property
    def warnings(self) -> int:
        return sum(finding.severity == "warning" for finding in self.findings)

    def exit_code(self) -> int:
        if self.errors:
            return EXIT_PROBLEMS
        return EXIT_OK if self.objects else EXIT_NOTHING_CHECKED

    def summary(self) -> str:
        objects = _plural(self.objects, "object")
        if not self.findings:
            return f"{objects} checked, no problems"
        problems = _plural(len(self.findings), "problem")
        counts = f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}"
        return f"{objects} checked, {problems} ({counts})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class Options:
    """The controller's flags that change the rules."""

    no_cross_namespace_refs: bool = False
    mesh_provider: str | None = DEFAULT_MESH_PROVIDER
    ingress_class: str = ""
    mesh_name: str = ""


def _objects(document: object) -> Iterator[tuple[str, object]]:
    """The document itself, or the items of a `kind: List` (`kubectl get -o yaml` output)."""
    if isinstance(document, Mapping):
        kind = document.get("kind")
        items = document.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for position, item in enumerate(items):
                yield f"items[{position}].", item
            return
    yield "", document


def _identity(item: object) -> tuple[str | None, str | None, str | None]:
    if not isinstance(item, Mapping):
        return None, None, None
    metadata = item.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    values = (item.get("kind"), metadata.get("name"), metadata.get("namespace"))
    kind, name, namespace = (value if isinstance(value, str) else None for value in values)
    return kind, name, namespace


def check_stream(text: str, source: str, options: Options = Options()) -> Result:
    """Every problem of one YAML stream, placed at the line and column of its field."""
    from coalmine.api.manifests import YamlSyntaxError, iter_located_documents
    from coalmine.api.validation import inspect_object

    result = Result(files=1)
    templates: dict[tuple[str, str], str] = {}
    canaries: list[tuple[Any, str, object, Any]] = []
    for document in iter_located_documents(text):
        if isinstance(document, YamlSyntaxError):
            result.findings.append(_yaml_finding(source, document))
            continue
        for prefix, item in _objects(document.data):
            inspection = inspect_object(
                item,
                no_cross_namespace_refs=options.no_cross_namespace_refs,
                mesh_provider=options.mesh_provider,
            )
            if inspection.kind is not None:
                result.objects += 1
            _note_template(inspection.obj, templates)
            if inspection.kind == "Canary" and inspection.obj is not None:
                canaries.append((document, prefix, item, inspection.obj))
            problems = [*inspection.problems, *_routing_findings(inspection.obj, options)]
            _add_findings(result, source, document, prefix, item, problems)
    # a judged or aggregated metric on a template (in this input) whose provider has no ranges
    from coalmine.api.metric_providers import range_problems

    for document, prefix, item, canary in canaries:
        _add_findings(result, source, document, prefix, item, range_problems(canary, templates))
    result.findings.sort(key=lambda finding: (finding.line, finding.column))
    return result


def _note_template(obj: object, templates: dict[tuple[str, str], str]) -> None:
    from coalmine.api.models import MetricTemplate

    if isinstance(obj, MetricTemplate):
        key = (obj.metadata.namespace or "", obj.metadata.name or "")
        templates[key] = obj.spec.provider.type


def _add_findings(
    result: Result,
    source: str,
    document: Any,
    prefix: str,
    item: object,
    problems: list[Problem],
) -> None:
    kind, name, namespace = _identity(item)
    for problem in problems:
        where = document.position(prefix + problem.path)
        result.findings.append(
            Finding(
                source,
                where.line,
                where.column,
                problem.severity,
                prefix + problem.path,
                problem.reason,
                kind,
                name,
                namespace,
            )
        )


def _routing_findings(obj: object, options: Options) -> list[Problem]:
    """What the controller's routing verdict says of a Canary (`routers.verdict.compatibility`,
    the very function the controller calls), without a live target Service."""
    from coalmine.api.models import Canary
    from coalmine.routers.verdict import Options as VerdictOptions
    from coalmine.routers.verdict import compatibility

    if not isinstance(obj, Canary):
        return []
    verdict = VerdictOptions(
        mesh_provider=options.mesh_provider or DEFAULT_MESH_PROVIDER,
        no_cross_namespace_refs=options.no_cross_namespace_refs,
        ingress_class=options.ingress_class,
        mesh_name=options.mesh_name,
    )
    return compatibility(obj, verdict)


def check_bytes(data: bytes, source: str, options: Options = Options()) -> Result:
    """`check_stream` of a file's bytes: text that is not UTF-8 is a problem at its position."""
    from coalmine.api.manifests import YamlSyntaxError, decode

    try:
        text = decode(data)
    except YamlSyntaxError as exc:
        return Result(findings=[_yaml_finding(source, exc)], files=1)
    return check_stream(text, source, options)


def _yaml_finding(source: str, error: Exception) -> Finding:
    line = getattr(error, "line", 0) or 1
    column = getattr(error, "column", 0) or 1
    message = getattr(error, "message", None) or str(error)
    return Finding(source, line, column, "error", None, message)


def check_text(
    text: str,
    source: str,
    out: TextIO,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = DEFAULT_MESH_PROVIDER,
    quiet: bool = False,
) -> bool:
    """Prints the problems of one YAML stream (no summary); True when it has an error."""
    result = check_stream(text, source, Options(no_cross_namespace_refs, mesh_provider))
    for finding in result.findings:
        if not (quiet and finding.severity == "warning"):
            out.write(finding.text() + "\n")
    return bool(result.errors)


class _Output:
    """stdout that survives a reader closing the pipe (`| head`): the rest goes to /dev/null, so
    checking finishes and the exit status still tells the result."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError):  # not a real file (a test's StringIO)
            pass
        finally:
            os.close(devnull)


def _sources(names: list[str]) -> Iterator[tuple[str, Path | None]]:
    for name in names:
        if name == "-":
            yield "-", None
            continue
        path = Path(name)
        if not path.is_dir():
            yield name, path
            continue
        children = [
            child
            for child in sorted(path.rglob("*"))
            if child.is_file() and child.suffix in YAML_SUFFIXES
        ]
        if not children:
            _warn(f"{name}: no *.yaml, *.yml or *.json files in this directory")
        for child in children:
            yield str(child), child


def _warn(message: str) -> None:
    print(f"coalmine check: warning: {message}", file=sys.stderr)


def _read(path: Path | None) -> bytes:
    if path is not None:
        return path.read_bytes()
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "replace")


def run(args: argparse.Namespace) -> int:
    options = Options(
        args.no_cross_namespace_refs, args.mesh_provider, args.ingress_class, args.mesh_name
    )
    out = _Output(sys.stdout)
    total = Result()
    for source, path in _sources(args.filename):
        try:
            data = _read(path)
        except OSError as exc:
            print(f"{source}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        result = check_bytes(data, source, options)
        total.files += result.files
        total.objects += result.objects
        total.findings.extend(result.findings)
        if args.output == "text":
            for finding in result.findings:
                if not (args.quiet and finding.severity == "warning"):
                    out.write(finding.text() + "\n")
    code = total.exit_code()
    if code == EXIT_NOTHING_CHECKED:
        _warn("nothing checked: no Canary, MetricTemplate or AlertProvider (flagger.app) found")
    if args.output == "json":
        out.write(json.dumps(json_report(total, code, quiet=args.quiet), indent=2) + "\n")
    elif not args.quiet:
        out.write(total.summary() + "\n")
    return code


def json_report(result: Result, code: int, *, quiet: bool = False) -> dict[str, object]:
    shown = [f for f in result.findings if not (quiet and f.severity == "warning")]
    return {
        "version": OUTPUT_VERSION,
        "problems": [finding.to_json() for finding in shown],
        "summary": {
            "files": result.files,
            "objects": result.objects,
            "errors": result.errors,
            "warnings": result.warnings,
            "exitCode": code,
        },
    }
