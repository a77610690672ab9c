"""What the demo shows: a live `rich` view on a terminal, one plain line per change otherwise.

Both views render the same `DemoState`, which the runner fills from the cluster (the Canary's
status, the HTTPRoute's weights, Kubernetes events) and from the controller's own
`flagger_canary_metric_analysis` gauge, so the values shown are the values the controller judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

EVENTS_SHOWN = 10
BAR_WIDTH = 40
CHANGE = "Change"  # the event type of the demo's own edit of the target


@dataclass
class MetricReading:
    name: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    value: float | None = None

    @property
    def bound(self) -> str:
        if self.minimum is not None:
            return f"≥ {self.minimum:g}{self.unit}"
        return f"≤ {self.maximum:g}{self.unit}"

    @property
    def ok(self) -> bool | None:
        if self.value is None:
            return None
        if self.minimum is not None and self.value < self.minimum:
            return False
        return not (self.maximum is not None and self.value > self.maximum)

    def shown(self) -> str:
        return "-" if self.value is None else f"{self.value:.2f}{self.unit}"


@dataclass
class Event:
    at: float
    type: str
    message: str


@dataclass
class DemoState:
    scenario: str
    title: str
    metrics_source: str
    expected_phase: str
    started: float = field(default_factory=time.monotonic)
    phase: str = ""
    canary_weight: int = 0
    route: dict[str, int] = field(default_factory=dict)
    failed_checks: int = 0
    metrics: list[MetricReading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    released_at: float | None = None
    finished_at: float | None = None
    progressed: bool = False
    primary: str = ""
    note: str = ""

    def elapsed(self, at: float | None = None) -> float:
        return (at if at is not None else time.monotonic()) - self.started

    def add_event(self, type_: str, message: str) -> None:
        self.events.append(Event(time.monotonic(), type_, message))

    @property
    def halts(self) -> int:
        return sum(1 for e in self.events if e.message.startswith("Halt "))

    @property
    def passed_checks(self) -> int:
        """Analyses that passed: each weight step after the first, and the promotion, follows one
        (the first step of a run is taken after the pre-rollout hooks, before any metric check)."""
        advances = sum(1 for e in self.events if e.message.startswith("Advance "))
        promoted = any(e.message.startswith("Copying ") for e in self.events)
        return max(0, advances - 1) + (1 if promoted else 0)

    @property
    def result(self) -> str:
        return self.phase if self.finished_at is not None else "unfinished"

    def summary_lines(self) -> list[str]:
        end = self.finished_at or time.monotonic()
        release_time = end - self.released_at if self.released_at is not None else 0.0
        steps = " → ".join(f"{w}%" for w in self.steps) or "none"
        if self.phase == "Succeeded" and self.finished_at is not None:
            steps += " → promoted"
        elif self.phase == "Failed" and self.finished_at is not None:
            steps += " → rolled back"
        lines = [f"Note:     {self.note}"] if self.note else []
        return [
            *lines,
            f"Result:   {self.result} (expected {self.expected_phase})",
            f"Duration: {self.elapsed(end):.1f}s in all, {release_time:.1f}s from change to end",
            f"Steps:    {steps}",
            f"Checks:   {self.passed_checks} passed, {self.halts} failed",
            f"Primary:  {self.primary or 'unknown'}",
            "Metrics:  " + ", ".join(f"{m.name} {m.shown()} ({m.bound})" for m in self.metrics),
        ]


class View(Protocol):
    def __enter__(self) -> View: ...
    def __exit__(self, *exc: object) -> None: ...
    def refresh(self, state: DemoState) -> None: ...
    def say(self, line: str) -> None: ...


class PlainView:
    """One line per event and per change of phase or weight: for logs, CI and pipes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._events_printed = 0
        self._header_printed = False
        self._last: tuple[str, int, int] | None = None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def refresh(self, state: DemoState) -> None:
        if not self._header_printed:
            self._header_printed = True
            self.say(f"coalmine demo: {state.title}")
            self.say(f"metrics: {state.metrics_source}")
        for event in state.events[self._events_printed :]:
            kind = "change" if event.type == CHANGE else f"event {event.type}"
            self.say(f"[{state.elapsed(event.at):6.1f}s] {kind}: {event.message}")
        self._events_printed = len(state.events)
        current = (state.phase, state.canary_weight, state.failed_checks)
        if state.phase and current != self._last:
            self._last = current
            metrics = ", ".join(f"{m.name} {m.shown()} ({m.bound})" for m in state.metrics)
            self.say(
                f"[{state.elapsed():6.1f}s] phase {state.phase}, canary weight "
                f"{state.canary_weight}%, failed checks {state.failed_checks}; {metrics}"
            )


def weight_bar(primary: int, canary: int, width: int = BAR_WIDTH) -> Text:
    total = primary + canary
    canary_cells = round(width * canary / total) if total else 0
    bar = Text()
    bar.append("█" * (width - canary_cells), style="blue")
    bar.append("█" * canary_cells, style="green")
    return bar


class LiveView:
    """The terminal view: phase, weight bar, metrics against thresholds, the latest events."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.state: DemoState | None = None
        self.live = Live(
            console=console, get_renderable=self._render, refresh_per_second=8, transient=False
        )

    def __enter__(self) -> LiveView:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live.is_started:
            self.live.stop()

    def say(self, line: str) -> None:
        self.console.print(line)

    def refresh(self, state: DemoState) -> None:
        self.state = state

    def _render(self) -> RenderableType:
        state = self.state
        if state is None:
            return Text("starting…")
        header = Text()
        header.append(f"{state.title}\n", style="bold")
        header.append(f"metrics: {state.metrics_source}    elapsed {state.elapsed():.1f}s")
        phase_style = {"Succeeded": "bold green", "Failed": "bold red"}.get(state.phase, "bold")
        status = Text()
        status.append("phase  ")
        status.append(state.phase or "…", style=phase_style)
        status.append(f"    failed checks {state.failed_checks}")
        if state.note:
            status.append(f"    {state.note}", style="dim")
        primary = state.route.get("primary", 100 - state.canary_weight)
        canary = state.route.get("canary", state.canary_weight)
        bar = Text("traffic ")
        bar.append(f"primary {primary:3d}% ", style="blue")
        bar.append_text(weight_bar(primary, canary))
        bar.append(f" {canary:3d}% canary", style="green")

        metrics = Table(box=None, pad_edge=False, show_edge=False)
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        metrics.add_column("threshold", justify="right")
        metrics.add_column("")
        for reading in state.metrics:
            verdict = {True: ("ok", "green"), False: ("out of range", "red"), None: ("-", "dim")}
            text, style = verdict[reading.ok]
            metrics.add_row(reading.name, reading.shown(), reading.bound, Text(text, style=style))

        events = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
        events.add_column("at", justify="right", style="dim")
        events.add_column("message")
        for event in state.events[-EVENTS_SHOWN:]:
            style = {"Warning": "yellow", CHANGE: "bold magenta"}.get(event.type, "")
            events.add_row(f"{state.elapsed(event.at):.1f}s", Text(event.message, style=style))
        return Panel(
            Group(header, Text(""), status, bar, Text(""), metrics, Text(""), events),
            title=f"coalmine demo: {state.scenario}",
            border_style="cyan",
        )
