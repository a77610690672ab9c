"""Deployment targets (Flagger's deployment_controller_test.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.targets import deployment as dep
from coalmine.targets.configs import TrackedConfigs, resolve_tracked_configs
from coalmine.targets.errors import TargetError
from coalmine.targets.hashing import workload_hash
from coalmine.targets.workload import WorkloadMetadata, pod_spec_of, workload_metadata

from .targets_fixtures import (
    CANARY_UID,
    has_spec_changed,
    make_canary,
    podinfo_configmaps,
    podinfo_deployment,
    podinfo_secrets,
)


def _tracked(target: dict[str, Any]) -> TrackedConfigs:
    return resolve_tracked_configs(
        pod_spec_of(target), "default", podinfo_configmaps(), podinfo_secrets()
    )


def _primary(
    canary: Canary, target: dict[str, Any], prefixes: tuple[str, ...] = ("",)
) -> dict[str, Any]:
    meta = workload_metadata(canary, target)
    return dep.desired_primary_deployment(
        canary,
        target,
        meta,
        include_label_prefixes=prefixes,
        tracked=_tracked(target),
        template_id="id-1",
    )


def test_sync_consistent_naming_creates_primary_selecting_primary_pods(
    canary: Canary, deployment: dict[str, Any]
) -> None:
    primary = _primary(canary, deployment)
    assert primary["metadata"]["name"] == "podinfo-primary"
    assert primary["metadata"]["namespace"] == "default"
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    template = primary["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "podinfo-primary"}
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "flagger-id": "id-1",
    }
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.0"
    # Flux's keys are not copied; other annotations are (creation only)
    assert primary["metadata"]["annotations"] == {
        "app.kubernetes.io/test-annotation-1": "test-annotation-value-1"
    }
    assert primary["metadata"]["labels"] == {"app": "podinfo-primary"}
    assert primary["metadata"]["ownerReferences"][0]["uid"] == CANARY_UID
    for key in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
        assert primary["spec"][key] == deployment["spec"][key]
    assert primary["spec"]["replicas"] == 2
    assert "status" not in primary
    # the target itself is not modified
    assert deployment["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo"


def test_sync_inconsistent_naming_uses_the_selector_value_not_the_name() -> None:
    target = podinfo_deployment()
    target["metadata"]["name"] = "podinfo-service"
    target["spec"]["selector"]["matchLabels"] = {"app": "podinfo"}
    canary = make_canary(
        {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-service"}}
    )
    primary = _primary(canary, target)
    assert primary["metadata"]["name"] == "podinfo-service-primary"
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}


def test_primary_replicas_default_to_one_when_target_has_none_or_zero(canary: Canary) -> None:
    for replicas in (None, 0):
        target = podinfo_deployment()
        target["spec"]["replicas"] = replicas
        assert _primary(canary, target)["spec"]["replicas"] == 1


def test_labels_follow_include_label_prefix(canary: Canary, deployment: dict[str, Any]) -> None:
    primary = _primary(canary, deployment, ("app.kubernetes.io",))
    assert primary["metadata"]["labels"] == {
        "app": "podinfo-primary",
        "app.kubernetes.io/test-label-1": "test-label-value-1",
    }


def test_missing_selector_label_makes_the_target_unusable(
    canary: Canary, deployment: dict[str, Any]
) -> None:
    deployment["spec"]["selector"]["matchLabels"] = {"role": "web"}
    with pytest.raises(
        TargetError, match=r"deployment podinfo\.default spec\.selector\.matchLabels"
    ):
        workload_metadata(canary, deployment)


def test_promote_copies_image_labels_annotations_and_config_refs() -> None:
    canary = make_canary({"autoscalerRef": None})
    target = podinfo_deployment()
    primary = _primary(canary, target)
    primary["metadata"]["resourceVersion"] = "7"
    new_target = copy.deepcopy(target)
    new_target["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "ghcr.io/stefanprodan/podinfo:6.0.1"
    )
    new_target["spec"]["replicas"] = 4
    new_target["spec"]["minReadySeconds"] = 9
    meta = workload_metadata(canary, new_target)
    promoted = dep.promoted_primary_deployment(
        canary,
        new_target,
        primary,
        meta,
        include_label_prefixes=("app.kubernetes.io",),
        tracked=_tracked(new_target),
        template_id="id-2",
    )
    spec = promoted["spec"]
    assert (
        spec["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"
    )
    assert spec["template"]["metadata"]["annotations"]["flagger-id"] == "id-2"
    assert spec["replicas"] == 4
    assert spec["minReadySeconds"] == 9
    assert spec["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert promoted["metadata"]["labels"] == {
        "app": "podinfo-primary",
        "app.kubernetes.io/test-label-1": "test-label-value-1",
    }
    assert promoted["metadata"]["annotations"] == {
        "app.kubernetes.io/test-annotation-1": "test-annotation-value-1"
    }
    assert promoted["metadata"]["resourceVersion"] == "7"
    env = spec["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["configMapKeyRef"]["name"] == "podinfo-config-env-primary"
    assert env[1]["valueFrom"]["secretKeyRef"]["name"] == "podinfo-secret-env-primary"


def test_promote_leaves_replicas_to_the_autoscaler(
    canary: Canary, deployment: dict[str, Any]
) -> None:
    primary = _primary(canary, deployment)
    primary["spec"]["replicas"] = 5
    meta = workload_metadata(canary, deployment)
    promoted = dep.promoted_primary_deployment(
        canary,
        deployment,
        primary,
        meta,
        include_label_prefixes=("",),
        tracked=None,
        template_id="x",
    )
    assert promoted["spec"]["replicas"] == 5


def test_no_config_tracking_keeps_original_config_names(
    canary: Canary, deployment: dict[str, Any]
) -> None:
    meta = workload_metadata(canary, deployment)
    primary = dep.desired_primary_deployment(
        canary, deployment, meta, include_label_prefixes=("",), tracked=None, template_id="x"
    )
    env = primary["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["configMapKeyRef"]["name"] == "podinfo-config-env"


def test_has_target_changed_on_template_change_but_not_back_to_promoted(
    deployment: dict[str, Any],
) -> None:
    promoted = workload_hash(deployment)
    changed = copy.deepcopy(deployment)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    assert has_spec_changed(workload_hash(changed), promoted, promoted)
    # the analysis of `changed` started, then the user rolled back to the promoted version
    assert not has_spec_changed(promoted, workload_hash(changed), promoted)
    other = copy.deepcopy(changed)
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:3"
    assert has_spec_changed(workload_hash(other), workload_hash(changed), promoted)


def test_scale_to_zero_patches_replicas_to_zero() -> None:
    assert dep.scale_to_zero_patch() == {"spec": {"replicas": 0}}


def test_scale_from_zero_uses_target_then_primary_then_autoscaler_minimum() -> None:
    target = podinfo_deployment()
    no_scaler = make_canary({"autoscalerRef": None})
    assert dep.scale_from_zero_patch(no_scaler, target, None, None) == {"spec": {"replicas": 2}}
    target["spec"]["replicas"] = 0
    primary = {"spec": {"replicas": 3}}
    assert dep.scale_from_zero_patch(no_scaler, target, primary, None) == {"spec": {"replicas": 3}}
    assert dep.scale_from_zero_patch(no_scaler, target, {"spec": {}}, None) == {
        "spec": {"replicas": 1}
    }
    hpa_canary = make_canary()
    hpa = {"spec": {"minReplicas": 2, "maxReplicas": 4}}
    assert dep.scale_from_zero_patch(hpa_canary, target, primary, hpa) == {"spec": {"replicas": 2}}
    assert dep.scale_from_zero_patch(hpa_canary, target, primary, {"spec": {"minReplicas": 1}}) == {
        "spec": {"replicas": 1}
    }
    keda_canary = make_canary(
        {
            "autoscalerRef": {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": "podinfo",
            }
        }
    )
    so = {"spec": {"minReplicaCount": 3}}
    assert dep.scale_from_zero_patch(keda_canary, target, primary, so) == {"spec": {"replicas": 3}}


def test_finalize_restores_target_replicas_from_primary() -> None:
    canary = make_canary({"autoscalerRef": None})
    target = podinfo_deployment()
    target["spec"]["replicas"] = 0
    assert dep.finalize_patch(canary, target, {"spec": {}}, None) == {"spec": {"replicas": 1}}
    assert dep.finalize_patch(canary, target, {"spec": {"replicas": 3}}, None) == {
        "spec": {"replicas": 3}
    }
    assert dep.finalize_patch(canary, target, None, None) == {"spec": {"replicas": 1}}


def test_anti_affinity_and_topology_spread_select_primary_pods(canary: Canary) -> None:
    target = podinfo_deployment()
    selector_terms = {
        "matchLabels": {"app": "podinfo", "role": "podinfo"},
        "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["other", "podinfo", "podinfo"]},
            {"key": "team", "operator": "In", "values": ["podinfo"]},
        ],
    }
    pod_spec = target["spec"]["template"]["spec"]
    pod_spec["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": copy.deepcopy(selector_terms),
                        "topologyKey": "zone",
                    },
                }
            ],
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": copy.deepcopy(selector_terms),
                    "topologyKey": "kubernetes.io/hostname",
                }
            ],
        },
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "podinfo"}}, "topologyKey": "zone"}
            ]
        },
    }
    pod_spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": copy.deepcopy(selector_terms),
        },
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "other"}},
        },
    ]
    spec = _primary(canary, target)["spec"]["template"]["spec"]
    anti = spec["affinity"]["podAntiAffinity"]
    rewritten = [
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
            "labelSelector"
        ],
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"],
        spec["topologySpreadConstraints"][0]["labelSelector"],
    ]
    for selector in rewritten:
        assert selector["matchLabels"] == {"app": "podinfo-primary", "role": "podinfo"}
        assert selector["matchExpressions"][0]["values"] == ["other", "podinfo-primary", "podinfo"]
        assert selector["matchExpressions"][1]["values"] == ["podinfo"]
    assert spec["topologySpreadConstraints"][1]["labelSelector"] == {
        "matchLabels": {"app": "other"}
    }
    # pod affinity (not anti) is left alone
    assert spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "labelSelector"
    ] == {"matchLabels": {"app": "podinfo"}}


def test_workload_metadata_discovers_ports_when_asked() -> None:
    canary = make_canary({"service": {"port": 9898, "portDiscovery": True}})
    meta = workload_metadata(canary, podinfo_deployment())
    assert meta == WorkloadMetadata("app", "podinfo", {"http-metrics": 8080, "tcp-podinfo-2": 8888})
    assert workload_metadata(make_canary(), podinfo_deployment()).ports == {}
