"""Only a new revision of the target starts a cycle early; any other change waits for the interval.

Each cycle during analysis takes an analysis step, so a cycle per target event turned a 140 s
analysis into 3.5 s under metadata churn. The controller runs in-process on devcluster; the test
counts the cycles the canary's job ran while the target is annotated and its status written over
and over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, SERVICE
from inprocess import cluster_api, running_controller, service, service_canary
from polling import eventually

INTERVAL = 1.0
CHURN_SECONDS = 4.0


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


async def phase(api: KubeApi, name: str) -> str:
    obj = await api.get(CANARY, name, "default")
    return str((obj.get("status") or {}).get("phase") or "")


async def wait_for_phase(api: KubeApi, name: str, wanted: str) -> None:
    async def reached() -> bool:
        return await phase(api, name) == wanted

    await eventually(reached, 30, f"{name} {wanted}")


async def churn(api: KubeApi, name: str, seconds: float) -> int:
    """Annotate the Service and write its status as fast as the server takes it."""
    writes = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await api.patch(
            SERVICE, name, {"metadata": {"annotations": {"churn": str(writes)}}}, "default"
        )
        await api.patch(
            SERVICE,
            name,
            {"status": {"loadBalancer": {"ingress": [{"ip": f"10.0.0.{writes % 250}"}]}}},
            "default",
            status=True,
        )
        writes += 2
        await asyncio.sleep(0.02)
    return writes


def cycles_of(controller: Controller, key: str) -> int:
    assert controller.reconciler is not None
    job = controller.reconciler.jobs.get(key)
    assert job is not None
    return job.cycles


async def test_metadata_and_status_churn_of_the_target_does_not_speed_up_the_analysis(
    devcluster: DevCluster, api: KubeApi
) -> None:
    await api.create(SERVICE, service("churned", "blue"))
    await api.create(CANARY, service_canary("churned", 50))
    async with running_controller(devcluster, interval=INTERVAL) as controller:
        await wait_for_phase(api, "churned", "Initialized")
        await api.patch(SERVICE, "churned", {"spec": {"selector": {"app": "green"}}}, "default")
        await wait_for_phase(api, "churned", "Progressing")
        before = cycles_of(controller, "churned.default")
        writes = await churn(api, "churned", CHURN_SECONDS)
        taken = cycles_of(controller, "churned.default") - before
        # One cycle per interval, plus the one in flight; the churn brought `writes` events.
        assert writes > 40
        assert taken <= CHURN_SECONDS / INTERVAL + 2, f"{taken} cycles for {writes} target writes"
        assert await phase(api, "churned") == "Progressing"


async def test_a_new_revision_during_analysis_still_starts_a_cycle_at_once(
    devcluster: DevCluster, api: KubeApi
) -> None:
    await api.create(SERVICE, service("revised", "blue"))
    slow = service_canary("revised", 50)
    slow["spec"]["analysis"]["interval"] = "1m"
    await api.create(CANARY, slow)
    async with running_controller(devcluster, interval=INTERVAL) as controller:
        await wait_for_phase(api, "revised", "Initialized")
        before = cycles_of(controller, "revised.default")
        await api.patch(SERVICE, "revised", {"spec": {"selector": {"app": "green"}}}, "default")
        # With a one-minute interval only the revision can bring this cycle.
        await wait_for_phase(api, "revised", "Progressing")
        assert cycles_of(controller, "revised.default") > before
        annotated = cycles_of(controller, "revised.default")
        await churn(api, "revised", 1.0)
        await asyncio.sleep(0.5)
        assert cycles_of(controller, "revised.default") == annotated
