"""The controller recovers from an API server restart within seconds, with or without its state.

devcluster is stopped and started again on the same port while the controller runs in-process:
once keeping its objects (a restart), once empty (an etcd restore to nothing). A revision made
just after the restart must be released, and a Canary re-created on the empty server must never
receive the status of the run the controller had for the old one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, Object, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, SERVICE
from inprocess import CRD_DIR, running_controller, service, service_canary
from polling import eventually

INTERVAL = 0.5
RECOVERY_LIMIT = 10.0
"""Waits end with a failure after this long; with the old 30 s backoff recovery took longer."""


def load_crds(cluster: DevCluster) -> None:
    for path in sorted(CRD_DIR.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            cluster.apply_manifests(path.read_text())


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    load_crds(devcluster)
    client = KubeApi(load_config(str(devcluster.kubeconfig_path)))
    try:
        yield client
    finally:
        await client.close()


async def phase(api: KubeApi, name: str) -> str:
    obj = await api.get(CANARY, name, "default")
    return str((obj.get("status") or {}).get("phase") or "")


async def wait_for_phase(api: KubeApi, name: str, wanted: str) -> None:
    async def reached() -> bool:
        return await phase(api, name) == wanted

    # any error: the server is still coming up
    await eventually(reached, RECOVERY_LIMIT, f"{name} {wanted}", tolerate=(Exception,))


async def progressing(api: KubeApi, name: str) -> None:
    await wait_for_phase(api, name, "Initialized")
    await api.patch(SERVICE, name, {"spec": {"selector": {"app": "green"}}}, "default")
    await wait_for_phase(api, name, "Progressing")


async def test_a_revision_made_just_after_an_api_server_restart_is_released(
    devcluster: DevCluster, api: KubeApi
) -> None:
    await api.create(SERVICE, service("kept", "blue"))
    await api.create(CANARY, service_canary("kept", 100))
    async with running_controller(devcluster, interval=INTERVAL):
        await wait_for_phase(api, "kept", "Initialized")
        await devcluster.stop()
        await asyncio.sleep(6)  # the backoff grows while the server is away
        await devcluster.start()
        await api.patch(SERVICE, "kept", {"spec": {"selector": {"app": "green"}}}, "default")
        await wait_for_phase(api, "kept", "Progressing")


async def test_a_canary_recreated_on_an_api_server_that_lost_its_state_gets_no_stale_status(
    devcluster: DevCluster, api: KubeApi, tmp_path: Path
) -> None:
    await api.create(SERVICE, service("restored", "blue"))
    await api.create(CANARY, service_canary("restored", 100))
    async with running_controller(devcluster, interval=INTERVAL) as controller:
        await progressing(api, "restored")
        port = devcluster.port
        await devcluster.stop()
        await asyncio.sleep(1)
        async with DevCluster(
            port=port, rollout_delay=0.05, kubeconfig_path=tmp_path / "kubeconfig"
        ) as empty:
            load_crds(empty)
            seen: list[Object] = []
            fresh = KubeApi(load_config(str(empty.kubeconfig_path)))
            watch = Informer(fresh, CANARY)
            watch.subscribe(lambda _, obj: seen.append(obj))
            try:
                watch.start()
                await watch.wait_synced()
                # Re-created at once: the controller still holds the old run in its caches.
                await fresh.create(SERVICE, service("restored", "blue"))
                await fresh.create(CANARY, service_canary("restored", 100))
                await wait_for_phase(fresh, "restored", "Initialized")
                await asyncio.sleep(2)  # cycles of the old job, had it kept going, write here
                phases = [(o.get("status") or {}).get("phase") for o in seen]
                assert "Progressing" not in phases, phases
                assert all(not (o.get("status") or {}).get("iterations") for o in seen)
                # The controller noticed the reset and releases a new revision at once.
                reconciler = controller.reconciler
                assert reconciler is not None
                assert reconciler.caches[CANARY].resets >= 1
                await fresh.patch(
                    SERVICE, "restored", {"spec": {"selector": {"app": "green"}}}, "default"
                )
                await wait_for_phase(fresh, "restored", "Progressing")
            finally:
                await watch.stop()
                await fresh.close()
