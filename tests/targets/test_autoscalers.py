"""Primary HPA and KEDA ScaledObject (Flagger's hpa_reconciler_test.go and
scaled_object_reconciler_test.go)."""

from __future__ import annotations

import copy
from typing import Any

from coalmine.targets.autoscalers import (
    desired_primary_hpa,
    desired_primary_scaled_object,
    is_scaled_object_paused,
    pause_scaled_object_patch,
    primary_scaler_update,
    primary_trigger_query,
    primary_triggers,
    resume_scaled_object_patch,
    scaler_not_found,
)

from .targets_fixtures import CANARY_UID, make_canary

KEDA_REF = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"}


def _hpa(utilization: int = 99) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"team": "a", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {"note": "x"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": utilization},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def test_primary_hpa_scales_the_primary_with_target_metrics() -> None:
    primary = desired_primary_hpa(make_canary(), _hpa())
    assert primary["metadata"]["name"] == "podinfo-primary"
    assert primary["metadata"]["labels"] == {"team": "a"}
    assert "annotations" not in primary["metadata"]
    assert primary["metadata"]["ownerReferences"][0]["uid"] == CANARY_UID
    spec = primary["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo-primary",
    }
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 99
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 4)
    assert spec["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}


def test_primary_hpa_is_updated_when_target_changes_and_left_when_equal() -> None:
    canary = make_canary()
    actual = desired_primary_hpa(canary, _hpa())
    actual["metadata"]["resourceVersion"] = "3"
    assert primary_scaler_update(desired_primary_hpa(canary, _hpa()), actual) is None
    changed_target = _hpa(50)
    changed_target["spec"]["maxReplicas"] = 10
    update = primary_scaler_update(desired_primary_hpa(canary, changed_target), actual)
    assert update is not None
    assert update["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert update["spec"]["maxReplicas"] == 10
    assert update["metadata"]["resourceVersion"] == "3"


def test_primary_hpa_labels_are_kept_in_sync() -> None:
    canary = make_canary()
    actual = desired_primary_hpa(canary, _hpa())
    relabelled = _hpa()
    relabelled["metadata"]["labels"]["team"] = "b"
    update = primary_scaler_update(desired_primary_hpa(canary, relabelled), actual)
    assert update is not None
    assert update["metadata"]["labels"] == {"team": "b"}


def test_unset_min_replicas_equals_one() -> None:
    canary = make_canary()
    target = _hpa()
    target["spec"].pop("minReplicas")
    actual = desired_primary_hpa(canary, target)
    actual["spec"]["minReplicas"] = 1
    assert primary_scaler_update(desired_primary_hpa(canary, target), actual) is None


def test_primary_scaler_replicas_override_the_bounds() -> None:
    canary = make_canary(
        {
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
                "primaryScalerReplicas": {"minReplicas": 3, "maxReplicas": 9},
            }
        }
    )
    spec = desired_primary_hpa(canary, _hpa())["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 9)


def _scaled_object() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"scaledobject.keda.sh/name": "podinfo", "team": "a"},
            "annotations": {
                "scaledobject.keda.sh/transfer-hpa-ownership": "true",
                "autoscaling.keda.sh/paused-replicas": "0",
            },
        },
        "spec": {
            "scaleTargetRef": {"name": "podinfo"},
            "pollingInterval": 10,
            "minReplicaCount": 1,
            "maxReplicaCount": 5,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa"}},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "query": 'sum(rate(http_requests_total{deployment="podinfo-canary"}[1m]))',
                        "threshold": "100",
                    },
                }
            ],
        },
    }


def test_primary_scaled_object_targets_primary_and_keeps_transfer_ownership() -> None:
    canary = make_canary({"autoscalerRef": KEDA_REF})
    primary = desired_primary_scaled_object(canary, _scaled_object())
    metadata = primary["metadata"]
    assert metadata["name"] == "podinfo-primary"
    assert metadata["annotations"] == {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
    # KEDA's own label and the target's pause are not carried to the primary
    assert metadata["labels"] == {"team": "a"}
    spec = primary["spec"]
    assert spec["scaleTargetRef"] == {"name": "podinfo-primary"}
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "podinfo-hpa-primary"
    assert spec["pollingInterval"] == 10
    assert spec["minReplicaCount"] == 1
    assert spec["triggers"][0]["metadata"]["query"] == (
        'sum(rate(http_requests_total{deployment="podinfo-primary"}[1m]))'
    )


def test_primary_scaled_object_is_updated_on_change_with_replica_overrides() -> None:
    canary = make_canary(
        {
            "autoscalerRef": {
                **KEDA_REF,
                "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 7},
            }
        }
    )
    actual = desired_primary_scaled_object(canary, _scaled_object())
    assert (actual["spec"]["minReplicaCount"], actual["spec"]["maxReplicaCount"]) == (2, 7)
    assert (
        primary_scaler_update(desired_primary_scaled_object(canary, _scaled_object()), actual)
        is None
    )
    changed = _scaled_object()
    changed["spec"]["pollingInterval"] = 30
    update = primary_scaler_update(desired_primary_scaled_object(canary, changed), actual)
    assert update is not None
    assert update["spec"]["pollingInterval"] == 30


def test_foreign_metadata_on_the_primary_scaler_is_not_fought_over() -> None:
    canary = make_canary({"autoscalerRef": KEDA_REF})
    actual = desired_primary_scaled_object(canary, _scaled_object())
    actual["metadata"]["labels"]["scaledobject.keda.sh/name"] = "podinfo-primary"
    assert (
        primary_scaler_update(desired_primary_scaled_object(canary, _scaled_object()), actual)
        is None
    )


def test_pause_and_resume_scaled_object_patches() -> None:
    assert pause_scaled_object_patch() == {
        "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}
    }
    assert resume_scaled_object_patch() == {
        "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": None}}
    }
    assert is_scaled_object_paused(_scaled_object())
    resumed = copy.deepcopy(_scaled_object())
    del resumed["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"]
    assert not is_scaled_object_paused(resumed)


def test_queries_name_and_name_canary_become_primary() -> None:
    assert primary_trigger_query('x{d="podinfo"}', "podinfo") == 'x{d="podinfo-primary"}'
    assert primary_trigger_query('x{d="podinfo-canary"}', "podinfo") == 'x{d="podinfo-primary"}'
    assert primary_trigger_query('a{d="podinfo"} / b{d="podinfo-canary"}', "podinfo") == (
        'a{d="podinfo-primary"} / b{d="podinfo-primary"}'
    )
    assert primary_trigger_query('x{d="podinfo-primary"}', "podinfo") == 'x{d="podinfo-primary"}'
    assert (
        primary_trigger_query('x{pod=~"podinfo-.*"}', "podinfo") == 'x{pod=~"podinfo-primary-.*"}'
    )
    assert primary_trigger_query("podinfo_requests_total", "podinfo") == "podinfo_requests_total"


def test_named_triggers_take_primary_scaler_queries() -> None:
    triggers: list[dict[str, Any]] = [
        {"name": "first", "type": "prometheus", "metadata": {"query": "old-1"}},
        {"name": "second", "type": "prometheus", "metadata": {"query": 'q{d="podinfo"}'}},
    ]
    result = primary_triggers(triggers, "podinfo", {"first": "new-1"})
    assert result[0]["metadata"]["query"] == "new-1"
    # with explicit queries, unnamed/unmapped triggers are left as written
    assert result[1]["metadata"]["query"] == 'q{d="podinfo"}'
    assert triggers[0]["metadata"]["query"] == "old-1"


def test_missing_target_scaler_is_an_error_naming_it() -> None:
    assert str(scaler_not_found(make_canary())) == (
        "HorizontalPodAutoscaler podinfo.default get query error: not found"
    )
    assert str(scaler_not_found(make_canary({"autoscalerRef": KEDA_REF}))) == (
        "Keda ScaledObject podinfo.default get query error: not found"
    )
