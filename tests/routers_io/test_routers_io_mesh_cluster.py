"""`--kubeconfig-service-mesh` through the routers' real I/O path (`MeshRouter`): the routing CRDs
in a second API server (an in-process devcluster), Kubernetes' own kinds in the main one; and
what a router says when the mesh cluster does not answer, or answers without the CRD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Caches, KindUnavailable
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import INGRESS, kind_for
from coalmine.kube.meshcluster import MeshCluster, MeshClusterUnreachable, cluster_of
from coalmine.routers.registry import ROUTERS
from targets_io.io_helpers import make_canary
from tiered import ApiServer, crd_documents

from .routing import canary_spec, mesh_router, seed

VIRTUAL_SERVICE = kind_for("networking.istio.io/v1beta1", "VirtualService")
# Flagger's IngressRouter uses its main (kube) client; its knativeClient is built from the main
# config too (the Knative Service is the target).
KEPT_IN_MAIN = {"nginx", "skipper", "knative"}


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_every_routing_crd_lives_in_the_mesh_cluster_and_ingresses_in_the_main_one(
    provider: str,
) -> None:
    canary = make_canary("default", "Service", **canary_spec(provider))
    groups = {kind_for(r.api_version, r.kind).group for r in ROUTERS[provider].references(canary)}
    # Core Services a router reads (Gloo, App Mesh: the copies' selectors) are the main cluster's.
    assert all(cluster_of(group) == "main" for group in groups if group == "")
    routing = {cluster_of(group) for group in groups if group != ""}
    assert routing == {"main" if provider in KEPT_IN_MAIN else "mesh"}


def kubeconfig_for(server: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "mesh", "cluster": {"server": server}}],
                "users": [{"name": "mesh", "user": {}}],
                "contexts": [{"name": "mesh", "context": {"cluster": "mesh", "user": "mesh"}}],
                "current-context": "mesh",
            }
        )
    )
    return path


@pytest.fixture
async def mesh_api(tmp_path: Path) -> AsyncIterator[tuple[KubeApi, str]]:
    from coalmine.devcluster.cluster import DevCluster

    async with DevCluster(port=0) as dev:
        dev.apply_manifests(crd_documents())
        client = KubeApi(load_config(str(dev.kubeconfig_path)))
        yield client, str(dev.kubeconfig_path)
        await client.close()


def with_mesh(ctx: ClusterContext, api: KubeApi, path: str, **kw: float) -> ClusterContext:
    mesh = MeshCluster(api, Caches(api, **kw), owner_references=False, kubeconfig=path)
    return ClusterContext(api=ctx.api, caches=ctx.caches, mesh=mesh)


async def test_istio_routes_go_to_the_mesh_cluster_and_the_nginx_ingress_stays_in_the_main_one(
    apiserver: ApiServer, ctx: ClusterContext, mesh_api: tuple[KubeApi, str]
) -> None:
    ns = apiserver.namespace
    mesh, path = mesh_api
    split = with_mesh(ctx, mesh, path)
    if ns != "default":
        await mesh.create(
            kind_for("v1", "Namespace"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
    istio = make_canary(ns, "Service", **canary_spec("istio"))
    await mesh_router(split, istio).reconcile(istio)
    stored = await mesh.get(VIRTUAL_SERVICE, "podinfo", ns)
    assert "ownerReferences" not in stored["metadata"]
    assert await ctx.api.get_or_none(VIRTUAL_SERVICE, "podinfo", ns) is None

    await seed(ns, ctx.api, "nginx")
    nginx = make_canary(ns, "Service", **canary_spec("nginx"))
    await mesh_router(split, nginx).reconcile(nginx)
    ingress = await ctx.api.get(INGRESS, "podinfo-canary", ns)
    assert [r["kind"] for r in ingress["metadata"]["ownerReferences"]] == ["Canary"]
    assert await mesh.get_or_none(INGRESS, "podinfo-canary", ns) is None


async def test_an_unreachable_mesh_cluster_is_named_and_nothing_is_written(
    apiserver: ApiServer, ctx: ClusterContext, tmp_path: Path
) -> None:
    ns = apiserver.namespace
    path = kubeconfig_for("http://127.0.0.1:9", tmp_path / "mesh.kubeconfig")
    api = KubeApi(load_config(str(path)))
    split = with_mesh(ctx, api, str(path), sync_wait=1.0)
    assert split.mesh is not None
    failures: list[bool] = []
    split.mesh.on_failure.append(lambda: failures.append(True))
    canary = make_canary(ns, "Service", **canary_spec("istio"))
    try:
        with pytest.raises(MeshClusterUnreachable) as raised:
            await mesh_router(split, canary).reconcile(canary)
    finally:
        await split.mesh.caches.stop()
        await api.close()
    message = str(raised.value)
    assert f"mesh cluster http://127.0.0.1:9 (--kubeconfig-service-mesh {path})" in message
    assert "routes left unchanged" in message
    assert not split.mesh.reachable
    assert failures
    assert await ctx.api.get_or_none(VIRTUAL_SERVICE, "podinfo", ns) is None


async def test_a_mesh_cluster_without_the_routing_crd_is_not_called_unreachable(
    apiserver: ApiServer, ctx: ClusterContext
) -> None:
    from coalmine.devcluster.cluster import DevCluster

    ns = apiserver.namespace
    async with DevCluster(port=0) as dev:
        api = KubeApi(load_config(str(dev.kubeconfig_path)))
        split = with_mesh(ctx, api, str(dev.kubeconfig_path), sync_wait=1.0)
        assert split.mesh is not None
        canary = make_canary(ns, "Service", **canary_spec("istio"))
        try:
            with pytest.raises(KindUnavailable, match="in the mesh cluster"):
                await mesh_router(split, canary).reconcile(canary)
        finally:
            await split.mesh.caches.stop()
            await api.close()
        assert split.mesh.reachable
