"""A KubeApi talking to the in-process devcluster through the real lightkube client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, load_config


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    client = KubeApi(load_config(str(devcluster.kubeconfig_path)))
    yield client
    await client.close()
