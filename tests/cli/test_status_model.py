"""The status model and its renderings, from raw Canary objects as the API returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coalmine.cli.status.model import describe
from coalmine.cli.status.reading import View
from coalmine.cli.status.render import tree_lines, watch_line

NOW = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


def progressing(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
        },
        "status": {"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1, **status},
    }


def event(message: str, time: str, kind: str = "Normal") -> dict[str, Any]:
    return {"message": message, "type": kind, "lastTimestamp": time, "metadata": {}}


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def test_a_progressing_canary_shows_its_step_time_and_revisions() -> None:
    events = [
        event("Initialization done! podinfo.prod", "2026-01-01T11:00:00Z"),
        event("New revision detected! Scaling up podinfo.prod", "2026-01-01T12:00:00Z"),
    ]
    model = describe(
        View(progressing()),
        events,
        deployment("podinfo", "podinfo:6.1"),
        deployment("podinfo-primary", "podinfo:6.0"),
        NOW,
    )
    assert model["strategy"]["steps"] == [10, 20, 30, 40, 50]
    assert model["time"]["elapsedSeconds"] == 300
    assert model["time"]["remainingSeconds"] == 180
    text = "\n".join(line for line, _ in tree_lines(model))
    assert "├─ Strategy      canary, step 2/5, 20 %\n│  └─ 10 → [20] → 30 → 40 → 50" in text
    assert "primary  podinfo-primary  image podinfo:6.0" in text
    assert "canary   podinfo  image podinfo:6.1" in text
    assert "elapsed 5m0s, at least 3m0s left (run started 2026-01-01T12:00:00Z)" in text
    assert "failed checks 1/5" in text


def test_measured_values_in_the_status_are_shown_against_the_threshold() -> None:
    measured = [
        {
            "name": "request-success-rate",
            "measurements": [
                {"time": "2026-01-01T12:04:00Z", "verdict": "Pass", "value": 99.73},
            ],
        }
    ]
    model = describe(View(progressing(metrics=measured)), [], None, None, NOW)
    assert model["metrics"][0]["last"]["value"] == 99.73
    text = "\n".join(line for line, _ in tree_lines(model))
    assert "request-success-rate  99.73 (≥ 99) Pass at 2026-01-01T12:04:00Z [status]" in text
    assert watch_line(model) == (
        "podinfo: Progressing, canary, step 2/5, 20 %, failed checks 1/5, "
        "request-success-rate 99.73 (≥ 99) Pass"
    )


def test_the_live_view_moves_its_clocks_without_reading_again() -> None:
    from coalmine.cli.status.watch import aged

    events = [event("New revision detected! Scaling up podinfo.prod", "2026-01-01T12:00:00Z")]
    model = describe(View(progressing()), events, None, None, NOW)
    later = aged(model, 30)
    assert (later["time"]["elapsedSeconds"], later["time"]["remainingSeconds"]) == (330, 150)
    assert model["time"]["elapsedSeconds"] == 300  # the model read from the API is unchanged
    assert aged(model, 1000)["time"]["remainingSeconds"] == 0


def test_a_knative_canary_shows_its_primary_and_latest_revisions() -> None:
    view = progressing()
    view["spec"]["targetRef"] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "podinfo",
    }
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "annotations": {"flagger.app/primary-revision": "podinfo-00001"},
        },
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.1"}]}}},
        "status": {"latestCreatedRevisionName": "podinfo-00002"},
    }
    # One object holds both sides: `coalmine status` reads it as the target and as the primary.
    model = describe(View(view), [], service, service, NOW)
    text = "\n".join(line for line, _ in tree_lines(model))
    assert "primary  podinfo-00001" in text
    assert "canary   podinfo-00002  image podinfo:6.1" in text
