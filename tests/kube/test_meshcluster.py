"""The mesh cluster of `--kubeconfig-service-mesh` when it stops answering: a server that accepts
connections and never replies (what a stopped API server looks like to a client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Caches
from coalmine.kube.kinds import SERVICE, VIRTUAL_SERVICE
from coalmine.kube.meshcluster import MeshCluster, MeshClusterUnreachable, cluster_of


def test_routing_crds_are_mesh_kinds_and_kubernetes_own_kinds_are_not() -> None:
    assert cluster_of(VIRTUAL_SERVICE.group) == "mesh"
    assert cluster_of("gateway.networking.k8s.io") == "mesh"
    assert cluster_of("appmesh.k8s.aws") == "mesh"
    for group in ("", "networking.k8s.io", "flagger.app", "serving.knative.dev", "keda.sh"):
        assert cluster_of(group) == "main"


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A TCP server that reads requests and never answers; the event is set on the first one."""
    heard = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(4096):
            heard.set()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heard
    finally:
        for writer in writers:
            writer.close()
        server.close()


@pytest.fixture
async def mesh(
    silent_server: tuple[str, asyncio.Event], tmp_path: Path
) -> AsyncIterator[MeshCluster]:
    url, _ = silent_server
    path = tmp_path / "mesh.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "m", "cluster": {"server": url}}],
                "users": [{"name": "m", "user": {}}],
                "contexts": [{"name": "m", "context": {"cluster": "m", "user": "m"}}],
                "current-context": "m",
            }
        )
    )
    # A request timeout far beyond the test's: only the probe can end the wait.
    api = KubeApi(load_config(str(path)), timeout=3600)
    yield MeshCluster(api, Caches(api), owner_references=False, kubeconfig=str(path))
    await api.close()


async def read_service(mesh: MeshCluster) -> None:
    async with mesh.guard("reading Service podinfo.default"):
        await mesh.api.get(SERVICE, "podinfo", "default")


async def test_a_request_to_a_silent_mesh_cluster_is_cut_off_when_the_probe_fails(
    mesh: MeshCluster, silent_server: tuple[str, asyncio.Event]
) -> None:
    _, heard = silent_server
    changes: list[bool] = []
    mesh.on_change.append(changes.append)
    request = asyncio.create_task(read_service(mesh))
    await heard.wait()
    assert not await mesh.probe_once(within=0.2)
    with pytest.raises(MeshClusterUnreachable) as raised:
        await request
    message = str(raised.value)
    assert f"{mesh.description} is unreachable reading Service podinfo.default: cut off" in message
    assert changes == [False]
    # While it is down nothing is asked of it: the next read fails at once.
    with pytest.raises(MeshClusterUnreachable):
        await read_service(mesh)


async def test_stopping_a_cycle_waiting_on_the_mesh_cluster_stays_a_cancellation(
    mesh: MeshCluster, silent_server: tuple[str, asyncio.Event]
) -> None:
    _, heard = silent_server
    request = asyncio.create_task(read_service(mesh))
    await heard.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert mesh.reachable
