"""The remembered verdict: reused for the same objects, carried over our own status writes only."""

from __future__ import annotations

import copy
from typing import Any

from coalmine.api.models import Canary
from coalmine.controller.verdicts import Judgements
from coalmine.routers.verdict import Options

TARGET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "podinfo", "namespace": "test", "uid": "svc-1"},
    "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 80}]},
}


def canary_object(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "c-1",
            "generation": 1,
            "resourceVersion": "10",
            "labels": {"team": "a"},
        },
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {"interval": "10s", "threshold": 2, "iterations": 3},
        },
        "status": status or {"phase": "Initialized"},
    }


def judgements() -> Judgements:
    return Judgements(Options(mesh_provider="kubernetes"), lambda canary: TARGET)


def written_onto(before: dict[str, Any], **status: Any) -> dict[str, Any]:
    written = copy.deepcopy(before)
    written["metadata"]["resourceVersion"] = "11"
    written["status"] = status
    return written


def parsed(obj: dict[str, Any]) -> Canary:
    return Canary.model_validate(obj)


def test_the_same_object_is_judged_once() -> None:
    judge = judgements()
    obj = canary_object()
    first = judge(obj)
    assert first.canary is not None
    assert judge(obj) is first
    assert judge(copy.deepcopy(obj)) is first  # the same stored state (uid, resourceVersion)
    newer = copy.deepcopy(obj)
    newer["metadata"]["resourceVersion"] = "12"
    assert judge(newer) is not first


def test_our_status_write_carries_the_verdict_to_the_written_object() -> None:
    judge = judgements()
    before = canary_object()
    assert judge(before).canary is not None
    written = written_onto(before, phase="Progressing", iterations=1)
    carried = parsed(written)
    judge.carry(written, carried)
    verdict = judge(written)
    assert verdict.canary is carried
    assert verdict.refusal is None


def test_a_spec_changed_by_someone_else_meanwhile_is_judged_afresh() -> None:
    judge = judgements()
    before = canary_object()
    assert judge(before).canary is not None
    written = written_onto(before, phase="Progressing")
    written["spec"]["analysis"]["iterations"] = 5
    stale = parsed(before)
    judge.carry(written, stale)
    verdict = judge(written)
    assert verdict.canary is not stale
    assert verdict.canary is not None
    assert verdict.canary.spec.analysis is not None
    assert verdict.canary.spec.analysis.iterations == 5


def test_a_label_changed_meanwhile_is_judged_afresh() -> None:
    judge = judgements()
    before = canary_object()
    assert judge(before).canary is not None
    written = written_onto(before, phase="Progressing")
    written["metadata"]["labels"] = {"team": "b"}
    stale = parsed(before)
    judge.carry(written, stale)
    verdict = judge(written)
    assert verdict.canary is not stale
    assert verdict.canary is not None
    assert verdict.canary.metadata.labels == {"team": "b"}


def test_the_watchs_copy_of_our_write_is_the_written_object() -> None:
    # The watch may bring the write before its answer: a second dict of the same stored state.
    judge = judgements()
    before = canary_object()
    assert judge(before).canary is not None
    written = written_onto(before, phase="Progressing", iterations=1)
    from_watch = copy.deepcopy(written)
    assert judge.only_status_changed(from_watch)
    carried = parsed(written)
    judge.carry(written, carried)
    assert judge(from_watch).canary is carried


def test_a_spec_change_is_not_only_a_status_change() -> None:
    judge = judgements()
    before = canary_object()
    assert judge(before).canary is not None
    changed = written_onto(before, phase="Progressing")
    changed["spec"]["analysis"]["threshold"] = 9
    assert not judge.only_status_changed(changed)
