"""The KubeApi/ClusterContext of targets_io (both tiers serve every router's official CRDs, see
tests/tiered.py), and a stand-in Gateway controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.kube.api import KubeApi
from targets_io.conftest import admin_api, api, ctx, ns, owner

from .gateway import AcceptingGateway, accepting_gateway

__all__ = ["admin_api", "api", "ctx", "gateway", "ns", "owner"]


@pytest.fixture
async def gateway(admin_api: KubeApi) -> AsyncIterator[AcceptingGateway]:
    """The stand-in Gateway controller accepting every HTTPRoute (see gateway.py), with a client
    of its own: it writes route status, which coalmine's ServiceAccount may not."""
    async with accepting_gateway(admin_api) as stand_in:
        yield stand_in
