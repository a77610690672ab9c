"""The start-up CRD check: a missing CRD stops the controller, a server still warming up does not.

kube-apiserver answers 503 "storage is (re)initializing" for a CRD created moments ago; a
controller started next to the CRDs (a Helm install) must wait for it instead of exiting.
"""

from __future__ import annotations

import pytest

from coalmine.controller.runtime import StartupError, check_crds
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, load_config
from inprocess import cluster_api

pytestmark = pytest.mark.asyncio


async def test_a_crd_answering_503_for_a_while_is_asked_again_until_it_is_served(
    devcluster: DevCluster,
) -> None:
    async with cluster_api(devcluster) as api:
        devcluster.faults.inject_error(
            503, "ServiceUnavailable", "storage is (re)initializing",
            verb="list", resource="metrictemplates", count=2,
        )  # fmt: skip
        await check_crds(api, None, patience=30)
        assert devcluster.faults.rules == []


async def test_a_crd_that_stays_unavailable_stops_the_controller_after_its_patience(
    devcluster: DevCluster,
) -> None:
    async with cluster_api(devcluster) as api:
        devcluster.faults.inject_error(
            503, "ServiceUnavailable", "storage is (re)initializing",
            verb="list", resource="alertproviders", count=None,
        )  # fmt: skip
        with pytest.raises(StartupError, match="AlertProvider CRD is not served"):
            await check_crds(api, None, patience=1.5)


async def test_a_missing_crd_stops_the_controller_at_once(devcluster: DevCluster) -> None:
    """A devcluster without coalmine's CRDs: the list is a 404, which no wait can fix."""
    bare = KubeApi(load_config(str(devcluster.kubeconfig_path)))
    try:
        with pytest.raises(StartupError, match="Canary CRD is not registered"):
            await check_crds(bare, None, patience=30)
    finally:
        await bare.close()
