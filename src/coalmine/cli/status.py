"""`coalmine status [NAME]`: canaries at a glance, one in detail, and a wait for CI pipelines.

Exit status (also with `--watch`): 0 when the canary (every canary, without NAME) is at rest and
not Failed — Initialized or Succeeded; 1 when one is Failed or refused by the controller (an
invalid spec, a target another canary releases: a `Valid=False` condition); 2 when `--watch` timed out first
(argparse also uses 2 for bad usage); 3 when the status cannot be read (no such canary, API
server unreachable, bad kubeconfig).

`--watch` returns at once for a canary at rest with nothing pending. Otherwise it waits until
the canary is at rest again: a run in progress (or waiting for approval) finishes, a first
deployment is initialised, a retry requested through `coalmine retry` has run, or a target
changed since the last run (the target's spec hash differs from `status.lastAppliedSpec` and is
not the promoted one: a release the controller has not picked up yet) has been released. So
`kubectl apply -f app.yaml && coalmine status podinfo --watch` never reports the previous
release. Without NAME it waits for every canary in the namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from coalmine.kube.api import KubeApi, Object

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_ERROR = 3

AT_REST: frozenset[str] = frozenset({"Initialized", "Succeeded", "Failed"})
RECENT_EVENTS = 10
BUILTIN_PHRASES = {
    "request-success-rate": "success rate",
    "request-duration": "request duration",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from coalmine.controller.settings import parse_duration

    parser = subparsers.add_parser(
        "status",
        help="show canaries, or one canary in detail; --watch waits for a release (for CI)",
        description=(
            "Without NAME: a table of the canaries in the namespace. With NAME: the spec summary, "
            "checks, webhooks and recent events. --watch waits until the release in progress ends. "
            "Exit status: 0 Succeeded/Initialized, 1 Failed or refused, 2 timed out, 3 cannot read."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="a Canary's name")
    add_cluster_arguments(parser)
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="wait until the canary (every canary, without NAME) is at rest, printing each change",
    )
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        default=600.0,
        metavar="DURATION",
        help="give up waiting after this long (like 30s, 10m; default 10m), exit status 2",
    )
    parser.set_defaults(handler=run)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", default=None, help="the namespace (default: the context's, or default)"
    )
    parser.add_argument("--kubeconfig", default=None, metavar="PATH", help="a kubeconfig file")
    parser.add_argument("--context", default=None, metavar="CTX", help="a kubeconfig context")


class CliError(RuntimeError):
    """A message for the user; the command exits with EXIT_ERROR."""


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[tuple[KubeApi, str]]:
    """A client for `--kubeconfig`/`--context` (else in-cluster, $KUBECONFIG, ~/.kube/config)."""
    import os

    from lightkube import ConfigError, KubeConfig

    from coalmine.kube.api import KubeApi

    try:
        if args.kubeconfig:
            config = KubeConfig.from_file(args.kubeconfig)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and not args.context:
            config = KubeConfig.from_service_account()
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=args.context)
    except (ConfigError, OSError, ValueError, KeyError) as error:
        raise CliError(f"cannot load the kubeconfig: {error}") from error
    assert single is not None
    namespace = args.namespace or single.namespace or "default"
    api = KubeApi(single)
    try:
        yield api, namespace
    finally:
        await api.close()


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    # No markup: event messages and names are printed as they are, brackets included.
    console = Console(highlight=False, markup=False)

    async def main() -> int:
        async with connect(args) as (api, namespace):
            return await status_command(
                api,
                namespace,
                args.name,
                watch=args.watch,
                limit=args.timeout,
                console=console,
            )

    return run_cli(main)


def run_cli(main: Any) -> int:
    """Run an async command; API and configuration failures become a message and exit 3."""
    import httpx2

    from coalmine.kube.api import Conflict, KubeApiError, NotFound

    try:
        code: int = asyncio.run(main())
        return code
    except (CliError, NotFound, Conflict, KubeApiError, OSError) as error:
        print(f"coalmine: {error}", file=sys.stderr)
        return EXIT_ERROR
    except httpx2.HTTPError as error:
        where = f" at {error.request.url}" if _has_request(error) else ""
        print(f"coalmine: cannot reach the API server{where}: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _has_request(error: Exception) -> bool:
    try:
        return getattr(error, "request", None) is not None
    except RuntimeError:  # httpx raises when the request was never set
        return False


# --- reading a canary -----------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What the table and the watch show of one canary, read from the raw object."""

    obj: Mapping[str, Any]

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.obj.get("metadata") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.obj.get("status") or {}

    @property
    def analysis(self) -> Mapping[str, Any]:
        return self.spec.get("analysis") or self.spec.get("canaryAnalysis") or {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def key(self) -> str:
        return f"{self.name}.{self.metadata.get('namespace') or 'default'}"

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "")

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def paused(self) -> bool:
        from coalmine.scheduler.verbs import is_paused

        return is_paused(self.annotations)

    @property
    def target(self) -> str:
        ref = self.spec.get("targetRef") or {}
        return f"{ref.get('kind', '?')}/{ref.get('name', '?')}"

    @property
    def threshold(self) -> int:
        value = self.analysis.get("threshold")
        return value if isinstance(value, int) and value > 0 else 1

    @property
    def failed_checks(self) -> str:
        return f"{self.status.get('failedChecks') or 0}/{self.threshold}"

    @property
    def weight(self) -> int:
        return int(self.status.get("canaryWeight") or 0)

    @property
    def refused(self) -> str:
        """The controller's reason for not running this canary (a `Valid=False` condition)."""
        for condition in self.status.get("conditions") or []:
            if condition.get("type") == "Valid" and condition.get("status") == "False":
                return str(condition.get("message") or "")
        return ""

    @property
    def flags(self) -> str:
        from coalmine.scheduler.verbs import pending_action

        marks = []
        if self.spec.get("suspend"):
            marks.append("suspended")
        if self.paused:
            marks.append("paused")
        pending = pending_action(self.annotations)
        if pending is not None:
            marks.append(f"{pending.verb} pending")
        if self.refused:
            marks.append("refused by the controller")
        return ", ".join(marks)

    def line(self) -> str:
        """One line per change while watching."""
        text = (
            f"{self.name}: {self.phase or 'Initializing'} weight {self.weight} "
            f"failed checks {self.failed_checks} iterations {self.status.get('iterations') or 0}"
        )
        return f"{text} ({self.flags})" if self.flags else text


def pending_revision(view: View, target: Object | None) -> str | None:
    """The spec hash of a target change the controller has not started a run for, else None."""
    from coalmine.api.models import CanaryStatus
    from coalmine.scheduler.status import has_spec_changed
    from coalmine.targets.hashing import revision_hash

    if target is None or view.phase not in AT_REST:
        return None
    current = revision_hash(target)
    if current is None:
        return None
    try:
        status = CanaryStatus.model_validate(dict(view.status))
    except ValueError:
        return None
    return current if has_spec_changed(status, current) else None


async def read_target(api: KubeApi, view: View) -> Object | None:
    from coalmine.kube.api import NotFound
    from coalmine.kube.kinds import DAEMON_SET, DEPLOYMENT, SERVICE

    ref = view.spec.get("targetRef") or {}
    kinds = {"Service": SERVICE, "Deployment": DEPLOYMENT, "DaemonSet": DAEMON_SET}
    kind = kinds.get(str(ref.get("kind")))
    if kind is None or str(ref.get("apiVersion")).startswith("serving.knative.dev"):
        return None
    try:
        target: Object = await api.get(kind, str(ref.get("name")), view.metadata.get("namespace"))
    except NotFound:
        return None
    target.setdefault("kind", kind.kind)
    return target


def settled(view: View, expected_hash: str | None) -> bool:
    """At rest, with no request and no target change still to be acted on."""
    from coalmine.scheduler.verbs import pending_action

    if view.refused:
        return True  # the controller will not run it until the spec is fixed
    if view.phase not in AT_REST:
        return False
    pending = pending_action(view.annotations)
    if pending is not None and pending.verb not in {"pause", "resume"}:
        return False
    return expected_hash is None or view.status.get("lastAppliedSpec") == expected_hash


def exit_code(views: Iterable[View]) -> int:
    failed = any(view.phase == "Failed" or view.refused for view in views)
    return EXIT_FAILED if failed else EXIT_OK


# --- the command ----------------------------------------------------------------------------


async def status_command(
    api: KubeApi,
    namespace: str,
    name: str | None,
    *,
    watch: bool,
    limit: float,
    console: Console,
) -> int:
    """The whole `coalmine status`; returns the exit status."""
    from coalmine.kube.api import NotFound
    from coalmine.kube.kinds import CANARY

    if name is not None:
        try:
            obj = await api.get(CANARY, name, namespace)
        except NotFound:
            raise CliError(f"canary {name} not found in namespace {namespace}") from None
        views = [View(obj)]
    else:
        views = [View(obj) for obj in (await api.list(CANARY, namespace)).items]
        views.sort(key=lambda view: view.name)
        if not views:
            console.print(f"No canaries in namespace {namespace}.")
            return EXIT_OK
    if watch:
        result = await watch_until_settled(api, namespace, name, views, limit, console)
        if result is None:
            return EXIT_TIMEOUT
        views = result
    if name is not None:
        await print_detail(api, views[0], console)
    else:
        print_table(views, console)
    return exit_code(views)


async def watch_until_settled(
    api: KubeApi,
    namespace: str,
    name: str | None,
    views: Sequence[View],
    limit: float,
    console: Console,
) -> list[View] | None:
    """Print each change until every watched canary is settled; None on timeout."""
    from coalmine.kube.cache import Informer
    from coalmine.kube.kinds import CANARY

    expected = {view.name: pending_revision(view, await read_target(api, view)) for view in views}
    if all(settled(view, expected[view.name]) for view in views):
        return list(views)
    for view in views:
        if expected[view.name]:
            console.print(f"{view.name}: a target change is waiting for the controller")
    changed = asyncio.Event()
    informer = Informer(api, CANARY, namespace)
    informer.subscribe(lambda _event, _obj: changed.set())
    informer.start()
    last_lines: dict[str, str] = {}
    try:
        async with asyncio.timeout(limit):
            await informer.wait_synced()
            while True:
                changed.clear()
                current = [
                    View(obj)
                    for obj in informer.list(namespace)
                    if name is None or obj.get("metadata", {}).get("name") == name
                ]
                if name is not None and not current:
                    raise CliError(f"canary {name} was deleted from namespace {namespace}")
                current.sort(key=lambda view: view.name)
                for view in current:
                    line = view.line()
                    if last_lines.get(view.name) != line:
                        last_lines[view.name] = line
                        console.print(f"{_clock()} {line}")
                if all(settled(view, expected.get(view.name)) for view in current):
                    return current
                await changed.wait()
    except TimeoutError:
        console.print(f"timed out after {_duration(limit)} waiting for the release to end")
        return None
    finally:
        await informer.stop()


def _clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


# --- rendering ------------------------------------------------------------------------------


def print_table(views: Sequence[View], console: Console) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "TARGET", "PHASE", "WEIGHT", "FAILED CHECKS", "LAST TRANSITION", ""):
        table.add_column(column)
    for view in views:
        table.add_row(
            view.name,
            view.target,
            _phase_text(view.phase),
            str(view.weight),
            view.failed_checks,
            str(view.status.get("lastTransitionTime") or ""),
            view.flags,
        )
    console.print(table)


def _phase_text(phase: str, suffix: str = "") -> Text:
    from rich.text import Text

    colour = {"Succeeded": "green", "Failed": "red", "Initialized": "green"}.get(phase, "yellow")
    text = Text(phase or "Initializing", style=colour)
    if suffix:
        text.append(suffix)
    return text


def strategy_of(analysis: Mapping[str, Any]) -> str:
    iterations = analysis.get("iterations") or 0
    if analysis.get("match") and iterations:
        text = f"A/B testing: {iterations} iterations, {len(analysis['match'])} match rule(s)"
    elif iterations:
        text = f"blue/green: {iterations} iterations"
    elif analysis.get("stepWeights"):
        text = f"canary: weights {analysis['stepWeights']}"
    else:
        step = analysis.get("stepWeight") or 0
        text = f"canary: stepWeight {step}, maxWeight {analysis.get('maxWeight') or 100}"
    if analysis.get("stepWeightPromotion"):
        text += f", promotion step {analysis['stepWeightPromotion']}"
    if analysis.get("mirror"):
        text += f", mirrored ({analysis.get('mirrorWeight') or 100}%)"
    return text


def threshold_of(metric: Mapping[str, Any]) -> str:
    bounds = metric.get("thresholdRange") or {}
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None:
        return f"{low} ≤ value ≤ {high}"
    if low is not None:
        return f"≥ {low}"
    if high is not None:
        return f"≤ {high}"
    if metric.get("threshold") is not None:
        return f"threshold {metric['threshold']}"
    return "-"


def last_failure(metric_name: str, events: Sequence[Object]) -> str:
    """The latest Warning that names this metric: the measured value when the check failed."""
    phrase = BUILTIN_PHRASES.get(metric_name)
    for event in reversed(events):
        message = str(event.get("message") or "")
        if event.get("type") != "Warning":
            continue
        if metric_name in message or (phrase is not None and phrase in message):
            return f"{_event_time(event)} {message}"
    return "no failure recorded"


def _event_time(event: Object) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


async def canary_events(api: KubeApi, view: View) -> list[Object]:
    from coalmine.kube.kinds import EVENT

    items = (await api.list(EVENT, view.metadata.get("namespace"))).items
    mine = [
        event
        for event in items
        if (event.get("involvedObject") or {}).get("kind") == "Canary"
        and (event.get("involvedObject") or {}).get("name") == view.name
    ]
    mine.sort(
        key=lambda event: (
            _event_time(event),
            int((event.get("metadata") or {}).get("resourceVersion") or 0),
        )
    )
    return mine


async def print_detail(api: KubeApi, view: View, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    from coalmine.api import naming
    from coalmine.scheduler.verbs import requested_action, result_of

    events = await canary_events(api, view)
    spec, status, analysis = view.spec, view.status, view.analysis
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    service = spec.get("service") or {}
    summary.add_row("Canary", view.key)
    summary.add_row("Target", view.target)
    if service.get("name"):
        summary.add_row("Service", str(service["name"]))
    summary.add_row("Provider", str(spec.get("provider") or "(controller default)"))
    summary.add_row("Strategy", strategy_of(analysis))
    summary.add_row(
        "Analysis",
        f"every {analysis.get('interval') or '1m'}, roll back after {view.threshold} failed checks"
        + (", skipped (skipAnalysis)" if spec.get("skipAnalysis") else ""),
    )
    summary.add_row("Phase", _phase_text(view.phase, f" ({view.flags})" if view.flags else ""))
    summary.add_row("Weight", str(view.weight))
    summary.add_row("Iterations", str(status.get("iterations") or 0))
    summary.add_row("Failed checks", view.failed_checks)
    summary.add_row("Last transition", str(status.get("lastTransitionTime") or ""))
    for condition in status.get("conditions") or []:
        summary.add_row(
            "Condition",
            f"{condition.get('type')}={condition.get('status')} "
            f"({condition.get('reason')}): {condition.get('message') or ''}",
        )
    action = requested_action(view.annotations)
    if action is not None:
        outcome = result_of(view.annotations, action.action_id)
        state = f"{outcome[0]}: {outcome[1]}" if outcome else "pending"
        summary.add_row("Last request", f"coalmine {action.verb} ({action.action_id}): {state}")
    elif view.annotations.get(naming.ACTION_RESULT_ANNOTATION):
        summary.add_row("Last request", view.annotations[naming.ACTION_RESULT_ANNOTATION])
    console.print(summary)

    metrics = analysis.get("metrics") or []
    console.print()
    if metrics:
        checks = Table(title="Checks", title_justify="left", box=None, header_style="bold")
        for column in ("NAME", "THRESHOLD", "INTERVAL", "SOURCE", "LAST FAILURE (from events)"):
            checks.add_column(column)
        for metric in metrics:
            metric_name = str(metric.get("name") or "")
            template = metric.get("templateRef") or {}
            if template:
                source = f"template {template.get('name')}"
            else:
                source = "query" if metric.get("query") else "builtin"
            checks.add_row(
                metric_name,
                threshold_of(metric),
                str(metric.get("interval") or "1m"),
                source,
                last_failure(metric_name, events),
            )
        console.print(checks)
        console.print(
            "Measured values of every check are exported by the controller as "
            "flagger_canary_metric_analysis on its /metrics endpoint."
        )
    else:
        console.print("Checks: none (only webhooks gate this canary)")
    print_measurements(status, console)
    hooks = analysis.get("webhooks") or []
    if hooks:
        console.print()
        table = Table(title="Webhooks", title_justify="left", box=None, header_style="bold")
        for column in ("NAME", "TYPE", "URL"):
            table.add_column(column)
        for hook in hooks:
            table.add_row(
                str(hook.get("name")), str(hook.get("type") or "rollout"), str(hook.get("url"))
            )
        console.print(table)
    console.print()
    if events:
        table = Table(title="Recent events", title_justify="left", box=None, header_style="bold")
        for column in ("TIME", "TYPE", "COUNT", "MESSAGE"):
            table.add_column(column)
        for event in events[-RECENT_EVENTS:]:
            kind = str(event.get("type") or "")
            table.add_row(
                _event_time(event),
                Text(kind, style="red" if kind == "Warning" else ""),
                str(event.get("count") or 1),
                str(event.get("message") or ""),
            )
        console.print(table)
    else:
        console.print("Recent events: none")


def print_measurements(status: Mapping[str, Any], console: Console) -> None:
    """A line per metric from `status.metrics` (the last measurement) and the judge score."""
    from pydantic import ValidationError

    from coalmine.analysis.record import summary_line
    from coalmine.api.models import MetricRecord

    records = status.get("metrics") or []
    if not records:
        return
    console.print()
    console.print("Measurements (last per metric):")
    for raw in records:
        try:
            record = MetricRecord.model_validate(raw, strict=False)
        except ValidationError:
            continue
        console.print(f"  {summary_line(record)}")
    if status.get("judgeScore") is not None:
        console.print(f"  judge score: {status['judgeScore']}")


def console_for(out: TextIO, width: int = 200) -> Console:
    """A console writing plain text to `out` (tests, pipes)."""
    from rich.console import Console

    return Console(file=out, width=width, highlight=False, markup=False, color_system=None)
