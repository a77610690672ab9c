"""What `coalmine status` knows about a canary, as plain data: the `-o json|yaml` schema.

Every renderer (the tree, the watch lines, the table, JSON, YAML) reads this one model, so the
outputs never disagree. The schema is versioned (`SCHEMA_VERSION`) and documented in
docs/release-verbs.md; fields are only ever added within a version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coalmine.cli.status.reading import View, event_time

if TYPE_CHECKING:
    from coalmine.api.models import MetricRecord
    from coalmine.kube.api import Object

SCHEMA_VERSION = "coalmine.dev/status/v1"
RECENT_EVENTS = 10
BUILTIN_PHRASES = {
    "request-success-rate": "success rate",
    "request-duration": "request duration",
}
GATES = frozenset({"confirm-rollout", "confirm-promotion", "confirm-traffic-increase"})
RUN_START = "New revision detected!"
THRESHOLD_REACHED = "failed checks threshold reached "


def document(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The top level of `-o json|yaml`."""
    return {"schemaVersion": SCHEMA_VERSION, "items": list(items)}


def describe(
    view: View,
    events: Sequence[Object],
    target: Object | None = None,
    primary: Object | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The model of one canary (see docs/release-verbs.md, "The status schema")."""
    now = now or datetime.now(UTC)
    run = current_run(events)
    return {
        "name": view.name,
        "namespace": view.namespace,
        "phase": view.phase or "Initializing",
        "flags": view.flags.split(", ") if view.flags else [],
        "refused": view.refused or None,
        "reverted": view.phase == "Failed" and view.reverted,
        "traffic": view.coverage or None,
        "target": {
            "kind": str((view.spec.get("targetRef") or {}).get("kind") or "?"),
            "name": str((view.spec.get("targetRef") or {}).get("name") or "?"),
            "primary": revision_of(primary, primary=True),
            "canary": revision_of(target),
        },
        "strategy": strategy(view),
        "analysis": analysis(view, run),
        "time": timing(view, run, now),
        "metrics": [metric(view, item, run) for item in view.analysis.get("metrics") or []],
        "webhooks": [webhook(view, hook, run) for hook in view.analysis.get("webhooks") or []],
        "judgeScore": view.status.get("judgeScore"),
        "lastRequest": last_request(view, events, run),
        "conditions": [
            {key: c.get(key) for key in ("type", "status", "reason", "message")}
            for c in view.status.get("conditions") or []
        ],
        "events": [
            {
                "time": event_time(e),
                "type": str(e.get("type") or ""),
                "count": int(e.get("count") or 1),
                "message": str(e.get("message") or ""),
            }
            for e in events[-RECENT_EVENTS:]
        ],
    }


def current_run(events: Sequence[Object]) -> list[Object]:
    """The events of the latest run: from its `New revision detected!` (and the retry request
    that started it) on; every event when no run has started."""
    start = 0
    for index, event in enumerate(events):
        if str(event.get("message") or "").startswith(RUN_START):
            start = index
            before = str(events[index - 1].get("message") or "") if index else ""
            if "requested by coalmine retry" in before:
                start = index - 1
    return list(events[start:])


def revision_of(obj: Object | None, *, primary: bool = False) -> dict[str, Any] | None:
    """What runs: the images of a workload, the selector or externalName of a Service, the
    revision of a Knative Service (`primary`: the one recorded as the primary)."""
    from coalmine.api.models import KNATIVE_API_VERSION
    from coalmine.api.naming import KNATIVE_PRIMARY_REVISION_ANNOTATION

    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    found: dict[str, Any] = {"name": str(meta.get("name") or "")}
    if obj.get("apiVersion") == KNATIVE_API_VERSION:
        annotations = meta.get("annotations") or {}
        status = obj.get("status") or {}
        if primary:
            found["name"] = str(annotations.get(KNATIVE_PRIMARY_REVISION_ANNOTATION) or "?")
            return found
        found["name"] = str(status.get("latestCreatedRevisionName") or "?")
        pod = (spec.get("template") or {}).get("spec") or {}
        found["images"] = [str(c.get("image") or "") for c in pod.get("containers") or []]
        return found
    if obj.get("kind") == "Service":
        if spec.get("type") == "ExternalName":
            found["externalName"] = spec.get("externalName")
        else:
            found["selector"] = dict(spec.get("selector") or {})
        return found
    pod = (spec.get("template") or {}).get("spec") or {}
    found["images"] = [str(c.get("image") or "") for c in pod.get("containers") or []]
    return found


def steps_of(analysis_spec: Mapping[str, Any]) -> list[int]:
    """The canary weights a run walks through (Flagger's stepWeight up to maxWeight, or
    stepWeights as given)."""
    if analysis_spec.get("stepWeights"):
        return [int(w) for w in analysis_spec["stepWeights"]]
    step = int(analysis_spec.get("stepWeight") or 0)
    top = int(analysis_spec.get("maxWeight") or 100)
    return list(range(step, top + 1, step)) if step > 0 else []


def strategy(view: View) -> dict[str, Any]:
    spec = view.analysis
    iterations = int(spec.get("iterations") or 0)
    done = int(view.status.get("iterations") or 0)
    if iterations:
        kind = "ab" if spec.get("match") else "blue-green"
        return {
            "kind": kind,
            "steps": [],
            "currentStep": min(done + 1, iterations) if view.phase == "Progressing" else None,
            "totalSteps": iterations,
            "weight": view.weight,
            "mirror": bool(spec.get("mirror")),
        }
    steps = steps_of(spec)
    current = steps.index(view.weight) + 1 if view.weight in steps else None
    return {
        "kind": "canary",
        "steps": steps,
        "currentStep": current,
        "totalSteps": len(steps),
        "weight": view.weight,
        "mirror": bool(spec.get("mirror")),
    }


def analysis(view: View, run: Sequence[Object]) -> dict[str, Any]:
    """The counters; `failedChecksOfRun` keeps what a failed run reached (the status resets it)."""
    failed = int(view.status.get("failedChecks") or 0)
    of_run = failed
    if view.phase == "Failed":
        for event in reversed(run):
            message = str(event.get("message") or "")
            if THRESHOLD_REACHED in message:
                tail = message.rsplit(THRESHOLD_REACHED, 1)[1].split()[0]
                of_run = int(tail) if tail.isdigit() else failed
                break
    return {
        "interval": str(view.analysis.get("interval") or "1m"),
        "threshold": view.threshold,
        "failedChecks": failed,
        "failedChecksOfRun": max(of_run, failed),
        "iterations": int(view.status.get("iterations") or 0),
        "skipAnalysis": bool(view.spec.get("skipAnalysis")),
    }


def timing(view: View, run: Sequence[Object], now: datetime) -> dict[str, Any]:
    """Start of the run, elapsed and (for a run in progress) the least time left."""
    from coalmine.controller.settings import parse_duration

    started = ""
    for event in run:
        if str(event.get("message") or "").startswith(RUN_START):
            started = event_time(event)
            break
    elapsed = _seconds_since(started, now)
    remaining = None
    if view.phase in {"Progressing", "Waiting", "WaitingPromotion"}:
        try:
            interval = parse_duration(str(view.analysis.get("interval") or "1m"))
        except ValueError:
            interval = 60.0
        plan = strategy(view)
        left = plan["totalSteps"] - (plan["currentStep"] or 0)
        remaining = max(left, 0) * interval
    return {
        "started": started or None,
        "lastTransition": view.status.get("lastTransitionTime"),
        "elapsedSeconds": elapsed,
        "remainingSeconds": remaining,
    }


def _seconds_since(stamp: str, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)


def threshold_of(item: Mapping[str, Any]) -> str:
    bounds = item.get("thresholdRange") or {}
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None:
        return f"{low} ≤ value ≤ {high}"
    if low is not None:
        return f"≥ {low}"
    if high is not None:
        return f"≤ {high}"
    if item.get("threshold") is not None:
        return f"threshold {item['threshold']}"
    return "-"


def metric(view: View, item: Mapping[str, Any], run: Sequence[Object]) -> dict[str, Any]:
    """The last measurement: from `status.metrics` when the controller records it there,
    else the latest Warning of this run that names the metric (a failed check's value)."""
    name = str(item.get("name") or "")
    template = item.get("templateRef") or {}
    if template:
        source = f"template {template.get('name')}"
    else:
        source = "query" if item.get("query") else "builtin"
    found: dict[str, Any] = {
        "name": name,
        "threshold": threshold_of(item),
        "interval": str(item.get("interval") or "1m"),
        "source": source,
        "last": None,
    }
    record = recorded(view.status).get(name)
    if record is not None and record.measurements:
        from coalmine.analysis.record import summary_line

        last = record.measurements[-1]
        found["last"] = {
            "from": "status",
            "time": last.time,
            "value": last.value,
            "baseline": last.baseline,
            "recordedThreshold": last.threshold,
            "dryRun": bool(last.dry_run),
            "verdict": last.verdict,
            "message": last.message,
            "summary": summary_line(record),
        }
        return found
    phrase = BUILTIN_PHRASES.get(name)
    for event in reversed(run):
        message = str(event.get("message") or "")
        if event.get("type") == "Warning" and (
            name in message or (phrase is not None and phrase in message)
        ):
            found["last"] = {
                "from": "events",
                "time": event_time(event),
                "value": None,
                "baseline": None,
                "recordedThreshold": None,
                "dryRun": False,
                "verdict": "Fail",
                "message": message,
                "summary": None,
            }
            break
    return found


def recorded(status: Mapping[str, Any]) -> dict[str, MetricRecord]:
    """`status.metrics` (the controller's measurements), by metric name; unreadable ones skipped."""
    from pydantic import ValidationError

    from coalmine.api.models import MetricRecord

    found: dict[str, MetricRecord] = {}
    for raw in status.get("metrics") or []:
        try:
            record = MetricRecord.model_validate(raw, strict=False)
        except ValidationError:
            continue
        found[record.name] = record
    return found


def webhook(view: View, hook: Mapping[str, Any], run: Sequence[Object]) -> dict[str, Any]:
    """A webhook's state in this run, read from the controller's events about it."""
    name = str(hook.get("name") or "")
    kind = str(hook.get("type") or "rollout")
    state = "not called in this run"
    for event in reversed(run):
        message = str(event.get("message") or "")
        if f" {name} " not in f" {message} ":
            continue
        if "waiting for" in message:
            state = "waiting"
        elif "failed" in message or "Halt" in message:
            state = "failed"
        elif "passed" in message:
            state = "passed"
        else:
            continue
        break
    waiting_phase = {"confirm-rollout": "Waiting", "confirm-promotion": "WaitingPromotion"}
    if waiting_phase.get(kind) == view.phase:
        state = "waiting"
    return {
        "name": name,
        "type": kind,
        "gate": kind in GATES,
        "url": hook.get("url"),
        "state": state,
    }


def last_request(
    view: View, events: Sequence[Object], run: Sequence[Object]
) -> dict[str, Any] | None:
    """The last `coalmine <verb>` request, only while it concerns the current release: pending,
    or handled in this run (an event of this run names it), or no run has started since."""
    from coalmine.api import naming
    from coalmine.scheduler.verbs import pending_action, requested_action, result_of

    action = requested_action(view.annotations)
    if action is None:
        return None
    outcome = result_of(view.annotations, action.action_id)
    pending = pending_action(view.annotations) is not None
    mentioned = any(f"coalmine {action.verb}" in str(e.get("message") or "") for e in run)
    started = any(str(e.get("message") or "").startswith(RUN_START) for e in events)
    if not (pending or mentioned or not started):
        return None
    return {
        "verb": action.verb,
        "id": action.action_id,
        "state": "pending" if outcome is None else outcome[0],
        "result": (
            outcome[1] if outcome else view.annotations.get(naming.ACTION_RESULT_ANNOTATION)
        ),
    }
