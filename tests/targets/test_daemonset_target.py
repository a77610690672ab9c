"""DaemonSet targets (Flagger's daemonset_controller_test.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.targets import daemonset as ds
from coalmine.targets.configs import resolve_tracked_configs
from coalmine.targets.errors import TargetError
from coalmine.targets.hashing import workload_hash
from coalmine.targets.workload import pod_spec_of, workload_metadata

from .targets_fixtures import (
    has_spec_changed,
    make_canary,
    podinfo_configmaps,
    podinfo_daemonset,
    podinfo_secrets,
)

PARKED = "flagger.app/scale-to-zero"


def _canary_and_primary(
    target: dict[str, Any], prefixes: tuple[str, ...] = ("",), tracking: bool = True
) -> dict[str, Any]:
    canary = make_canary({"autoscalerRef": None}, kind="DaemonSet")
    tracked = (
        resolve_tracked_configs(
            pod_spec_of(target), "default", podinfo_configmaps(), podinfo_secrets()
        )
        if tracking
        else None
    )
    return ds.desired_primary_daemonset(
        canary,
        target,
        workload_metadata(canary, target),
        include_label_prefixes=prefixes,
        tracked=tracked,
        template_id="id-1",
    )


def test_sync_consistent_naming_creates_primary_without_toolkit_annotations() -> None:
    primary = _canary_and_primary(podinfo_daemonset())
    assert primary["kind"] == "DaemonSet"
    assert primary["metadata"]["name"] == "podinfo-primary"
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith("podinfo:6.0.0")
    assert "kustomize.toolkit.fluxcd.io/checksum" not in primary["metadata"].get("annotations", {})
    assert primary["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert "replicas" not in primary["spec"]


def test_sync_inconsistent_naming_uses_selector_value() -> None:
    target = podinfo_daemonset()
    target["spec"]["selector"]["matchLabels"] = {"app": "podinfo-ds"}
    primary = _canary_and_primary(target)
    assert primary["metadata"]["name"] == "podinfo-primary"
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-ds-primary"}


def test_on_delete_update_strategy_is_refused() -> None:
    target = podinfo_daemonset()
    target["spec"]["updateStrategy"] = {"type": "OnDelete"}
    with pytest.raises(TargetError) as error:
        _canary_and_primary(target)
    assert (
        str(error.value)
        == "daemonset podinfo.default must have RollingUpdate strategy but have OnDelete"
    )


def test_primary_is_created_unparked_even_from_a_parked_target() -> None:
    target = podinfo_daemonset()
    target["spec"]["template"]["spec"]["nodeSelector"] = {PARKED: "true", "disk": "ssd"}
    primary = _canary_and_primary(target)
    assert primary["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_promote_copies_image_prefixed_labels_annotations_and_configs() -> None:
    canary = make_canary({"autoscalerRef": None}, kind="DaemonSet")
    target = podinfo_daemonset()
    primary = _canary_and_primary(target)
    new_target = copy.deepcopy(target)
    new_target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1"
    new_target["spec"]["template"]["spec"]["nodeSelector"] = {PARKED: "true"}
    promoted = ds.promoted_primary_daemonset(
        canary,
        new_target,
        primary,
        workload_metadata(canary, new_target),
        include_label_prefixes=("app.kubernetes.io",),
        tracked=resolve_tracked_configs(
            pod_spec_of(new_target), "default", podinfo_configmaps(), podinfo_secrets()
        ),
        template_id="id-2",
    )
    pod_spec = promoted["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["image"] == "podinfo:6.0.1"
    assert "nodeSelector" not in pod_spec
    assert promoted["metadata"]["labels"] == {
        "app": "podinfo-primary",
        "app.kubernetes.io/test-label-1": "test-label-value-1",
    }
    assert promoted["metadata"]["annotations"] == {
        "app.kubernetes.io/test-annotation-1": "test-annotation-value-1"
    }
    assert pod_spec["volumes"][0]["configMap"]["name"] == "podinfo-config-vol-primary"


def test_no_config_tracking_references_original_configs() -> None:
    primary = _canary_and_primary(podinfo_daemonset(), tracking=False)
    assert (
        primary["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        == "podinfo-config-vol"
    )


def test_has_target_changed_ignores_parking() -> None:
    target = podinfo_daemonset()
    promoted = workload_hash(target)
    parked = copy.deepcopy(target)
    parked["spec"]["template"]["spec"]["nodeSelector"] = {PARKED: "true"}
    assert not has_spec_changed(workload_hash(parked), promoted, promoted)
    changed = copy.deepcopy(parked)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    assert has_spec_changed(workload_hash(changed), promoted, promoted)


def test_scale_to_zero_adds_and_scale_from_zero_removes_the_node_selector() -> None:
    assert ds.scale_to_zero_patch() == {
        "spec": {"template": {"spec": {"nodeSelector": {PARKED: "true"}}}}
    }
    assert ds.scale_from_zero_patch() == {
        "spec": {"template": {"spec": {"nodeSelector": {PARKED: None}}}}
    }
    target = podinfo_daemonset()
    assert not ds.is_parked(target)
    target["spec"]["template"]["spec"]["nodeSelector"] = {PARKED: "true"}
    assert ds.is_parked(target)


def test_finalize_removes_the_node_selector() -> None:
    assert ds.finalize_patch() == ds.scale_from_zero_patch()
