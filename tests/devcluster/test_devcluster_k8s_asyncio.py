"""kubernetes_asyncio, unmodified: CRUD and a watch that resumes from a resourceVersion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client, config, watch

from coalmine.devcluster import DevCluster


@pytest.fixture
async def core(devcluster: DevCluster) -> AsyncIterator[client.CoreV1Api]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(devcluster.kubeconfig_path), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


def configmap(name: str, value: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"v": value})


async def test_crud_through_kubernetes_asyncio(core: client.CoreV1Api) -> None:
    await core.create_namespaced_config_map("default", configmap("ka", "1"))
    read = await core.read_namespaced_config_map("ka", "default")
    assert read.data == {"v": "1"}
    await core.patch_namespaced_config_map("ka", "default", {"data": {"v": "2"}})
    listed = await core.list_namespaced_config_map("default", field_selector="metadata.name=ka")
    assert [item.data for item in listed.items] == [{"v": "2"}]
    await core.delete_namespaced_config_map("ka", "default")
    with pytest.raises(client.ApiException) as raised:
        await core.read_namespaced_config_map("ka", "default")
    assert raised.value.status == 404


async def test_watch_resumes_from_a_resource_version(core: client.CoreV1Api) -> None:
    listed = await core.list_namespaced_config_map("default")
    version = listed.metadata.resource_version
    await core.create_namespaced_config_map("default", configmap("resume", "1"))
    await core.patch_namespaced_config_map("resume", "default", {"data": {"v": "2"}})
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    async with asyncio.timeout(10):
        async for event in stream.stream(
            core.list_namespaced_config_map, "default", resource_version=version, timeout_seconds=5
        ):
            seen.append((event["type"], event["object"].data["v"]))
            if len(seen) == 2:
                stream.stop()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2")]
