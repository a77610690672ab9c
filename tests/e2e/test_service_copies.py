"""Service-target copies on both API servers, the real kube-apiserver included: every Service type
and dual-stack families get `<svc>-primary`/`<svc>-canary` copies the server accepts, and a release
promotes onto them.

Flagger copies the target's `clusterIP(s)` onto its copies; a real API server refuses that (the
addresses are the target's). The first test shows the refusal; the others show ours is accepted.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusters import TestCluster
from coalmine.kube.api import KubeApi, KubeApiError
from coalmine.kube.kinds import CANARY, SERVICE
from coalmine.targets.service import KEEP_TYPE_ANNOTATION

from .harness import CanaryWatch, ControllerProcess, cluster_client, eventually

pytestmark = pytest.mark.e2e

DUAL_STACK = {"ipFamilyPolicy": "PreferDualStack"}


def target(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": spec,
    }


def canary(ns: str, name: str, *, keep_type: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns}
    if keep_type:
        metadata["annotations"] = {KEEP_TYPE_ANNOTATION: "true"}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": metadata,
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "iterations": 1, "metrics": []},
        },
    }


def ports() -> list[dict[str, Any]]:
    return [{"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP"}]


async def test_flaggers_copy_of_the_targets_cluster_ips_is_refused_by_the_api_server(
    cluster: TestCluster,
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, _):
        spec = {"selector": {"app": "blue"}, "ports": ports(), **DUAL_STACK}
        created = await api.create(SERVICE, target(ns, "podinfo", spec))
        flaggers_copy = target(ns, "podinfo-primary", copy.deepcopy(created["spec"]))
        with pytest.raises(KubeApiError) as refused:
            await api.create(SERVICE, flaggers_copy)
        assert refused.value.code == 422
        assert "already allocated" in str(refused.value)


SERVICE_SPECS = {
    "clusterip": ({"selector": {"app": "blue"}, "ports": ports()}, {"selector": {"app": "green"}}),
    "dualstack": (
        {"selector": {"app": "blue"}, "ports": ports(), **DUAL_STACK},
        {"selector": {"app": "green"}},
    ),
    "nodeport": (
        {"type": "NodePort", "selector": {"app": "blue"}, "ports": ports()},
        {"selector": {"app": "green"}},
    ),
    "loadbalancer": (
        {"type": "LoadBalancer", "selector": {"app": "blue"}, "ports": ports(), **DUAL_STACK},
        {"selector": {"app": "green"}},
    ),
    "externalname": (
        {"type": "ExternalName", "externalName": "blue.example.com"},
        {"externalName": "green.example.com"},
    ),
}
# With the Canary's opt-in annotation, the copies keep the target's NodePort/LoadBalancer type.
SERVICE_SPECS["nodeport-kept"] = SERVICE_SPECS["nodeport"]
SERVICE_SPECS["loadbalancer-kept"] = SERVICE_SPECS["loadbalancer"]


def copy_type(kind: str) -> str:
    """The type the copies must have: ClusterIP for NodePort/LoadBalancer targets by default."""
    if kind.endswith("-kept"):
        return "NodePort" if kind.startswith("nodeport") else "LoadBalancer"
    return {"externalname": "ExternalName"}.get(kind, "ClusterIP")


def addresses(service: dict[str, Any]) -> set[str]:
    spec = service["spec"]
    ips = set(spec.get("clusterIPs") or [])
    return ips | {p["nodePort"] for p in spec.get("ports", []) if p.get("nodePort")}


@pytest.mark.parametrize("kind", sorted(SERVICE_SPECS))
async def test_every_service_type_gets_copies_the_server_accepts_and_is_promoted(
    cluster: TestCluster, controller: ControllerProcess, kind: str
) -> None:
    ns = cluster.namespace
    name = f"svc-{kind}"
    spec, change = SERVICE_SPECS[kind]
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch(name, ns)
        canaries.subscribe(watch)
        created = await api.create(SERVICE, target(ns, name, spec))
        await api.create(CANARY, canary(ns, name, keep_type=kind.endswith("-kept")))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        primary = await api.get(SERVICE, f"{name}-primary", ns)
        canary_copy = await api.get(SERVICE, f"{name}-canary", ns)
        for copy_ in (primary, canary_copy):
            assert not addresses(copy_) & addresses(created), (kind, copy_["spec"])
            assert copy_["spec"]["type"] == copy_type(kind), (kind, copy_["spec"])
            if copy_type(kind) == "ClusterIP":
                assert not any(p.get("nodePort") for p in copy_["spec"]["ports"]), copy_["spec"]
            if kind == "externalname":
                assert copy_["spec"]["externalName"] == "blue.example.com"
                assert "clusterIP" not in copy_["spec"]
            if kind.startswith(("dualstack", "loadbalancer")):
                assert copy_["spec"]["ipFamilyPolicy"] == "PreferDualStack"
        await api.patch(SERVICE, name, {"spec": change}, ns)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        promoted = await api.get(SERVICE, f"{name}-primary", ns)
        for field, value in change.items():
            assert promoted["spec"][field] == value
        assert addresses(promoted) == addresses(primary)  # promotion keeps the copy's addresses
        assert promoted["spec"]["type"] == copy_type(kind)


async def test_a_primary_copy_keeps_working_when_the_target_switches_type(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    """ClusterIP → ExternalName: the copies follow on promotion (their IPs are released)."""
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("switch", ns)
        canaries.subscribe(watch)
        spec = {"selector": {"app": "blue"}, "ports": ports()}
        await api.create(SERVICE, target(ns, "switch", spec))
        await api.create(CANARY, canary(ns, "switch"))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        await replace_spec(
            api, ns, "switch", {"type": "ExternalName", "externalName": "new.example.com"}
        )
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        promoted = await api.get(SERVICE, "switch-primary", ns)
        assert promoted["spec"]["type"] == "ExternalName"
        assert promoted["spec"]["externalName"] == "new.example.com"
        assert not promoted["spec"].get("clusterIP")


async def replace_spec(api: KubeApi, ns: str, name: str, spec: dict[str, Any]) -> None:
    """A type switch as `kubectl apply` of the new manifest does it: the allocated fields go."""
    current = await api.get(SERVICE, name, ns)
    current["spec"] = spec
    await api.replace(SERVICE, current)
