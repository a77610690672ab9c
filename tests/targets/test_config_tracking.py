"""ConfigMap/Secret tracking (Flagger's config_tracker_test.go)."""

from __future__ import annotations

import hashlib

import pytest

from coalmine.scheduler.status import have_configs_changed
from coalmine.targets.configs import (
    ConfigRef,
    config_checksum,
    desired_primary_config,
    go_json,
    is_tracking_disabled,
    primary_config_needs_recreate,
    primary_configs_update,
    rename_config_refs,
    resolve_tracked_configs,
    scan_config_refs,
)
from coalmine.targets.errors import TargetError
from coalmine.targets.labels import owner_reference
from coalmine.targets.workload import pod_spec_of

from .targets_fixtures import (
    CANARY_UID,
    configmap,
    make_canary,
    podinfo_configmaps,
    podinfo_deployment,
    podinfo_secrets,
    secret,
)


def test_config_is_disabled_by_an_annotation_starting_with_disable() -> None:
    for value, disabled in [("disable", True), ("disabled", True), ("enabled", False), ("", False)]:
        obj = configmap("c", {}, annotations={"flagger.app/config-tracking": value})
        assert is_tracking_disabled(obj) is disabled
    assert not is_tracking_disabled(configmap("c", {}))


def test_every_reference_kind_is_found_in_containers_and_init_containers() -> None:
    refs = scan_config_refs(pod_spec_of(podinfo_deployment()))
    assert {r.key for r in refs} == {
        "configmap/podinfo-config-env",
        "configmap/podinfo-config-all-env",
        "configmap/podinfo-config-vol",
        "configmap/podinfo-config-projected",
        "configmap/podinfo-config-init-env",
        "secret/podinfo-secret-env",
        "secret/podinfo-secret-all-env",
        "secret/podinfo-secret-vol",
        "secret/podinfo-secret-projected",
    }


def test_field_is_mandatory_unless_optional_is_true() -> None:
    spec = {
        "containers": [
            {
                "name": "a",
                "envFrom": [
                    {"configMapRef": {"name": "nil"}},
                    {"configMapRef": {"name": "false", "optional": False}},
                    {"configMapRef": {"name": "true", "optional": True}},
                    {"configMapRef": {"name": "mixed", "optional": True}},
                ],
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "mixed", "key": "k"}}}
                ],
            }
        ]
    }
    refs = {r.name: r for r in scan_config_refs(spec)}
    assert refs["nil"] == ConfigRef("configmap", "nil", optional=False)
    assert refs["false"].optional is False
    assert refs["true"].optional is True
    # referenced once as optional and once as mandatory: mandatory
    assert refs["mixed"].optional is False


def test_configmaps_are_tracked_with_checksums_for_deployment_and_daemonset() -> None:
    tracked = resolve_tracked_configs(
        pod_spec_of(podinfo_deployment()), "default", podinfo_configmaps(), podinfo_secrets()
    )
    checksums = tracked.checksums()
    assert len(checksums) == 9
    assert checksums["configmap/podinfo-config-env"] == config_checksum({"color": "red"})
    assert all(len(value) == 16 for value in checksums.values())


def test_missing_mandatory_config_is_an_error_and_missing_optional_is_skipped() -> None:
    configmaps = podinfo_configmaps()
    del configmaps["podinfo-config-env"]
    with pytest.raises(TargetError, match=r"configmap podinfo-config-env\.default get query error"):
        resolve_tracked_configs(
            pod_spec_of(podinfo_deployment()), "default", configmaps, podinfo_secrets()
        )
    spec = {
        "containers": [
            {"name": "a", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}
        ]
    }
    assert not resolve_tracked_configs(spec, "default", {}, {})


def test_registry_and_opted_out_secrets_are_not_tracked() -> None:
    secrets = podinfo_secrets()
    secrets["podinfo-secret-env"] = secret(
        "podinfo-secret-env", {".dockerconfigjson": "e30="}, "kubernetes.io/dockerconfigjson"
    )
    secrets["podinfo-secret-vol"] = secret(
        "podinfo-secret-vol", {"a": "Yg=="}, annotations={"flagger.app/config-tracking": "disabled"}
    )
    secrets["podinfo-secret-projected"] = secret(
        "podinfo-secret-projected", {"tls.crt": "Yw=="}, "kubernetes.io/tls"
    )
    tracked = resolve_tracked_configs(
        pod_spec_of(podinfo_deployment()), "default", podinfo_configmaps(), secrets
    )
    assert set(tracked.secrets) == {"podinfo-secret-all-env", "podinfo-secret-projected"}


def test_checksum_is_sha256_of_go_json_first_eight_bytes() -> None:
    data = {"b": "<x & y>", "a": "1"}
    encoded = '{"a":"1","b":"\\u003cx \\u0026 y\\u003e"}'
    assert go_json(data) == encoded
    assert config_checksum(data) == hashlib.sha256(encoded.encode()).hexdigest()[:16]
    assert config_checksum(None) == hashlib.sha256(b"null").hexdigest()[:16]


def test_config_change_detection_rules() -> None:
    assert not have_configs_changed({}, None)
    assert have_configs_changed({"configmap/a": "1"}, None)
    assert have_configs_changed({"configmap/a": "1"}, {"configmap/a": "1", "secret/b": "2"})
    assert have_configs_changed({"configmap/a": "2"}, {"configmap/a": "1"})
    assert not have_configs_changed({"configmap/a": "1"}, {"configmap/a": "1"})


def test_primary_configmap_copy_has_data_binary_data_prefixed_labels_and_no_annotations() -> None:
    source = configmap(
        "podinfo-config-vol",
        {"color": "red"},
        labels={"app.kubernetes.io/part-of": "podinfo", "team": "a"},
        annotations={"note": "x"},
    )
    source["binaryData"] = {"logo.png": "iVBORw0KGgo="}
    copy = desired_primary_config(make_canary(), source, None, ["app.kubernetes.io"])
    assert copy["metadata"]["name"] == "podinfo-config-vol-primary"
    assert copy["metadata"]["labels"] == {"app.kubernetes.io/part-of": "podinfo"}
    assert "annotations" not in copy["metadata"]
    assert copy["data"] == {"color": "red"}
    assert copy["binaryData"] == {"logo.png": "iVBORw0KGgo="}
    assert copy["metadata"]["ownerReferences"][0]["uid"] == CANARY_UID


def test_primary_secret_copy_keeps_type_and_data() -> None:
    source = secret("podinfo-secret-vol", {"tls.crt": "Yw=="}, "kubernetes.io/tls")
    copy = desired_primary_config(make_canary(), source, None, [""])
    assert copy["kind"] == "Secret"
    assert copy["type"] == "kubernetes.io/tls"
    assert copy["data"] == {"tls.crt": "Yw=="}


def test_shared_config_copy_is_owned_by_both_canaries() -> None:
    source = configmap("shared", {"k": "v"})
    first = desired_primary_config(make_canary(), source, None, [""])
    other_canary = make_canary()
    other_canary.metadata.name = "podinfo-2"
    other_canary.metadata.uid = "uid-2"
    second = desired_primary_config(other_canary, source, first, [""])
    refs = second["metadata"]["ownerReferences"]
    assert [(r["name"], r["controller"]) for r in refs] == [("podinfo-2", True), ("podinfo", False)]


def test_primary_config_update_writes_only_on_difference() -> None:
    canary = make_canary()
    source = configmap("c", {"k": "v"})
    desired = desired_primary_config(canary, source, None, [""])
    actual = {**desired, "metadata": {**desired["metadata"], "resourceVersion": "5", "uid": "u"}}
    assert primary_configs_update(desired, actual) is None
    changed = desired_primary_config(canary, configmap("c", {"k": "w"}), actual, [""])
    update = primary_configs_update(changed, actual)
    assert update is not None
    assert update["data"] == {"k": "w"}
    assert update["metadata"]["resourceVersion"] == "5"
    assert update["metadata"]["ownerReferences"] == [owner_reference(canary)]


def test_references_in_the_primary_pod_spec_point_to_the_copies() -> None:
    original = pod_spec_of(podinfo_deployment())
    renamed = rename_config_refs(
        original,
        [
            "podinfo-config-env",
            "podinfo-config-vol",
            "podinfo-config-projected",
            "podinfo-config-init-env",
        ],
        ["podinfo-secret-all-env", "podinfo-secret-projected"],
    )
    container = renamed["containers"][0]
    assert (
        container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "podinfo-config-env-primary"
    )
    # untracked references keep their names
    assert container["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "podinfo-secret-env"
    assert container["envFrom"][0]["configMapRef"]["name"] == "podinfo-config-all-env"
    assert container["envFrom"][1]["secretRef"]["name"] == "podinfo-secret-all-env-primary"
    assert renamed["volumes"][0]["configMap"]["name"] == "podinfo-config-vol-primary"
    assert renamed["volumes"][1]["secret"]["secretName"] == "podinfo-secret-vol"
    sources = renamed["volumes"][2]["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == "podinfo-config-projected-primary"
    assert sources[1]["secret"]["name"] == "podinfo-secret-projected-primary"
    init_env = renamed["initContainers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]
    assert init_env["name"] == "podinfo-config-init-env-primary"
    # the input is not modified
    assert original["volumes"][0]["configMap"]["name"] == "podinfo-config-vol"


def test_secret_type_change_needs_a_new_copy() -> None:
    canary = make_canary()
    opaque = desired_primary_config(canary, secret("s", {"a": "Yg=="}), None, [""])
    tls = desired_primary_config(
        canary, secret("s", {"a": "Yg=="}, "kubernetes.io/tls"), opaque, [""]
    )
    assert primary_config_needs_recreate(tls, opaque)
    assert not primary_config_needs_recreate(opaque, opaque)
    cm = desired_primary_config(canary, configmap("c", {}), None, [""])
    assert not primary_config_needs_recreate(cm, cm)
