"""Fixtures of the target/router I/O tests, on both tiers (see tests/tiered.py): the test's
namespace, a KubeApi and a ClusterContext as the controller has them, and the stored Canary that
owns the copies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.controller.runtime import ON_DEMAND_KINDS
from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Caches
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CANARY
from tiered import ApiServer

from .io_helpers import OWNER_UIDS, USER_APIS


@pytest.fixture
def ns(apiserver: ApiServer) -> str:
    return apiserver.namespace


@pytest.fixture
async def admin_api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """A client of the cluster's admin, for what stands in for other parties (a Gateway
    controller, the user: `write` and `patch` use it)."""
    client = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    USER_APIS[apiserver.namespace] = client
    yield client
    del USER_APIS[apiserver.namespace]
    await client.close()


@pytest.fixture
async def owner(admin_api: KubeApi, ns: str) -> AsyncIterator[str]:
    """The Canary `podinfo` in the API, so the copies' ownerReferences point at a real object
    (`make_canary` uses its uid)."""
    stored = await admin_api.create(
        CANARY,
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 5, "iterations": 2},
            },
        },
    )
    OWNER_UIDS[ns] = stored["metadata"]["uid"]
    yield OWNER_UIDS[ns]
    del OWNER_UIDS[ns]


@pytest.fixture
async def api(apiserver: ApiServer, owner: str) -> AsyncIterator[KubeApi]:
    """The client as the controller has it (the ServiceAccount on the real tier)."""
    client = KubeApi(load_config(str(apiserver.controller_kubeconfig)))
    yield client
    await client.close()


@pytest.fixture
async def ctx(apiserver: ApiServer, api: KubeApi) -> AsyncIterator[ClusterContext]:
    """Caches as `coalmine controller` builds them on this tier (`--namespace` on the real one;
    Secrets and ConfigMaps read on demand)."""
    settings = apiserver.controller_settings()
    caches = Caches(api, settings.namespace or None, on_demand=ON_DEMAND_KINDS)
    yield ClusterContext(api=api, caches=caches)
    await caches.stop()
