"""Rendering the status model: a tree per canary, one line per change, a table, JSON and YAML.

Everything is rendered as whole lines that are never wrapped or cut (`soft_wrap`): on a
terminal they carry colour, in a CI log they are the same text without it, at full width.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

PHASE_COLOURS = {"Succeeded": "green", "Initialized": "green", "Failed": "red"}
STATE_COLOURS = {"passed": "green", "failed": "red", "waiting": "yellow", "Pass": "green"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def step_text(model: Mapping[str, Any]) -> str:
    """`step 2/5, 20 %` for weights, `iteration 3/10` for blue/green and A/B."""
    plan = model["strategy"]
    current, total = plan["currentStep"], plan["totalSteps"]
    if plan["kind"] != "canary":
        name = "A/B testing" if plan["kind"] == "ab" else "blue/green"
        where = f"iteration {current}/{total}" if current else f"{total} iterations"
        return f"{name}, {where}" + (", mirrored" if plan["mirror"] else "")
    if not total:
        return "canary, no steps"
    if current:
        return f"canary, step {current}/{total}, {plan['weight']} %"
    return f"canary, {total} steps, {plan['weight']} %"


def steps_line(model: Mapping[str, Any]) -> str:
    plan = model["strategy"]
    current = plan["currentStep"]
    return " → ".join(
        f"[{weight}]" if index + 1 == current else str(weight)
        for index, weight in enumerate(plan["steps"])
    )


def failed_checks(model: Mapping[str, Any]) -> str:
    counts = model["analysis"]
    text = f"{counts['failedChecksOfRun']}/{counts['threshold']}"
    if counts["failedChecksOfRun"] != counts["failedChecks"]:
        text += " in the failed run"
    return text


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metric_value(item: Mapping[str, Any]) -> str:
    """`99.73 (≥ 99) Pass`, `110 vs baseline 100 (judge) High`, or the failure from an event."""
    last = item["last"]
    if last is None:
        return f"no value yet ({item['threshold']})"
    threshold = last["recordedThreshold"] or item["threshold"]
    dry_run = " [dry-run]" if last["dryRun"] else ""
    if last["value"] is not None:
        shown = _number(last["value"])
        if last["baseline"] is not None:
            shown += f" vs baseline {_number(last['baseline'])}"
        return f"{shown} ({threshold}) {last['verdict'] or ''}".rstrip() + dry_run
    if last["from"] == "status":
        why = f": {last['message']}" if last["message"] else ""
        return f"{last['verdict']} ({threshold}){why}{dry_run}"
    return f"failed ({threshold}): {last['message']}"


def watch_line(model: Mapping[str, Any]) -> str:
    """One line per change while watching, with the step and each metric's last value."""
    parts = [
        f"{model['name']}: {model['phase']}",
        step_text(model),
        f"failed checks {failed_checks(model)}",
    ]
    for item in model["metrics"]:
        last = item["last"]
        if last is not None and last["value"] is not None:
            parts.append(f"{item['name']} {metric_value(item)}")
    text = ", ".join(parts)
    if model["flags"]:
        text += f" ({', '.join(model['flags'])})"
    return text


def tree_lines(model: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The tree of one canary as (text, style) lines."""
    lines: list[tuple[str, str]] = []
    flags = f" ({', '.join(model['flags'])})" if model["flags"] else ""
    lines.append(
        (
            f"{model['name']}.{model['namespace']}  {model['phase']}{flags}",
            PHASE_COLOURS.get(model["phase"], "yellow"),
        )
    )
    sections = _sections(model)
    for index, (label, value, children) in enumerate(sections):
        last = index == len(sections) - 1
        lines.append((f"{'└─' if last else '├─'} {label:<14}{value}", ""))
        for child_index, (text, style) in enumerate(children):
            branch = "└─" if child_index == len(children) - 1 else "├─"
            lines.append((f"{'   ' if last else '│  '}{branch} {text}", style))
    return lines


def _sections(model: Mapping[str, Any]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    target = model["target"]
    sections: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("Target", f"{target['kind']}/{target['name']}", _revisions(target))
    ]
    if model["traffic"]:
        sections.append(("Traffic", str(model["traffic"]), []))
    if model["refused"]:
        sections.append(("Refused", str(model["refused"]), []))
    counts = model["analysis"]
    sections.append(
        (
            "Strategy",
            step_text(model),
            [(steps_line(model), "")] if model["strategy"]["steps"] else [],
        )
    )
    sections.append(
        (
            "Analysis",
            f"every {counts['interval']}, failed checks {failed_checks(model)}, "
            f"iterations {counts['iterations']}"
            + (", skipped (skipAnalysis)" if counts["skipAnalysis"] else ""),
            [],
        )
    )
    timing = model["time"]
    sections.append(
        (
            "Time",
            f"elapsed {duration(timing['elapsedSeconds'])}"
            + (
                f", at least {duration(timing['remainingSeconds'])} left"
                if timing["remainingSeconds"] is not None
                else ""
            )
            + (f" (run started {timing['started']})" if timing["started"] else ""),
            [],
        )
    )
    sections.append(_metrics_section(model))
    if model["judgeScore"] is not None:
        sections.append(("Judge score", f"{model['judgeScore']:g}", []))
    if model["webhooks"]:
        width = max(len(h["name"]) for h in model["webhooks"])
        sections.append(
            (
                "Webhooks",
                f"{len(model['webhooks'])}",
                [
                    (
                        f"{h['name']:<{width}}  {h['type']}{' (gate)' if h['gate'] else ''}: "
                        f"{h['state']}",
                        STATE_COLOURS.get(h["state"], ""),
                    )
                    for h in model["webhooks"]
                ],
            )
        )
    request = model["lastRequest"]
    if request is not None:
        result = f": {request['result']}" if request["result"] else ""
        sections.append(
            (
                "Last request",
                f"coalmine {request['verb']} ({request['id']}): {request['state']}{result}",
                [],
            )
        )
    for condition in model["conditions"]:
        sections.append(
            (
                "Condition",
                f"{condition['type']}={condition['status']} ({condition['reason']}): "
                f"{condition['message'] or ''}",
                [],
            )
        )
    return sections


def _revisions(target: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for role in ("primary", "canary"):
        found = target[role]
        if found is None:
            rows.append((f"{role:<8} (not found)", ""))
            continue
        if "images" in found:
            what = "image " + ", ".join(found["images"])
        elif "externalName" in found:
            what = f"externalName {found['externalName']}"
        elif "selector" in found:
            what = "selector " + ",".join(f"{k}={v}" for k, v in found["selector"].items())
        else:
            what = ""  # a Knative primary: the revision name says it all
        rows.append((f"{role:<8} {found['name']}  {what}".rstrip(), ""))
    return rows


def _metrics_section(model: Mapping[str, Any]) -> tuple[str, str, list[tuple[str, str]]]:
    items = model["metrics"]
    if not items:
        gate = "webhooks gate it" if model["webhooks"] else "it advances on time alone"
        return ("Metrics", f"none ({gate})", [])
    width = max(len(item["name"]) for item in items)
    children = []
    for item in items:
        last = item["last"]
        verdict = (last or {}).get("verdict") or ""
        colour = "green" if verdict == "Pass" else "red" if last is not None else ""
        where = f" at {last['time']}" if last is not None and last["time"] else ""
        origin = f" [{last['from']}]" if last is not None else ""
        children.append((f"{item['name']:<{width}}  {metric_value(item)}{where}{origin}", colour))
    return ("Metrics", f"{len(items)}, every {items[0]['interval']}", children)


def event_lines(model: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not model["events"]:
        return [("Recent events: none", "")]
    lines = [("Recent events", "bold")]
    for event in model["events"]:
        style = "red" if event["type"] == "Warning" else ""
        count = f" (x{event['count']})" if event["count"] > 1 else ""
        lines.append((f"  {event['time']}  {event['type']:<7}  {event['message']}{count}", style))
    return lines


def table_lines(models: Sequence[Mapping[str, Any]], all_namespaces: bool) -> list[str]:
    """Aligned columns sized to the content (never to a terminal width)."""
    header = ["NAME", "TARGET", "PHASE", "STEP", "FAILED CHECKS", "LAST TRANSITION", "FLAGS"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for model in models:
        row = [
            model["name"],
            f"{model['target']['kind']}/{model['target']['name']}",
            model["phase"],
            step_text(model),
            failed_checks(model),
            str(model["time"]["lastTransition"] or ""),
            ", ".join(model["flags"]),
        ]
        if all_namespaces:
            row.insert(0, model["namespace"])
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def styled(lines: Sequence[tuple[str, str]]) -> list[Text]:
    from rich.text import Text

    return [Text(text, style=style) for text, style in lines]


def print_lines(console: Console, lines: Sequence[tuple[str, str]]) -> None:
    for line in styled(lines):
        console.print(line, soft_wrap=True)


def print_document(console: Console, document: Mapping[str, Any], output: str) -> None:
    """`-o json` or `-o yaml`, written as is (no markup, no wrapping)."""
    if output == "json":
        text = json.dumps(document, indent=2, ensure_ascii=False)
    else:
        import yaml

        text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True).rstrip()
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def print_measurements(status: Mapping[str, Any], console: Console) -> None:
    """A line per metric from `status.metrics` (the last measurement) and the judge score."""
    from coalmine.analysis.record import summary_line
    from coalmine.cli.status.model import recorded

    records = recorded(status)
    if not records:
        return
    console.print("Measurements (last per metric):")
    for record in records.values():
        console.print(f"  {summary_line(record)}", soft_wrap=True)
    if status.get("judgeScore") is not None:
        console.print(f"  judge score: {status['judgeScore']}")
