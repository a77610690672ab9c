"""Only a new revision of the target starts a cycle early; any other change waits for the interval.

Each cycle during analysis takes an analysis step, so a cycle per target event turned a 140 s
analysis into 3.5 s under metadata churn. The controller runs in-process on both tiers; the tests
count the cycles the canary's job ran while the target is annotated and its status written over
and over, and — on the real control plane, where controller-manager writes a Deployment's status
whenever its pods come and go — while the pods of a Deployment target are deleted and replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coalmine.controller.runtime import Controller
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, CONFIG_MAP, DEPLOYMENT, SECRET, SERVICE, kind_for
from inprocess import admin_api, controller_on, service, service_canary
from polling import eventually
from targets_io.io_helpers import configmap, deployment, secret
from tiered import ApiServer

INTERVAL = 1.0
CHURN_SECONDS = 4.0
POD = kind_for("v1", "Pod")


@pytest.fixture
def ns(apiserver: ApiServer) -> str:
    return apiserver.namespace


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    async with admin_api(apiserver) as client:
        yield client


async def phase(api: KubeApi, name: str, ns: str) -> str:
    obj = await api.get(CANARY, name, ns)
    return str((obj.get("status") or {}).get("phase") or "")


async def wait_for_phase(api: KubeApi, name: str, ns: str, wanted: str) -> None:
    async def reached() -> bool:
        return await phase(api, name, ns) == wanted

    await eventually(reached, 60, f"{name} {wanted}")


async def churn(api: KubeApi, name: str, ns: str, seconds: float) -> int:
    """Annotate the Service and write its status as fast as the server takes it."""
    writes = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await api.patch(SERVICE, name, {"metadata": {"annotations": {"churn": str(writes)}}}, ns)
        # kube-apiserver takes a Service's status conditions whatever its type.
        condition = {
            "type": "Churned",
            "status": "True",
            "reason": "Churn",
            "message": str(writes),
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        await api.patch(SERVICE, name, {"status": {"conditions": [condition]}}, ns, status=True)
        writes += 2
        await asyncio.sleep(0.02)
    return writes


def cycles_of(controller: Controller, key: str) -> int:
    assert controller.reconciler is not None
    job = controller.reconciler.jobs.get(key)
    assert job is not None
    return job.cycles


async def test_metadata_and_status_churn_of_the_target_does_not_speed_up_the_analysis(
    apiserver: ApiServer, api: KubeApi, ns: str
) -> None:
    await api.create(SERVICE, service("churned", "blue", ns))
    await api.create(CANARY, service_canary("churned", 50, ns))
    async with controller_on(apiserver, interval=INTERVAL) as controller:
        await wait_for_phase(api, "churned", ns, "Initialized")
        await api.patch(SERVICE, "churned", {"spec": {"selector": {"app": "green"}}}, ns)
        await wait_for_phase(api, "churned", ns, "Progressing")
        before = cycles_of(controller, f"churned.{ns}")
        writes = await churn(api, "churned", ns, CHURN_SECONDS)
        taken = cycles_of(controller, f"churned.{ns}") - before
        # One cycle per interval, plus the one in flight; the churn brought `writes` events.
        assert writes > 40
        assert taken <= CHURN_SECONDS / INTERVAL + 2, f"{taken} cycles for {writes} target writes"
        assert await phase(api, "churned", ns) == "Progressing"


async def test_a_new_revision_during_analysis_still_starts_a_cycle_at_once(
    apiserver: ApiServer, api: KubeApi, ns: str
) -> None:
    await api.create(SERVICE, service("revised", "blue", ns))
    slow = service_canary("revised", 50, ns)
    slow["spec"]["analysis"]["interval"] = "1m"
    await api.create(CANARY, slow)
    async with controller_on(apiserver, interval=INTERVAL) as controller:
        await wait_for_phase(api, "revised", ns, "Initialized")
        before = cycles_of(controller, f"revised.{ns}")
        await api.patch(SERVICE, "revised", {"spec": {"selector": {"app": "green"}}}, ns)
        # With a one-minute interval only the revision can bring this cycle.
        await wait_for_phase(api, "revised", ns, "Progressing")
        assert cycles_of(controller, f"revised.{ns}") > before
        annotated = cycles_of(controller, f"revised.{ns}")
        await churn(api, "revised", ns, 1.0)
        await asyncio.sleep(0.5)
        assert cycles_of(controller, f"revised.{ns}") == annotated


def deployment_canary(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 5, "iterations": 50},
        },
    }


async def delete_pods(api: KubeApi, ns: str) -> int:
    """Delete every pod of the canary and the primary (controller-manager replaces them)."""
    deleted = 0
    for app in ("podinfo", "podinfo-primary"):
        for pod in (await api.list(POD, ns, labels=f"app={app}")).items:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            await api.delete(POD, pod["metadata"]["name"], ns)
            deleted += 1
    return deleted


async def pod_churn(api: KubeApi, ns: str, seconds: float) -> tuple[int, int]:
    """Pods deleted, and the Deployment versions controller-manager's status writes made."""
    versions: set[str] = set()
    deleted = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        deleted += await delete_pods(api, ns)
        for name in ("podinfo", "podinfo-primary"):
            versions.add((await api.get(DEPLOYMENT, name, ns))["metadata"]["resourceVersion"])
        await asyncio.sleep(0.2)
    return deleted, len(versions)


@pytest.mark.realcluster_only(
    "pods, ReplicaSets and Deployment status come from controller-manager"
)
async def test_pod_churn_of_a_deployment_target_does_not_speed_up_the_analysis(
    apiserver: ApiServer, api: KubeApi, ns: str
) -> None:
    await api.create(CONFIG_MAP, configmap(ns))
    await api.create(SECRET, secret(ns))
    await api.create(DEPLOYMENT, deployment(ns, replicas=2))
    await api.create(CANARY, deployment_canary(ns))
    async with controller_on(apiserver, interval=INTERVAL) as controller:
        await wait_for_phase(api, "podinfo", ns, "Initialized")
        container = {"name": "podinfo", "image": "podinfo:6.1.0"}
        image = {"spec": {"template": {"spec": {"containers": [container]}}}}
        await api.patch(DEPLOYMENT, "podinfo", image, ns)
        await wait_for_phase(api, "podinfo", ns, "Progressing")
        before = cycles_of(controller, f"podinfo.{ns}")
        deleted, versions = await pod_churn(api, ns, CHURN_SECONDS)
        taken = cycles_of(controller, f"podinfo.{ns}") - before
        assert deleted >= 8, f"only {deleted} pods deleted"
        assert versions >= 6, f"controller-manager wrote the Deployments only {versions} times"
        assert taken <= CHURN_SECONDS / INTERVAL + 2, f"{taken} cycles for {deleted} pod deletions"
        assert await phase(api, "podinfo", ns) == "Progressing"
