"""Fixtures of the target/router I/O tests: a KubeApi and a ClusterContext on devcluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Caches
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import NAMESPACE

from .io_helpers import NS


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    client = KubeApi(load_config(str(devcluster.kubeconfig_path)))
    await client.create(
        NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    yield client
    await client.close()


@pytest.fixture
async def ctx(api: KubeApi) -> AsyncIterator[ClusterContext]:
    caches = Caches(api)
    yield ClusterContext(api=api, caches=caches)
    await caches.stop()
