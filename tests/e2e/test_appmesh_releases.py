"""App Mesh end to end, beyond the Service-target releases of test_router_releases.py:

* the virtual nodes exist before the primary pods (Flagger reconciles App Mesh first: the App
  Mesh sidecar injector needs a node matching a pod when the pod is created), on a Deployment;
* `provider: appmesh` (v1beta1) releases and rolls back on clusters serving the v1beta1 kinds. No
  official v1beta1 CRD exists here, so those clusters serve OUR schema, written from Flagger's Go
  types, in place of the official v1beta2 CRDs (one group and plural: one or the other per
  cluster, as a cluster runs one App Mesh controller). The mesh name comes from the controller's
  `--mesh-name` in the release and from `service.meshName` in the rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from clusters import (
    APPMESH_V1BETA1_ROUTER_CRDS,
    RealClusterProcess,
    TestCluster,
    controller_kubeconfig,
    devcluster_for_test,
    namespace_for_test,
    require_go,
    start_realcluster,
    stop_realcluster,
    tiers,
)
from coalmine.kube.api import Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, DEPLOYMENT, SERVICE, kind_for
from coalmine.kube.permissions import CLUSTER_ROLE, granted

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    eventually,
    failing_check,
    start_controller,
)
from .test_rbac_real import exercised
from .test_router_releases import EXPECTED_SPLITS, SplitWatch, failing_rollout_check, release

pytestmark = pytest.mark.e2e

NODE_V1BETA2 = kind_for("appmesh.k8s.aws/v1beta2", "VirtualNode")
ROUTER_V1BETA2 = kind_for("appmesh.k8s.aws/v1beta2", "VirtualRouter")
SERVICE_V1BETA1 = kind_for("appmesh.k8s.aws/v1beta1", "VirtualService")
NODE_V1BETA1 = kind_for("appmesh.k8s.aws/v1beta1", "VirtualNode")
APP_MESH_RESOURCES = ("virtualnodes", "virtualrouters", "virtualservices")


# --- routes first -------------------------------------------------------------------------------


def deployment(ns: str, version: str) -> dict[str, Any]:
    labels = {"app": "podinfo"}
    container = {
        "name": "podinfo",
        "image": f"ghcr.io/stefanprodan/podinfo:{version}",
        "ports": [{"name": "http", "containerPort": 9898}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def deployment_canary(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": "appmesh:v1beta2",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898, "timeout": "15s", "retries": {"attempts": 2}},
            "analysis": {
                "interval": "1s",
                "threshold": 2,
                "stepWeight": 20,
                "maxWeight": 50,
                "metrics": [],
            },
        },
    }


class Creations:
    """The resourceVersion each object had when it was created (its ADDED event): the API
    server's order of creation (one etcd revision sequence on both tiers)."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], int] = {}

    def __call__(self, event_type: str, obj: Object) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        if event_type == "ADDED" and key not in self.versions:
            self.versions[key] = int(obj["metadata"]["resourceVersion"])


async def test_app_mesh_virtual_nodes_exist_before_the_primary_pods(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    created = Creations()
    async with AsyncExitStack() as stack:
        api, canaries = await stack.enter_async_context(cluster_client(cluster.kubeconfig_path))
        routes = SplitWatch()
        for kind, callback in ((NODE_V1BETA2, created), (DEPLOYMENT, created)):
            informer = Informer(api, kind, ns)
            informer.subscribe(callback)
            informer.start()
            stack.push_async_callback(informer.stop)
            await informer.wait_synced()
        router_informer = Informer(api, ROUTER_V1BETA2, ns)
        router_informer.subscribe(routes)
        router_informer.start()
        stack.push_async_callback(router_informer.stop)
        await router_informer.wait_synced()
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)

        await api.create(DEPLOYMENT, deployment(ns, "6.0.0"))
        await api.create(CANARY, deployment_canary(ns))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)

        node = created.versions[("VirtualNode", "podinfo-primary")]
        assert node < created.versions[("Deployment", "podinfo-primary")]
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        stored = await api.get(NODE_V1BETA2, "podinfo-primary", ns)
        assert stored["spec"]["podSelector"] == {"matchLabels": primary["spec"]["selector"]}
        assert stored["spec"]["listeners"][0]["timeout"] == {
            "http": {"perRequest": {"unit": "ms", "value": 15000}}
        }

        await api.patch(DEPLOYMENT, "podinfo", {"spec": deployment(ns, "6.0.1")["spec"]}, ns)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
    assert routes.splits == EXPECTED_SPLITS, controller.logs()[-3000:]
    if cluster.real:  # least privilege: what the App Mesh router asked of kube-apiserver
        made = {(r, v) for g, r, v in exercised(cluster) if g == "appmesh.k8s.aws"}
        grants = granted(CLUSTER_ROLE)
        assert all(v in grants[("appmesh.k8s.aws", r)] for r, v in made), made
        used = {(r, v) for r in APP_MESH_RESOURCES for v in ("list", "watch", "create")}
        assert used | {("virtualrouters", "update")} <= made, made


# --- v1beta1 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v1beta1_realcluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RealClusterProcess, Path]]:
    """A real control plane serving the App Mesh v1beta1 kinds (our schema) for this module."""
    require_go()
    workdir = tmp_path_factory.mktemp("realcluster-appmesh-v1beta1")
    cluster = start_realcluster(workdir, router_crds=APPMESH_V1BETA1_ROUTER_CRDS)
    try:
        yield cluster, controller_kubeconfig(cluster, workdir / "controller.kubeconfig")
    finally:
        stop_realcluster(cluster)


@pytest.fixture(params=tiers())
def v1beta1_cluster(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    if request.param == "devcluster":
        with devcluster_for_test(router_crds=APPMESH_V1BETA1_ROUTER_CRDS) as server:
            yield server
        return
    real, sa_kubeconfig = request.getfixturevalue("v1beta1_realcluster")
    test_cluster = namespace_for_test(real, sa_kubeconfig)
    yield test_cluster
    denied = test_cluster.denied_requests()
    assert not denied, f"the controller's RBAC refused: {denied}"


@pytest.fixture
def v1beta1_controller(v1beta1_cluster: TestCluster, tmp_path: Path) -> Iterator[ControllerProcess]:
    process = start_controller(v1beta1_cluster, tmp_path, "--mesh-name=global")
    yield process
    if process.process.poll() is None:
        process.terminate()
    print(f"--- controller log (last 6000 characters)\n{process.logs()[-6000:]}")


async def test_a_service_target_is_released_through_app_mesh_v1beta1(
    v1beta1_cluster: TestCluster, v1beta1_controller: ControllerProcess
) -> None:
    ns = v1beta1_cluster.namespace
    async with cluster_client(v1beta1_cluster.kubeconfig_path) as (api, canaries):
        routes = await release(
            api, canaries, "appmesh", ns, kind=SERVICE_V1BETA1, routing_name=f"podinfo.{ns}"
        )
        for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
            node = await api.get(NODE_V1BETA1, name, ns)
            assert node["spec"]["meshName"] == "global"  # the controller's --mesh-name
    assert routes.splits == EXPECTED_SPLITS, v1beta1_controller.logs()[-3000:]


async def test_a_failing_check_rolls_app_mesh_v1beta1_back_to_the_primary(
    v1beta1_cluster: TestCluster, v1beta1_controller: ControllerProcess
) -> None:
    ns = v1beta1_cluster.namespace
    async with (
        cluster_client(v1beta1_cluster.kubeconfig_path) as (api, canaries),
        failing_check() as url,
    ):
        routes = await release(
            api,
            canaries,
            "appmesh",
            ns,
            kind=SERVICE_V1BETA1,
            outcome="Failed",
            routing_name=f"podinfo.{ns}",
            mesh_name="own-mesh",
            webhooks=failing_rollout_check(url),
        )
        stored = await api.get(SERVICE_V1BETA1, f"podinfo.{ns}", ns)
        assert stored["spec"]["meshName"] == "own-mesh"  # service.meshName wins over the flag
    assert routes.splits[0] == (100, 0), routes.splits
    assert routes.splits[-1] == (100, 0), routes.splits
