"""lightkube, unmodified, against devcluster through the kubeconfig it writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.autoscaling_v1 import ScaleSpec
from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Service
from lightkube.types import CascadeType, PatchType

from coalmine.devcluster import DevCluster

from .dchelpers import WIDGET_CRD, deployment

Widget = create_namespaced_resource("example.com", "v1", "Widget", "widgets", verbs=None)


@pytest.fixture
async def client(devcluster: DevCluster) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(devcluster.kubeconfig_path))
    try:
        yield client
    finally:
        await client.close()


async def test_create_get_list_and_delete(client: AsyncClient) -> None:
    await client.create(
        ConfigMap(metadata=ObjectMeta(name="lk", labels={"x": "1"}), data={"a": "1"})
    )
    got = await client.get(ConfigMap, "lk")
    assert got.data == {"a": "1"}
    assert got.metadata is not None
    assert got.metadata.namespace == "default"
    names = [
        cm.metadata.name async for cm in client.list(ConfigMap, labels={"x": "1"}) if cm.metadata
    ]
    assert names == ["lk"]
    namespaces = [ns.metadata.name async for ns in client.list(Namespace) if ns.metadata]
    assert "default" in namespaces
    await client.delete(ConfigMap, "lk")
    with pytest.raises(ApiError) as raised:
        await client.get(ConfigMap, "lk")
    assert raised.value.status.code == 404
    assert raised.value.status.message == 'configmaps "lk" not found'


async def test_every_patch_type(client: AsyncClient) -> None:
    await client.create(Deployment.from_dict(deployment("pt")))
    await client.patch(Deployment, "pt", {"spec": {"replicas": 2}}, patch_type=PatchType.MERGE)
    await client.patch(
        Deployment,
        "pt",
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        patch_type=PatchType.JSON,
    )
    containers = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:9"}]}}}
    }
    await client.patch(Deployment, "pt", containers, patch_type=PatchType.STRATEGIC)
    result = await client.get(Deployment, "pt")
    assert result.spec is not None
    assert result.spec.replicas == 3
    assert result.spec.template.spec is not None
    assert result.spec.template.spec.containers[0].image == "nginx:9"
    applied = ConfigMap(metadata=ObjectMeta(name="applied"), data={"k": "v"})
    await client.apply(applied, field_manager="lk-test")
    live = await client.get(ConfigMap, "applied")
    assert live.data == {"k": "v"}
    assert live.metadata is not None
    assert live.metadata.managedFields is not None
    assert live.metadata.managedFields[0].manager == "lk-test"


async def test_replace_conflicts_on_a_stale_object(client: AsyncClient) -> None:
    created = await client.create(ConfigMap(metadata=ObjectMeta(name="rp"), data={"a": "1"}))
    fresh = await client.get(ConfigMap, "rp")
    fresh.data = {"a": "2"}
    await client.replace(fresh)
    created.data = {"a": "3"}
    with pytest.raises(ApiError) as raised:
        await client.replace(created)
    assert raised.value.status.code == 409
    assert raised.value.status.reason == "Conflict"


async def test_service_allocation_through_lightkube(client: AsyncClient) -> None:
    svc = Service(
        metadata=ObjectMeta(name="lksvc"),
        spec=ServiceSpec(ports=[ServicePort(port=80)], selector={"a": "b"}),
    )
    created = await client.create(svc)
    assert created.spec is not None
    assert created.spec.clusterIP
    assert created.spec.clusterIPs == [created.spec.clusterIP]
    clash = Service(
        metadata=ObjectMeta(name="clash"),
        spec=ServiceSpec(ports=[ServicePort(port=80)], clusterIP=created.spec.clusterIP),
    )
    with pytest.raises(ApiError) as raised:
        await client.create(clash)
    assert raised.value.status.code == 422
    assert raised.value.status.message is not None
    assert "provided IP is already allocated" in raised.value.status.message


async def test_custom_resources_status_and_scale(client: AsyncClient) -> None:
    await client.create(CustomResourceDefinition.from_dict(WIDGET_CRD))
    await client.create(Widget.from_dict({"metadata": {"name": "lw"}, "spec": {"size": 2}}))
    await client.patch(Widget.Status, "lw", {"status": {"replicas": 1}}, patch_type=PatchType.MERGE)
    got = await client.get(Widget, "lw")
    assert got.status == {"replicas": 1}
    assert got["spec"]["color"] == "red"
    scale = await client.get(Widget.Scale, "lw")
    assert scale.spec is not None
    assert scale.spec.replicas == 1
    with pytest.raises(ApiError) as raised:
        await client.create(Widget.from_dict({"metadata": {"name": "bad"}, "spec": {"size": "x"}}))
    assert raised.value.status.code == 422


async def test_watch_sees_changes_and_resumes(client: AsyncClient) -> None:
    events: list[tuple[str, str]] = []
    version = ""

    async def consume() -> None:
        nonlocal version
        async for kind, obj in client.watch(ConfigMap, namespace="default"):
            assert obj.metadata is not None
            events.append((kind, str(obj.metadata.name)))
            version = str(obj.metadata.resourceVersion)
            if len(events) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await client.create(ConfigMap(metadata=ObjectMeta(name="w1")))
    await client.create(ConfigMap(metadata=ObjectMeta(name="w2")))
    await asyncio.wait_for(task, 5)
    assert [e for e in events if e[1] in ("w1", "w2")] == [("ADDED", "w1"), ("ADDED", "w2")]
    await client.delete(ConfigMap, "w1")
    async for kind, obj in client.watch(ConfigMap, namespace="default", resource_version=version):
        assert (kind, obj.metadata.name if obj.metadata else None) == ("DELETED", "w1")
        break


async def test_deployment_model_round_trips(client: AsyncClient) -> None:
    dep = Deployment.from_dict(deployment("model", replicas=4))
    created = await client.create(dep)
    assert isinstance(created.spec, DeploymentSpec)
    assert created.spec.replicas == 4
    assert created.metadata is not None
    assert created.metadata.generation == 1


async def test_finalizers_and_foreground_deletion_through_lightkube(client: AsyncClient) -> None:
    owner = await client.create(ConfigMap(metadata=ObjectMeta(name="owner")))
    assert owner.metadata is not None
    ref = OwnerReference(
        apiVersion="v1", kind="ConfigMap", name="owner", uid=str(owner.metadata.uid)
    )
    await client.create(
        ConfigMap(metadata=ObjectMeta(name="dep", ownerReferences=[ref], finalizers=["x/y"]))
    )
    await client.delete(ConfigMap, "owner", cascade=CascadeType.FOREGROUND)
    waiting = await client.get(ConfigMap, "owner")
    assert waiting.metadata is not None
    assert waiting.metadata.finalizers == ["foregroundDeletion"]
    await client.patch(
        ConfigMap, "dep", {"metadata": {"finalizers": None}}, patch_type=PatchType.MERGE
    )
    with pytest.raises(ApiError) as raised:
        await client.get(ConfigMap, "owner")
    assert raised.value.status.code == 404


async def test_server_side_apply_conflict_through_lightkube(client: AsyncClient) -> None:
    await client.apply(
        ConfigMap(metadata=ObjectMeta(name="shared"), data={"k": "1"}), field_manager="a"
    )
    with pytest.raises(ApiError) as raised:
        await client.apply(
            ConfigMap(metadata=ObjectMeta(name="shared"), data={"k": "2"}), field_manager="b"
        )
    assert raised.value.status.code == 409
    forced = await client.apply(
        ConfigMap(metadata=ObjectMeta(name="shared"), data={"k": "2"}),
        field_manager="b",
        force=True,
    )
    assert forced.data == {"k": "2"}


async def test_paginated_and_field_selected_lists_through_lightkube(client: AsyncClient) -> None:
    for index in range(7):
        await client.create(
            ConfigMap(metadata=ObjectMeta(name=f"p{index}", labels={"page": "yes"}))
        )
    names = [
        cm.metadata.name
        async for cm in client.list(ConfigMap, labels={"page": "yes"}, chunk_size=3)
        if cm.metadata
    ]
    assert names == [f"p{i}" for i in range(7)]
    selected = [
        cm.metadata.name
        async for cm in client.list(ConfigMap, fields={"metadata.name": "p3"})
        if cm.metadata
    ]
    assert selected == ["p3"]


async def test_deployment_scale_and_namespace_deletion_through_lightkube(
    client: AsyncClient,
) -> None:
    await client.create(Namespace(metadata=ObjectMeta(name="scratch")))
    await client.create(Deployment.from_dict(deployment("sc")), namespace="scratch")
    scale = await client.get(Deployment.Scale, "sc", namespace="scratch")
    assert scale.spec is not None
    assert scale.spec.replicas == 1
    await client.replace(
        Deployment.Scale(
            metadata=ObjectMeta(name="sc", namespace="scratch"), spec=ScaleSpec(replicas=3)
        ),
    )
    assert (await client.get(Deployment, "sc", namespace="scratch")).spec.replicas == 3  # type: ignore[union-attr]
    await client.delete(Namespace, "scratch")
    with pytest.raises(ApiError):
        await client.get(Deployment, "sc", namespace="scratch")
    with pytest.raises(ApiError):
        await client.get(Namespace, "scratch")


async def test_injected_faults_reach_lightkube_as_api_errors(
    devcluster: DevCluster, client: AsyncClient
) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="flaky")))
    devcluster.faults.inject_error(
        409, "Conflict", "injected conflict", verb="patch", resource="configmaps", name="flaky"
    )
    with pytest.raises(ApiError) as raised:
        await client.patch(ConfigMap, "flaky", {"data": {"a": "1"}}, patch_type=PatchType.MERGE)
    assert raised.value.status.code == 409
    assert raised.value.status.message == "injected conflict"
    patched = await client.patch(
        ConfigMap, "flaky", {"data": {"a": "1"}}, patch_type=PatchType.MERGE
    )
    assert patched.data == {"a": "1"}
