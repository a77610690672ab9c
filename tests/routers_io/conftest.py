"""devcluster with the official router CRDs, the KubeApi/ClusterContext of targets_io, and a
stand-in Gateway controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.context import ClusterContext
from targets_io.conftest import api, ctx

from .gateway import AcceptingGateway, accepting_gateway
from .routing import router_crds

__all__ = ["api", "ctx", "gateway", "routing_crds"]


@pytest.fixture(autouse=True)
def routing_crds(devcluster: DevCluster) -> None:
    """Every router's CRDs, served and enforced (validation, pruning) by the API server."""
    devcluster.apply_manifests(router_crds())


@pytest.fixture
async def gateway(ctx: ClusterContext) -> AsyncIterator[AcceptingGateway]:
    """The stand-in Gateway controller accepting every HTTPRoute (see gateway.py)."""
    async with accepting_gateway(ctx.api) as stand_in:
        yield stand_in
