"""Spec hashes: what counts as a new revision and what does not."""

from __future__ import annotations

import copy

from coalmine.api.hashing import spec_hash
from coalmine.targets.hashing import service_hash, workload_hash

from .targets_fixtures import has_spec_changed, podinfo_deployment


def test_spec_hash_ignores_key_order_but_not_values() -> None:
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert spec_hash({"a": 1}) != spec_hash({"a": 2})
    assert spec_hash({"b": [1, 2]}) != spec_hash({"b": [2, 1]})


def test_workload_hash_changes_with_the_pod_template_only() -> None:
    original = podinfo_deployment()
    scaled = copy.deepcopy(original)
    scaled["spec"]["replicas"] = 7
    scaled["metadata"]["labels"]["new"] = "label"
    scaled["status"] = {"replicas": 7}
    assert workload_hash(scaled) == workload_hash(original)
    new_image = copy.deepcopy(original)
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1"
    assert workload_hash(new_image) != workload_hash(original)


def test_daemonset_hash_ignores_the_scale_to_zero_node_selector() -> None:
    original = podinfo_deployment()
    parked = copy.deepcopy(original)
    parked["spec"]["template"]["spec"]["nodeSelector"] = {"flagger.app/scale-to-zero": "true"}
    emptied = copy.deepcopy(original)
    emptied["spec"]["template"]["spec"]["nodeSelector"] = {}
    assert workload_hash(parked) == workload_hash(original) == workload_hash(emptied)
    pinned = copy.deepcopy(parked)
    pinned["spec"]["template"]["spec"]["nodeSelector"]["disk"] = "ssd"
    assert workload_hash(pinned) != workload_hash(original)


def _service(**spec: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "ClusterIP",
        "selector": {"app": "podinfo-blue"},
        "ports": [{"name": "http", "port": 80, "targetPort": 9898, "protocol": "TCP"}],
        "sessionAffinity": "None",
    }
    base.update(spec)
    return {"metadata": {"name": "podinfo", "labels": {"a": "b"}}, "spec": base}


def test_service_hash_ignores_metadata_and_the_targets_own_allocations() -> None:
    plain = _service()
    allocated = _service(
        clusterIP="10.96.0.10",
        clusterIPs=["10.96.0.10"],
        ipFamilies=["IPv4"],
    )
    allocated["metadata"] = {"name": "podinfo", "resourceVersion": "9"}
    reallocated = _service(clusterIP="10.96.0.99", clusterIPs=["10.96.0.99"], ipFamilies=["IPv4"])
    assert service_hash(plain) == service_hash(allocated) == service_hash(reallocated)


def test_service_hash_ignores_node_ports_and_health_check_node_port() -> None:
    first = _service(
        type="LoadBalancer",
        externalTrafficPolicy="Local",
        healthCheckNodePort=31000,
        ports=[{"name": "http", "port": 80, "targetPort": 9898, "nodePort": 30080}],
    )
    second = copy.deepcopy(first)
    second["spec"]["healthCheckNodePort"] = 32000  # type: ignore[index]
    second["spec"]["ports"][0]["nodePort"] = 30999  # type: ignore[index]
    assert service_hash(first) == service_hash(second)


def test_service_hash_changes_with_selector_type_external_name_and_headlessness() -> None:
    base = service_hash(_service())
    assert service_hash(_service(selector={"app": "podinfo-green"})) != base
    assert service_hash(_service(type="NodePort")) != base
    assert service_hash(_service(clusterIP="None")) != base
    external = {"spec": {"type": "ExternalName", "externalName": "a.example.com"}}
    moved = {"spec": {"type": "ExternalName", "externalName": "b.example.com"}}
    assert service_hash(external) != service_hash(moved)


def test_spec_change_detection_follows_flagger() -> None:
    assert has_spec_changed("abc", None, None)
    assert has_spec_changed("new", "old", "old")
    assert not has_spec_changed("old", "old", "old")
    # a manual rollback to the promoted version never starts an analysis
    assert not has_spec_changed("promoted", "failed", "promoted")


def test_a_remembered_hash_belongs_to_one_object_not_to_its_uid() -> None:
    # The watch cache hands out one object until the target changes; a changed target is a new
    # object with the same uid, and must be hashed again.
    first = _service(selector={"app": "blue"})
    first["metadata"] = {"name": "podinfo", "uid": "u-1", "resourceVersion": "5"}
    changed = copy.deepcopy(first)
    changed["spec"]["selector"] = {"app": "green"}  # type: ignore[index]
    assert service_hash(first) == service_hash(first)
    assert service_hash(changed) != service_hash(first)
    assert service_hash(first) == service_hash(copy.deepcopy(first))
