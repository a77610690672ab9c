"""`--kubeconfig-service-mesh`: the mesh cluster's client, caches, probe and metrics, for the life
of the controller.

The controller starts whether or not the mesh cluster answers: Canaries, targets and their copies
live in the main cluster and keep being reconciled. The probe keeps asking the mesh cluster; a
cycle that needs its routes while it does not answer ends with a Warning event naming it and
leaves the canary's phase and weight alone (`kube.meshcluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from coalmine.controller.metrics import ControllerMetrics
from coalmine.controller.settings import Settings
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Caches
from coalmine.kube.meshcluster import MeshCluster
from coalmine.kube.shards import FencedKubeApi

log = logging.getLogger(__name__)


def wants_mesh_cluster(settings: Settings) -> bool:
    """A second client only when the flag names another kubeconfig (as Flagger, an empty flag
    means `--kubeconfig`)."""
    path = settings.kubeconfig_service_mesh
    return bool(path) and path != settings.kubeconfig


@contextlib.asynccontextmanager
async def mesh_cluster(
    settings: Settings, main: KubeApi, metrics: ControllerMetrics
) -> AsyncIterator[MeshCluster | None]:
    """The mesh cluster (None without the flag), probed in the background until exit.

    Its client has its own request budget (`--kubeconfig-qps`/`--kubeconfig-burst` apply to each
    client, as Flagger gives both configs the same QPS and burst) and its own watch caches, scoped
    by `--namespace` like the main ones. `--master`, as in Flagger, overrides the server of both
    kubeconfigs; objects in a mesh cluster on another host get no owner references.
    """
    if not wants_mesh_cluster(settings):
        yield None
        return
    path = settings.kubeconfig_service_mesh
    # Sharded, the mesh cluster's writes are fenced like the main cluster's.
    client = FencedKubeApi if isinstance(main, FencedKubeApi) else KubeApi
    api = client(
        load_config(path, None, settings.master or None),
        qps=settings.kubeconfig_qps,
        burst=settings.kubeconfig_burst,
    )
    cluster = MeshCluster(
        api,
        Caches(api, settings.namespace or None),
        owner_references=api.server == main.server,
        kubeconfig=path,
    )
    metrics.watch_mesh_cluster(cluster)
    if await cluster.probe_once():
        log.info("routing objects are read and written in the %s", cluster.description)
    else:
        log.warning(
            "the %s does not answer (%s); starting anyway and asking again",
            cluster.description,
            cluster.last_error,
        )
    probe = asyncio.create_task(cluster.probe(), name="mesh cluster probe")
    try:
        yield cluster
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        await cluster.caches.stop()
        await api.close()
