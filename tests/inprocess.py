"""The controller in-process on the `devcluster` fixture, for tests that drive it through the API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coalmine.controller.runtime import Controller
from coalmine.controller.settings import Settings
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, load_config
from tiered import ApiServer

CRD_DIR = Path(__file__).resolve().parents[1] / "deploy" / "crds"


@contextlib.asynccontextmanager
async def cluster_api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    """A client of `devcluster` with coalmine's CRDs loaded."""
    for path in sorted(CRD_DIR.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            devcluster.apply_manifests(path.read_text())
    client = KubeApi(load_config(str(devcluster.kubeconfig_path)))
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running_controller(devcluster: DevCluster, interval: float) -> AsyncIterator[Controller]:
    """`coalmine controller` with the kubernetes provider and `interval` as the shortest cycle;
    stopped like SIGTERM would, and it must exit 0."""
    controller = Controller(
        Settings(
            kubeconfig=str(devcluster.kubeconfig_path),
            listen_address="127.0.0.1:0",
            min_analysis_interval=interval,
            control_loop_interval=interval,
            mesh_provider="kubernetes",
            metrics_server="http://127.0.0.1:9",
        )
    )
    async with _running(controller) as running:
        yield running


@contextlib.asynccontextmanager
async def _running(controller: Controller) -> AsyncIterator[Controller]:
    """Run until ready; stop like SIGTERM would, and it must exit 0."""
    task = asyncio.create_task(controller.run())
    try:
        async with asyncio.timeout(30):
            while not controller.is_ready():
                await asyncio.sleep(0.05)
        yield controller
    finally:
        controller.stop()
        assert await asyncio.wait_for(task, 40) == 0


@contextlib.asynccontextmanager
async def controller_on(
    apiserver: ApiServer, interval: float, **settings: Any
) -> AsyncIterator[Controller]:
    """`running_controller` on either tier: as the ServiceAccount watching the test's namespace
    on the real control plane (see `ApiServer.controller_settings`)."""
    controller = Controller(
        apiserver.controller_settings(
            min_analysis_interval=interval, control_loop_interval=interval, **settings
        )
    )
    async with _running(controller) as running:
        yield running


@contextlib.asynccontextmanager
async def admin_api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """A client of the cluster's admin: the user's side of a test."""
    client = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    try:
        yield client
    finally:
        await client.close()


def service(name: str, app: str, namespace: str = "default") -> dict[str, Any]:
    """A target Service selecting `app=<app>` (a new `app` is a new revision)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
    }


def service_canary(name: str, iterations: int, namespace: str = "default") -> dict[str, Any]:
    """A Canary of the Service `name`, 1 s interval: long analyses for tests that act meanwhile."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {"interval": "1s", "threshold": 5, "iterations": iterations},
        },
    }
