"""Every request the controller makes is one its RBAC rules grant (`coalmine.kube.permissions`).

The controller runs in-process on devcluster through a whole release of a Deployment with a
tracked ConfigMap and Secret, an HPA and revertOnDeletion, then the Canary is deleted; the
requests its client counted are compared with the grants. No Secret or ConfigMap is ever listed
or watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, CONFIG_MAP, DEPLOYMENT, HPA, SECRET, SERVICE, Kind
from coalmine.kube.permissions import CLUSTER_ROLE, granted
from inprocess import cluster_api, running_controller
from polling import eventually

VERBS = {"replace": "update", "patch-status": "patch"}
KINDS = {str(kind): kind for kind in (CANARY, CONFIG_MAP, DEPLOYMENT, HPA, SECRET, SERVICE)}


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


def deployment(name: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": 9898}],
        "envFrom": [{"configMapRef": {"name": f"{name}-env"}}, {"secretRef": {"name": name}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def hpa(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 2,
        },
    }


def canary(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": name,
            },
            "revertOnDeletion": True,
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "iterations": 1},
        },
    }


async def phase(api: KubeApi, name: str) -> str:
    obj = await api.get_or_none(CANARY, name, "default")
    return "" if obj is None else str((obj.get("status") or {}).get("phase") or "")


async def wait_for(api: KubeApi, name: str, wanted: str) -> None:
    async def reached() -> bool:
        return await phase(api, name) == wanted

    await eventually(reached, 60, f"{name} {wanted}")


def requested(counter: dict[str, int]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request the controller's client counted."""
    found = set()
    for key in counter:
        verb, _, kind_name = key.partition(" ")
        kind: Kind = KINDS[kind_name] if kind_name in KINDS else _by_name(kind_name)
        resource = f"{kind.plural}/status" if verb == "patch-status" else kind.plural
        found.add((kind.group, resource, VERBS.get(verb, verb)))
    return found


def _by_name(name: str) -> Kind:
    from coalmine.kube import kinds

    for value in vars(kinds).values():
        if isinstance(value, Kind) and str(value) == name:
            return value
    raise AssertionError(f"a request for an unknown kind: {name}")


async def test_a_release_and_a_deletion_make_only_requests_the_cluster_role_grants(
    devcluster: DevCluster, api: KubeApi
) -> None:
    name = "granted"
    await api.create(
        CONFIG_MAP,
        {"metadata": {"name": f"{name}-env", "namespace": "default"}, "data": {"A": "1"}},
    )
    await api.create(
        SECRET,
        {"metadata": {"name": name, "namespace": "default"}, "data": {"TOKEN": "czNjcjN0"}},
    )
    await api.create(DEPLOYMENT, deployment(name, "podinfo:6.0.0"))
    await api.create(HPA, hpa(name))
    await api.create(CANARY, canary(name))
    async with running_controller(devcluster, interval=0.5) as controller:
        await wait_for(api, name, "Initialized")
        # A tracked config change is a revision (seen once the short on-demand cache expired).
        await api.patch(SECRET, name, {"data": {"TOKEN": "cm90YXRlZA=="}}, "default")
        await wait_for(api, name, "Succeeded")
        copy = await api.get(SECRET, f"{name}-primary", "default")
        assert copy["data"]["TOKEN"] == "cm90YXRlZA=="
        await api.delete(CANARY, name, "default")
        async with asyncio.timeout(30):
            while await api.get_or_none(CANARY, name, "default") is not None:
                await asyncio.sleep(0.05)
        assert controller.reconciler is not None
        counted = dict(controller.reconciler.api.requests)

    grants = granted(CLUSTER_ROLE)
    made = requested(counted)
    denied = {(g, r, v) for g, r, v in made if v not in grants.get((g, r), set())}
    assert not denied, f"requests the ClusterRole would deny: {sorted(denied)}"
    assert ("", "secrets", "get") in made
    assert not {(g, r, v) for g, r, v in made if r in {"secrets", "configmaps"}} & {
        ("", "secrets", "list"),
        ("", "secrets", "watch"),
        ("", "configmaps", "list"),
        ("", "configmaps", "watch"),
    }
