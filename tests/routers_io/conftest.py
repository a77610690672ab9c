"""The KubeApi/ClusterContext of targets_io (both tiers serve every router's official CRDs, see
tests/tiered.py), and a stand-in Gateway controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coalmine.kube.context import ClusterContext
from targets_io.conftest import api, ctx, ns, owner

from .gateway import AcceptingGateway, accepting_gateway

__all__ = ["api", "ctx", "gateway", "ns", "owner"]


@pytest.fixture
async def gateway(ctx: ClusterContext) -> AsyncIterator[AcceptingGateway]:
    """The stand-in Gateway controller accepting every HTTPRoute (see gateway.py)."""
    async with accepting_gateway(ctx.api) as stand_in:
        yield stand_in
