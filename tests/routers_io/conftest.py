"""devcluster with the official router CRDs, and the KubeApi/ClusterContext of targets_io."""

from __future__ import annotations

import pytest

from coalmine.devcluster.cluster import DevCluster
from targets_io.conftest import api, ctx

from .routing import router_crds

__all__ = ["api", "ctx", "routing_crds"]


@pytest.fixture(autouse=True)
def routing_crds(devcluster: DevCluster) -> None:
    """Every router's CRDs, served and enforced (validation, pruning) by the API server."""
    devcluster.apply_manifests(router_crds())
