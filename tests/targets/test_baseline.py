"""A fresh baseline's builders (targets.baseline): its own app from the primary's spec."""

from __future__ import annotations

from typing import Any

from coalmine.targets.baseline import (
    baseline_deployment_update,
    baseline_kept,
    baseline_wanted,
    desired_baseline_deployment,
    desired_baseline_service,
)
from routers.canaries import make_canary, with_status

PRIMARY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "podinfo-primary",
        "namespace": "default",
        "uid": "p-uid",
        "resourceVersion": "7",
        "labels": {"app": "podinfo-primary", "team": "a"},
        "annotations": {"coalmine.dev/promoted-revision": "abc", "note": "kept"},
    },
    "spec": {
        "replicas": 5,
        "selector": {"matchLabels": {"app": "podinfo-primary"}},
        "template": {
            "metadata": {"labels": {"app": "podinfo-primary", "tier": "web"}},
            "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]},
        },
    },
    "status": {"readyReplicas": 5},
}
BASELINE = {"baseline": {"enabled": True}, "maxWeight": 40}


def test_the_baseline_is_the_primary_relabelled_as_its_own_app_at_the_canary_size() -> None:
    canary = make_canary(analysis=BASELINE)
    built = desired_baseline_deployment(canary, PRIMARY, "app", "podinfo", 2)
    assert built["metadata"]["name"] == "podinfo-baseline"
    assert built["metadata"]["labels"] == {"app": "podinfo-baseline", "team": "a"}
    assert built["metadata"]["annotations"] == {"note": "kept"}
    assert built["metadata"]["ownerReferences"][0]["name"] == "podinfo"
    assert "resourceVersion" not in built["metadata"]
    assert "status" not in built
    spec = built["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"] == {"matchLabels": {"app": "podinfo-baseline"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "podinfo-baseline", "tier": "web"}
    assert spec["template"]["spec"] == PRIMARY["spec"]["template"]["spec"]
    # the primary is not touched
    assert PRIMARY["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}


def test_the_baseline_follows_the_canary_replicas_and_keeps_its_selector() -> None:
    canary = make_canary(analysis=BASELINE)
    actual = {
        **desired_baseline_deployment(canary, PRIMARY, "app", "podinfo", 2),
        "status": {"readyReplicas": 2},
    }
    actual["metadata"] = {**actual["metadata"], "resourceVersion": "3"}
    same = desired_baseline_deployment(canary, PRIMARY, "app", "podinfo", 2)
    assert baseline_deployment_update(same, actual) is None
    scaled = desired_baseline_deployment(canary, PRIMARY, "app", "podinfo", 4)
    written = baseline_deployment_update(scaled, actual)
    assert written is not None
    assert written["spec"]["replicas"] == 4
    assert written["metadata"]["resourceVersion"] == "3"
    assert "status" not in written


def test_the_baseline_service_selects_the_baseline_pods_or_the_primarys() -> None:
    primary_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo-primary", "namespace": "default"},
        "spec": {
            "clusterIP": "10.96.0.9",
            "selector": {"app": "podinfo-primary"},
            "ports": [{"name": "http", "port": 9898, "targetPort": "http"}],
        },
    }
    canary = make_canary(analysis=BASELINE)
    service = desired_baseline_service(canary, primary_service, (), {"app": "podinfo-baseline"})
    assert service["metadata"]["name"] == "podinfo-baseline"
    assert service["spec"]["selector"] == {"app": "podinfo-baseline"}
    assert service["spec"]["ports"] == primary_service["spec"]["ports"]
    assert "clusterIP" not in service["spec"]
    copy = desired_baseline_service(canary, primary_service, (), None)
    assert copy["spec"]["selector"] == {"app": "podinfo-primary"}


def test_the_baseline_exists_only_during_a_run() -> None:
    canary = make_canary(analysis=BASELINE)
    for phase, wanted, kept in [
        ("Initialized", False, False),
        ("Progressing", True, True),
        ("WaitingDecision", True, True),
        ("Promoting", False, True),
        ("Finalising", False, True),
        ("Succeeded", False, False),
        ("Failed", False, False),
    ]:
        current = with_status(canary, phase=phase)
        assert (baseline_wanted(current), baseline_kept(current)) == (wanted, kept), phase
    plain = with_status(make_canary(), phase="Progressing")
    assert not baseline_wanted(plain)
    assert not baseline_kept(plain)
