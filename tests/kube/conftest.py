"""A KubeApi through the real lightkube client, on both tiers (see tests/tiered.py): the cluster
admin's, for the client library's own behaviour (informers, writes); events and leases use the
controller's ServiceAccount (test_events_and_lease.py), so its RBAC is checked there."""

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
    client = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    yield client
    await client.close()


@pytest.fixture
async def admin(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The cluster admin's client: what a test reads to check (the ServiceAccount writes events
    but does not read them)."""
    client = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    yield client
    await client.close()
