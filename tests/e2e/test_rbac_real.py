"""Least privilege, proven on the real control plane.

The controller runs as the `coalmine` ServiceAccount bound to the exact ClusterRole and Role of
`deploy/`, through releases that touch every kind it manages here: a Deployment with an HPA, a
tracked ConfigMap and Secret and `revertOnDeletion`, released, then deleted; and a Service target
routed by Istio, released. The API server's audit log is the witness: no request was denied (the
`cluster` fixture checks that after every test), and every rule of the kinds involved was used.
"""

from __future__ import annotations

from typing import Any

import pytest

from clusters import TestCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, CONFIG_MAP, DEPLOYMENT, HPA, SECRET, SERVICE
from coalmine.kube.permissions import CLUSTER_ROLE, LEADER_ELECTION_ROLE, granted

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    eventually,
    leader_election_flags,
    start_controller,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.realcluster_only("RBAC is enforced and audited by kube-apiserver only"),
]

# Verbs granted for a path these scenarios do not take, each with the path that takes it.
EDGE_PATHS = {
    ("", "services", "delete"): "a copy re-created after an immutable field (type) changed",
    ("", "secrets", "delete"): "a copy re-created after the Secret's type changed",
    ("", "events", "patch"): "a repeated Event (the same message within the aggregation window)",
    ("apps", "deployments", "patch"): "DaemonSet/Deployment scale-to-zero parking",
    ("apps", "deployments", "delete"): "a fresh baseline removed (test_baseline_release.py)",
    ("apps", "daemonsets", "create"): "DaemonSet targets",
    ("apps", "daemonsets", "update"): "DaemonSet targets",
    ("apps", "daemonsets", "patch"): "DaemonSet targets",
    ("autoscaling", "horizontalpodautoscalers", "update"): "an HPA changed during a release",
    ("networking.istio.io", "virtualservices", "get"): "a cache miss or a lost write race",
    ("networking.istio.io", "destinationrules", "get"): "a cache miss or a lost write race",
    ("networking.istio.io", "destinationrules", "update"): "a DestinationRule changed by hand",
    ("apps", "deployments", "get"): "a cache miss or a lost write race",
    ("apps", "daemonsets", "get"): "a cache miss or a lost write race",
    ("", "services", "get"): "a cache miss or a lost write race",
    ("autoscaling", "horizontalpodautoscalers", "get"): "a cache miss or a lost write race",
    ("coordination.k8s.io", "leases", "update"): "a leader renewing its Lease (longer runs)",
    # `--shards=auto` only; granted and exercised as the ServiceAccount in tests/kube/test_shards.py
    ("coordination.k8s.io", "leases", "list"): "sharded replicas listing the membership Leases",
    ("coordination.k8s.io", "leases", "delete"): "a sharded replica leaving on a clean exit",
    ("coordination.k8s.io", "leases", "watch"): "sharded replicas watching the membership Leases",
}
SCENARIO_RESOURCES = {
    ("flagger.app", "canaries"),
    ("flagger.app", "canaries/status"),
    ("flagger.app", "metrictemplates"),
    ("flagger.app", "alertproviders"),
    ("", "events"),
    ("", "services"),
    ("", "configmaps"),
    ("", "secrets"),
    ("apps", "deployments"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("networking.istio.io", "virtualservices"),
    ("networking.istio.io", "destinationrules"),
    ("coordination.k8s.io", "leases"),
}


def workload(ns: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": name,
        "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
        "ports": [{"name": "http", "containerPort": 9898}],
        "envFrom": [{"configMapRef": {"name": f"{name}-env"}}, {"secretRef": {"name": name}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def deployment_canary(ns: str, name: str) -> dict[str, Any]:
    ref = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": name}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "autoscalerRef": ref,
            "revertOnDeletion": True,
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "iterations": 1, "metrics": []},
        },
    }


def istio_canary(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 50},
        },
    }


async def release_a_deployment(api: KubeApi, canaries: Any, ns: str) -> None:
    name = "workload"
    await api.create(
        CONFIG_MAP, {"metadata": {"name": f"{name}-env", "namespace": ns}, "data": {"A": "1"}}
    )
    await api.create(SECRET, {"metadata": {"name": name, "namespace": ns}, "data": {"T": "czM="}})
    await api.create(DEPLOYMENT, workload(ns, name))
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 2,
        },
    }
    await api.create(HPA, hpa)
    watch = CanaryWatch(name, ns)
    canaries.subscribe(watch)
    await api.create(CANARY, deployment_canary(ns, name))
    await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
    # A revision of the tracked configs: their `-primary` copies are updated on promotion.
    await api.patch(CONFIG_MAP, f"{name}-env", {"data": {"A": "2"}}, ns)
    await api.patch(SECRET, name, {"data": {"T": "cm90YXRlZA=="}}, ns)
    await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
    await api.delete(CANARY, name, ns)
    await eventually(lambda: canaries.get(name, ns) is None, what="the Canary finalized")


async def release_through_istio(api: KubeApi, canaries: Any, ns: str) -> None:
    name = "meshed"
    spec = {"selector": {"app": "blue"}, "ports": [{"name": "http", "port": 9898}]}
    await api.create(
        SERVICE, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                  "spec": spec},
    )  # fmt: skip
    watch = CanaryWatch(name, ns)
    canaries.subscribe(watch)
    await api.create(CANARY, istio_canary(ns, name))
    await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
    await api.patch(SERVICE, name, {"spec": {"selector": {"app": "green"}}}, ns)
    await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)


def exercised(cluster: TestCluster) -> set[tuple[str, str, str]]:
    """(group, resource[/subresource], verb) of every request the controller made."""
    found = set()
    for entry in cluster.controller_audit():
        ref = entry.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # discovery and other non-resource requests
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        found.add((ref.get("apiGroup", ""), resource, entry["verb"]))
    return found


async def test_every_request_is_granted_and_every_rule_of_the_kinds_involved_is_used(
    cluster: TestCluster, tmp_path: Any
) -> None:
    ns = cluster.namespace
    election = leader_election_flags(ns)
    controller: ControllerProcess = start_controller(cluster, tmp_path, *election)
    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            await release_a_deployment(api, canaries, ns)
            await release_through_istio(api, canaries, ns)
    finally:
        controller.terminate()
        print(f"--- controller log\n{controller.logs()[-6000:]}")

    made = exercised(cluster)
    assert made, "the audit log holds no request of the controller's ServiceAccount"
    assert not cluster.denied_requests()
    grants = granted(CLUSTER_ROLE) | granted(LEADER_ELECTION_ROLE)
    beyond = {(g, r, v) for g, r, v in made if v not in grants.get((g, r), set())}
    assert not beyond, f"requests outside the RBAC table (they passed only by chance): {beyond}"
    unused = {
        (group, resource, verb)
        for (group, resource), verbs in grants.items()
        if (group, resource) in SCENARIO_RESOURCES
        for verb in verbs
        if (group, resource, verb) not in made and (group, resource, verb) not in EDGE_PATHS
    }
    assert not unused, f"granted but never used by these releases: {sorted(unused)}"
