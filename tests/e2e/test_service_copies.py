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


def canary(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
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
        await api.create(CANARY, canary(ns, name))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        primary = await api.get(SERVICE, f"{name}-primary", ns)
        canary_copy = await api.get(SERVICE, f"{name}-canary", ns)
        for copy_ in (primary, canary_copy):
            assert not addresses(copy_) & addresses(created), (kind, copy_["spec"])
            if kind == "externalname":
                assert copy_["spec"]["externalName"] == "blue.example.com"
                assert "clusterIP" not in copy_["spec"]
            if kind in ("dualstack", "loadbalancer"):
                assert copy_["spec"]["ipFamilyPolicy"] == "PreferDualStack"
        await api.patch(SERVICE, name, {"spec": change}, ns)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        promoted = await api.get(SERVICE, f"{name}-primary", ns)
        for field, value in change.items():
            assert promoted["spec"][field] == value
        assert addresses(promoted) == addresses(primary)  # promotion keeps the copy's addresses


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
