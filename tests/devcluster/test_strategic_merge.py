"""Strategic merge patch with the patches kubectl sends (patch, apply, edit, set image, rollout)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.devcluster.patches import json_merge_patch
from coalmine.devcluster.strategic_merge import (
    SUPPORTED_KINDS,
    StrategicMergeError,
    strategic_merge_patch,
)


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "labels": {"app": "podinfo", "team": "a"},
            "finalizers": ["a.example.com/x", "b.example.com/y"],
            "ownerReferences": [{"uid": "u1", "kind": "Canary", "name": "podinfo"}],
        },
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": "podinfo:6.0.0",
                            "args": ["--port=9898", "--level=info"],
                            "ports": [{"containerPort": 9898, "name": "http"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"mountPath": "/config", "name": "config"}],
                        },
                        {"name": "sidecar", "image": "envoy:1"},
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "podinfo-config"}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                },
            },
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"},
            ]
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def test_set_image_merges_container_by_name_and_keeps_the_rest() -> None:
    original = deployment()
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "podinfod", "image": "podinfo:6.1"}]}}
        }
    }
    result = strategic_merge_patch(original, patch, "Deployment")
    assert [c["image"] for c in containers(result)] == ["podinfo:6.1", "envoy:1"]
    assert containers(result)[0]["env"] == containers(original)[0]["env"]
    assert containers(original)[0]["image"] == "podinfo:6.0.0", "input must not change"


def test_new_container_goes_first_like_kubectl_documents() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "redis", "image": "redis"}]}}}}
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert [c["name"] for c in containers(result)] == ["redis", "podinfod", "sidecar"]


def test_env_merges_by_name_and_delete_directive_removes_one_entry() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "env": [
                                {"name": "B", "value": "20"},
                                {"name": "A", "$patch": "delete"},
                            ],
                        }
                    ]
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert containers(result)[0]["env"] == [{"name": "B", "value": "20"}]


def test_atomic_lists_are_replaced() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "podinfod", "args": ["--port=8080"]}],
                    "tolerations": [{"key": "b", "operator": "Exists"}],
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert containers(result)[0]["args"] == ["--port=8080"]
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_kubectl_apply_patch_with_set_element_order() -> None:
    # What `kubectl apply` sends after swapping the containers' order and adding a port.
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "podinfod"}],
                    "containers": [
                        {
                            "name": "podinfod",
                            "$setElementOrder/ports": [
                                {"containerPort": 9797},
                                {"containerPort": 9898},
                            ],
                            "ports": [{"containerPort": 9797, "name": "metrics"}],
                        }
                    ],
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert [c["name"] for c in containers(result)] == ["sidecar", "podinfod"]
    assert [p["containerPort"] for p in containers(result)[1]["ports"]] == [9797, 9898]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    patch = {
        "metadata": {
            "finalizers": ["b.example.com/y", "c.example.com/z"],
            "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert sorted(result["metadata"]["finalizers"]) == ["b.example.com/y", "c.example.com/z"]


def test_owner_references_merge_by_uid_and_conditions_by_type() -> None:
    patch = {
        "metadata": {"ownerReferences": [{"uid": "u2", "kind": "Other", "name": "x"}]},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "Down"}]},
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert [o["uid"] for o in result["metadata"]["ownerReferences"]] == ["u2", "u1"]
    assert result["status"]["conditions"][0] == {
        "type": "Available",
        "status": "False",
        "reason": "Down",
    }
    assert result["status"]["conditions"][1]["type"] == "Progressing"


def test_null_deletes_a_key_and_nulls_in_new_values_are_dropped() -> None:
    patch = {
        "metadata": {"labels": {"team": None}, "annotations": {"a": "1", "b": None}},
        "spec": {"paused": True},
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert result["metadata"]["labels"] == {"app": "podinfo"}
    assert result["metadata"]["annotations"] == {"a": "1"}
    assert result["spec"]["paused"] is True


def test_retain_keys_switches_deployment_strategy() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_on_a_volume_replaces_its_source() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {
                            "name": "config",
                            "$retainKeys": ["name", "secret"],
                            "secret": {"secretName": "s"},
                        }
                    ]
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config", "secret": {"secretName": "s"}}
    ]


def test_map_and_list_replace_and_delete_directives() -> None:
    patch = {
        "metadata": {"labels": {"$patch": "replace", "only": "this"}},
        "spec": {
            "strategy": {"$patch": "delete"},
            "template": {
                "spec": {
                    "containers": [
                        {"$patch": "replace"},
                        {"name": "solo", "image": "solo:1"},
                    ]
                }
            },
        },
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert result["metadata"]["labels"] == {"only": "this"}
    assert result["spec"]["strategy"] == {}
    assert containers(result) == [{"name": "solo", "image": "solo:1"}]


def test_service_ports_merge_by_port() -> None:
    service = {
        "kind": "Service",
        "spec": {
            "selector": {"app": "podinfo"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 9898},
                {"name": "grpc", "port": 9999},
            ],
        },
    }
    patch = {"spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"app": "green"}}}
    result = strategic_merge_patch(service, patch, "Service")
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "grpc", "port": 9999},
    ]
    assert result["spec"]["selector"] == {"app": "green"}


def test_configmap_data_merges_key_by_key() -> None:
    config = {"kind": "ConfigMap", "data": {"a": "1", "b": "2"}, "binaryData": {"x": "AA=="}}
    result = strategic_merge_patch(config, {"data": {"b": None, "c": "3"}}, "ConfigMap")
    assert result == {
        "kind": "ConfigMap",
        "data": {"a": "1", "c": "3"},
        "binaryData": {"x": "AA=="},
    }


def test_kubectl_rollout_restart_patch_adds_template_annotation() -> None:
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "podinfo"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"},
    }


def test_daemonset_and_pod_share_the_pod_spec_metadata() -> None:
    daemonset = {"kind": "DaemonSet", "spec": {"template": deployment()["spec"]["template"]}}
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}}}
    }
    result = strategic_merge_patch(daemonset, patch, "DaemonSet")
    assert [c["image"] for c in containers(result)] == ["podinfo:6.0.0", "envoy:2"]
    pod = {"kind": "Pod", "spec": copy.deepcopy(deployment()["spec"]["template"]["spec"])}
    result = strategic_merge_patch(
        pod, {"spec": {"containers": [{"name": "podinfod", "image": "x"}]}}, "Pod"
    )
    assert [c["image"] for c in result["spec"]["containers"]] == ["x", "envoy:1"]
    assert {"Deployment", "DaemonSet", "Service", "ConfigMap", "Secret", "Pod"} <= SUPPORTED_KINDS


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        (
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            "does not contain declared merge key: name",
        ),
        ({"metadata": {"labels": {"$patch": "frobnicate"}}}, "unknown patch type"),
        (
            {"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}},
            "merging lists cannot yet be specified",
        ),
        ({"spec": {"strategy": {"$retainKeys": "type"}}}, r"\$retainKeys must be a list"),
        (
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
            "must include every field",
        ),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}, "must be a list"),
        ({"spec": {"$frobnicate": 1}}, "unknown directive"),
        (
            {"spec": {"template": {"spec": {"containers": ["just-a-string"]}}}},
            "all be objects or all be scalars",
        ),
    ],
)
def test_malformed_patches_raise(patch: dict[str, Any], fragment: str) -> None:
    with pytest.raises(StrategicMergeError, match=fragment):
        strategic_merge_patch(deployment(), patch, "Deployment")


def test_non_object_patch_raises() -> None:
    with pytest.raises(StrategicMergeError, match="must be a JSON object"):
        strategic_merge_patch(deployment(), [1], "Deployment")  # type: ignore[arg-type]


KEYS = st.text(alphabet="abc", min_size=1, max_size=3)
SCALARS = st.booleans() | st.integers() | st.text(max_size=3)
DOC_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
PATCH_VALUES = st.recursive(
    SCALARS | st.none(),
    lambda inner: st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(KEYS, DOC_VALUES, max_size=4),
    st.dictionaries(KEYS, PATCH_VALUES, max_size=4),
)
def test_without_merging_lists_it_agrees_with_json_merge_patch(
    original: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert strategic_merge_patch(original, patch, "ConfigMap") == json_merge_patch(original, patch)


@given(st.lists(st.text(alphabet="xyz", min_size=1, max_size=2), max_size=4, unique=True))
def test_merging_finalizers_is_idempotent_and_keeps_every_entry(added: list[str]) -> None:
    patch = {"metadata": {"finalizers": added}}
    once = strategic_merge_patch(deployment(), patch, "Deployment")
    assert strategic_merge_patch(once, patch, "Deployment") == once
    assert set(once["metadata"]["finalizers"]) == {"a.example.com/x", "b.example.com/y", *added}


async def test_kubectl_client_side_apply_round_trips_through_strategic_merge(
    tmp_path: Path,
) -> None:
    """kubectl apply computes a three-way strategic merge patch ($setElementOrder, $retainKeys,
    nulls); applying an edited manifest must leave exactly the manifest's containers and env."""
    from coalmine.devcluster import DevCluster

    from .test_simulator import kubectl

    first = deployment()
    for key in ("finalizers", "ownerReferences"):
        del first["metadata"][key]
    first["metadata"]["namespace"] = "default"
    del first["status"]
    first["spec"]["selector"] = {"matchLabels": {"app": "podinfo"}}
    first["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "emptyDir": {}}]
    second = copy.deepcopy(first)
    pod = second["spec"]["template"]["spec"]
    pod["containers"] = [
        {"name": "sidecar", "image": "envoy:2"},
        {
            "name": "podinfod",
            "image": "podinfo:6.1.0",
            "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}],
            "ports": [{"containerPort": 9898, "name": "http"}],
        },
    ]
    pod["volumes"] = [{"name": "config", "configMap": {"name": "podinfo-config"}}]
    second["spec"]["strategy"] = {"type": "Recreate"}

    async with DevCluster(port=0, kubeconfig_path=tmp_path / "kubeconfig") as cluster:
        for manifest in (first, second):
            path = tmp_path / "deployment.json"
            path.write_text(json.dumps(manifest))
            code, output = await kubectl(cluster.kubeconfig_path, "apply", "-f", str(path))
            assert code == 0, output
        live = cluster.store.get("deployments", "podinfo", "default")

    live_pod = live["spec"]["template"]["spec"]
    assert [c["name"] for c in live_pod["containers"]] == ["sidecar", "podinfod"]
    podinfod = live_pod["containers"][1]
    assert podinfod["image"] == "podinfo:6.1.0"
    assert podinfod["env"] == [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}]
    assert "args" not in podinfod
    assert "volumeMounts" not in podinfod
    assert live_pod["volumes"] == [
        {"name": "config", "configMap": {"name": "podinfo-config", "defaultMode": 420}}
    ], "the server defaults the volume's mode, as kube-apiserver does"
    assert live_pod["tolerations"] == pod["tolerations"], "fields both manifests share stay"
    assert live["spec"]["strategy"] == {"type": "Recreate"}


CONTAINER_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
CONTAINERS = st.lists(
    st.builds(
        lambda name, image: {"name": name, "image": image},
        CONTAINER_NAMES,
        st.sampled_from(["x:1", "x:2", "y:1"]),
    ),
    max_size=4,
    unique_by=lambda c: c["name"],
)


@given(CONTAINERS, CONTAINERS)
def test_container_list_merge_is_idempotent_and_keeps_every_name(
    live: list[dict[str, Any]], patched: list[dict[str, Any]]
) -> None:
    original = {"spec": {"template": {"spec": {"containers": live}}}}
    patch = {"spec": {"template": {"spec": {"containers": patched}}}}
    once = strategic_merge_patch(original, patch, "Deployment")
    assert strategic_merge_patch(once, patch, "Deployment") == once
    merged = containers(once)
    assert sorted(c["name"] for c in merged) == sorted({c["name"] for c in live + patched})
    for container in patched:
        assert container in merged
    positions = [c["name"] for c in merged]
    patched_names = [c["name"] for c in patched]
    assert [n for n in positions if n in patched_names] == patched_names, "patch order is kept"


@pytest.mark.parametrize(
    ("live", "order", "patched", "expected"),
    [
        # apimachinery "add an item in a list and preserve order"
        (
            [{"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}],
            ["3", "1", "2"],
            [{"name": "3", "value": "3"}],
            ["3", "1", "2"],
        ),
        # apimachinery "merge lists of maps": new items placed where $setElementOrder says
        (
            [{"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}],
            ["4", "1", "2", "3"],
            [{"name": "4", "value": "4"}, {"name": "3", "value": "3"}],
            ["4", "1", "2", "3"],
        ),
        # a server-only item goes before the first ordered item it preceded on the server
        # (apimachinery's mergeSortedSlice compares live positions: x (1) < b (2))
        (
            [{"name": "a"}, {"name": "x"}, {"name": "b"}],
            ["b", "a"],
            [],
            ["x", "b", "a"],
        ),
    ],
)
def test_set_element_order_vectors(
    live: list[dict[str, Any]], order: list[str], patched: list[dict[str, Any]], expected: list[str]
) -> None:
    original = {"spec": {"template": {"spec": {"containers": live}}}}
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": n} for n in order],
                    "containers": patched,
                }
            }
        }
    }
    result = containers(strategic_merge_patch(original, patch, "Deployment"))
    assert [c["name"] for c in result] == expected
    by_name = {c["name"]: c for c in result}
    for item in live:
        assert by_name[item["name"]].items() >= item.items()


FUZZ_KEYS = st.sampled_from(
    [
        "spec",
        "template",
        "containers",
        "name",
        "env",
        "image",
        "finalizers",
        "metadata",
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$setElementOrder/env",
        "$deleteFromPrimitiveList/finalizers",
        "$deleteFromPrimitiveList/containers",
    ]
)
FUZZ_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["replace", "delete", "merge", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FUZZ_KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(FUZZ_KEYS, FUZZ_VALUES, max_size=4))
def test_any_patch_either_applies_or_raises_strategic_merge_error(patch: dict[str, Any]) -> None:
    original = deployment()
    before = copy.deepcopy(original)
    outcome: object
    try:
        outcome = strategic_merge_patch(original, patch, "Deployment")
    except StrategicMergeError as error:
        outcome = error.message
    assert isinstance(outcome, dict) or (isinstance(outcome, str) and outcome)
    assert original == before
