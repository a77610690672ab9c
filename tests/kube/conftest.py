"""A KubeApi as the controller has it, through the real lightkube client, on both tiers (see
tests/tiered.py): the ServiceAccount on the real control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.kube.api import KubeApi, load_config
from tiered import ApiServer


@pytest.fixture
def ns(apiserver: ApiServer) -> str:
    return apiserver.namespace


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    client = KubeApi(load_config(str(apiserver.controller_kubeconfig)))
    yield client
    await client.close()


@pytest.fixture
async def admin(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The cluster admin's client: what a test reads to check (the ServiceAccount writes events
    but does not read them)."""
    client = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    yield client
    await client.close()
