"""`--kubeconfig-service-mesh` end to end: the Canary, its target and the Service copies in one
API server, the Istio VirtualService and DestinationRules in another, on both tiers.

The mesh cluster is stopped (SIGSTOP: it accepts connections and never answers) in the middle of
a release: the controller must say so on the Canary (a Warning naming the mesh cluster), in its
metrics, and must not move the canary's phase or weight while it cannot write the routes; when
the mesh cluster answers again the release completes with every step in order.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from clusters import RealClusterProcess, TestCluster, start_realcluster, stop_realcluster
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, SERVICE, kind_for

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    controller_metric,
    event_messages,
    eventually,
    start_controller,
)
from .meshpair import MeshServer, devcluster_mesh, mesh_denied, real_mesh_for
from .test_router_releases import EXPECTED_SPLITS, VIRTUAL_SERVICE, SplitWatch, canary

pytestmark = pytest.mark.e2e

DESTINATION_RULE = kind_for("networking.istio.io/v1beta1", "DestinationRule")


@pytest.fixture(scope="module")
def mesh_realcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealClusterProcess]:
    """The second real control plane, for this module's tests (namespaces keep them apart)."""
    workdir = tmp_path_factory.mktemp("mesh-realcluster")
    real = start_realcluster(workdir)
    try:
        yield real
    finally:
        stop_realcluster(real)


@pytest.fixture
def mesh(
    cluster: TestCluster, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MeshServer]:
    if not cluster.real:
        with devcluster_mesh() as server:
            yield server
        return
    real: RealClusterProcess = request.getfixturevalue("mesh_realcluster")
    since = real.audit_log.stat().st_size if real.audit_log.exists() else 0
    server = real_mesh_for(real, cluster, tmp_path)
    try:
        yield server
    finally:
        server.resume()
    denied = mesh_denied(server, since)
    assert not denied, f"the mesh cluster's RBAC refused: {denied}"


@pytest.fixture
def mesh_controller(
    cluster: TestCluster, mesh: MeshServer, tmp_path: Path
) -> Iterator[ControllerProcess]:
    process = start_controller(
        cluster, tmp_path, f"--kubeconfig-service-mesh={mesh.controller_kubeconfig}"
    )
    yield process
    if process.process.poll() is None:
        process.terminate()
    print(f"--- controller log (last 6000 characters)\n{process.logs()[-6000:]}")


def target_service(selector: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"selector": {"app": selector}, "ports": [{"name": "http", "port": 9898}]},
    }


@asynccontextmanager
async def mesh_routes(mesh: MeshServer, ns: str) -> AsyncIterator[tuple[KubeApi, SplitWatch]]:
    """An admin client of the mesh cluster and every split its VirtualService `podinfo` held."""
    api = KubeApi(load_config(str(mesh.admin_kubeconfig)))
    routes = SplitWatch()
    informer = Informer(api, VIRTUAL_SERVICE, ns)
    informer.subscribe(routes)
    informer.start()
    try:
        await informer.wait_synced()
        yield api, routes
    finally:
        await informer.stop()
        await api.close()


async def reachable(controller: ControllerProcess) -> float | None:
    return await controller_metric(controller, "coalmine_mesh_cluster_reachable", {})


async def failures(controller: ControllerProcess) -> float:
    value = await controller_metric(controller, "coalmine_mesh_cluster_failures_total", {})
    return value or 0.0


async def released_to_green(
    stack: AsyncExitStack, cluster: TestCluster, mesh: MeshServer
) -> tuple[KubeApi, KubeApi, SplitWatch, CanaryWatch]:
    """The istio Canary of `podinfo` initialized, its Service target then moved to the green
    pods (a release starts); clients of both clusters stay open on `stack`."""
    ns = cluster.namespace
    api, canaries = await stack.enter_async_context(cluster_client(cluster.kubeconfig_path))
    mesh_api, routes = await stack.enter_async_context(mesh_routes(mesh, ns))
    watch = CanaryWatch("podinfo", ns)
    canaries.subscribe(watch)
    await api.create(SERVICE, target_service("podinfo-blue", ns))
    await api.create(CANARY, canary("istio", ns))
    await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
    await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
    return api, mesh_api, routes, watch


async def test_routing_objects_live_in_the_mesh_cluster_and_the_rest_in_the_main_one(
    cluster: TestCluster, mesh: MeshServer, mesh_controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with AsyncExitStack() as stack:
        api, mesh_api, routes, watch = await released_to_green(stack, cluster, mesh)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)

        assert routes.splits == EXPECTED_SPLITS, mesh_controller.logs()[-3000:]
        virtual_service = await mesh_api.get(VIRTUAL_SERVICE, "podinfo", ns)
        rules = [
            (await mesh_api.get(DESTINATION_RULE, name, ns))["metadata"]
            for name in ("podinfo-primary", "podinfo-canary")
        ]
        # A Canary of another cluster cannot own them: its garbage collector would delete them.
        for metadata in [virtual_service["metadata"], *rules]:
            assert "ownerReferences" not in metadata
        # Nothing routing in the main cluster; no Service copy in the mesh cluster.
        assert await api.get_or_none(VIRTUAL_SERVICE, "podinfo", ns) is None
        assert (await api.get(SERVICE, "podinfo-primary", ns))["spec"]["selector"] == {
            "app": "podinfo-green"
        }
        assert await mesh_api.get_or_none(SERVICE, "podinfo-primary", ns) is None
        assert await reachable(mesh_controller) == 1


async def test_a_stopped_mesh_cluster_holds_the_release_until_it_answers(
    cluster: TestCluster, mesh: MeshServer, mesh_controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with AsyncExitStack() as stack:
        api, _, routes, watch = await released_to_green(stack, cluster, mesh)
        await eventually(
            lambda: (watch.last.get("status") or {}).get("canaryWeight") == 20,
            what="canary weight 20",
            watch=watch,
        )
        mesh.pause()
        paused = time.monotonic()
        try:
            messages: list[str] = []

            async def warned() -> bool:
                messages[:] = await event_messages(api, ns)
                return any(
                    f"--kubeconfig-service-mesh {mesh.controller_kubeconfig}" in m
                    and "is unreachable" in m
                    for m in messages
                )

            await eventually(warned, what="a Warning naming the mesh cluster", watch=watch)
            warned_after = time.monotonic() - paused
            assert await _wait_metric(mesh_controller, 0)
            print(f"measured: Warning {warned_after:.1f}s after SIGSTOP", flush=True)
            held = (watch.phase, watch.last["status"].get("canaryWeight"))
            before = await failures(mesh_controller)

            async def more_failures() -> bool:
                return await failures(mesh_controller) >= before + 3

            # Several cycles (and probes) fail while it is stopped: nothing moves.
            await eventually(more_failures, what="three more failures", watch=watch)
            assert (watch.phase, watch.last["status"].get("canaryWeight")) == held
            assert held[0] == "Progressing"
        finally:
            mesh.resume()
        resumed = time.monotonic()
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        assert await _wait_metric(mesh_controller, 1)
        print(f"measured: Succeeded {time.monotonic() - resumed:.1f}s after SIGCONT", flush=True)
    # Every split in order: nothing skipped, nothing half-written, the weights the status
    # reported were all live in the mesh cluster.
    assert routes.splits == EXPECTED_SPLITS, mesh_controller.logs()[-3000:]
    live = {canary_weight for _, canary_weight in routes.splits}
    assert {weight for _, weight, _, _ in watch.history} <= live


async def _wait_metric(controller: ControllerProcess, value: float) -> bool:
    async def check() -> bool:
        return await reachable(controller) == value

    await eventually(check, what=f"coalmine_mesh_cluster_reachable {value}")
    return True


async def test_the_controller_starts_without_the_mesh_cluster_and_initializes_once_it_answers(
    cluster: TestCluster, mesh: MeshServer, tmp_path: Path
) -> None:
    ns = cluster.namespace
    mesh.pause()
    controller = start_controller(
        cluster, tmp_path, f"--kubeconfig-service-mesh={mesh.controller_kubeconfig}"
    )
    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            watch = CanaryWatch("podinfo", ns)
            canaries.subscribe(watch)
            await api.create(SERVICE, target_service("podinfo-blue", ns))
            await api.create(CANARY, canary("istio", ns))

            async def warned() -> bool:
                messages = await event_messages(api, ns)
                return any("mesh cluster" in m and "is unreachable" in m for m in messages)

            await eventually(warned, what="a Warning naming the mesh cluster", watch=watch)
            assert controller.process.poll() is None, "the controller must keep running"
            assert watch.phase != "Initialized"
            assert await reachable(controller) == 0
            mesh.resume()
            await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
            assert await reachable(controller) == 1
    finally:
        mesh.resume()
        controller.terminate()
        print(f"--- controller log\n{controller.logs()[-6000:]}")
