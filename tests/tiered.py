"""The `apiserver` fixture: the API server of a test that drives coalmine in-process through the
Kubernetes API (tests/targets_io, routers_io, verbs, controller), on both tiers.

On devcluster it is the in-process `DevCluster` (its test hooks, faults and simulator switches at
hand as `apiserver.devcluster`), working in `default` with an admin controller. On the real control
plane it is a fresh namespace of the session's `scripts/realcluster`, and the code under test talks
to it as the `coalmine` ServiceAccount (`controller_kubeconfig`, `controller_settings()` watching
only that namespace); at teardown no request of that ServiceAccount may have been denied. Both
tiers serve coalmine's CRDs and `clusters.ROUTER_CRDS`. A test that needs a devcluster hook is
marked `devcluster_only(reason)` and runs on devcluster only.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from typing import Any

import pytest

from clusters import (
    OPTIONAL_CRDS,
    ROUTER_CRDS,
    TestCluster,
    coalmine_crds,
    namespace_for_test,
    tiers_for,
)
from coalmine.controller.settings import Settings
from coalmine.devcluster.cluster import DevCluster, load_manifests


@dataclass
class ApiServer(TestCluster):
    """A `TestCluster`, plus the in-process devcluster when that is the tier."""

    __test__ = False

    devcluster: DevCluster | None = None

    @property
    def hooks(self) -> DevCluster:
        """devcluster's own test hooks (faults, simulator, `apply_manifests`)."""
        if self.devcluster is None:
            raise AssertionError(
                "a devcluster hook on the real tier: mark the test devcluster_only"
            )
        return self.devcluster

    def serve_optional_crds(self) -> None:
        """`clusters.OPTIONAL_CRDS`: loaded now on devcluster, served all along on the real tier."""
        if self.devcluster is not None:
            for path in OPTIONAL_CRDS:
                self.devcluster.apply_manifests(path.read_text())

    def controller_settings(self, **overrides: Any) -> Settings:
        """`coalmine controller` as it runs on this tier: as the ServiceAccount, watching only
        the test's namespace on the real control plane."""
        values: dict[str, Any] = {
            "kubeconfig": str(self.controller_kubeconfig),
            "listen_address": "127.0.0.1:0",
            "mesh_provider": "kubernetes",
            "metrics_server": "http://127.0.0.1:9",
        }
        if self.real:
            values["namespace"] = self.namespace
        values.update(overrides)
        return Settings(**values)


@functools.cache
def _crd_documents() -> tuple[dict[str, Any], ...]:
    paths = [*coalmine_crds(), *ROUTER_CRDS]
    return tuple(doc for path in paths for doc in load_manifests(path.read_text()))


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs both tiers serve (parsed once per session)."""
    return copy.deepcopy(list(_crd_documents()))


def parametrize(metafunc: pytest.Metafunc) -> None:
    if "apiserver" in metafunc.fixturenames:
        metafunc.parametrize("apiserver", tiers_for(metafunc.definition), indirect=True)


@pytest.fixture
async def apiserver(request: pytest.FixtureRequest) -> AsyncIterator[ApiServer]:
    if request.param == "devcluster":
        async with DevCluster(port=0, rollout_delay=0.05, bookmark_interval=1.0) as dev:
            dev.apply_manifests(crd_documents())
            path = dev.kubeconfig_path
            yield ApiServer("devcluster", dev.url, path, path, devcluster=dev)
        return
    real, sa_kubeconfig = request.getfixturevalue("realcluster_session")
    test_cluster = namespace_for_test(real, sa_kubeconfig)
    server = ApiServer(**{f.name: getattr(test_cluster, f.name) for f in fields(test_cluster)})
    yield server
    denied = server.denied_requests()
    assert not denied, f"the controller's RBAC refused: {denied}"
