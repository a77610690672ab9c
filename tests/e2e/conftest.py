"""Fixtures of the end-to-end runs: the `cluster` (devcluster, and the real control plane) and
`coalmine controller` as a process on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters import TestCluster, devcluster_for_test, namespace_for_test, tiers_for

from .harness import ControllerProcess, start_controller


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes `cluster` runs on the tiers `clusters.tiers_for` gives it."""
    if "cluster" not in metafunc.fixturenames:
        return
    chosen = tiers_for(metafunc.definition)
    metafunc.parametrize("cluster", chosen, indirect=True)


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    """The API server of one test: devcluster, or a fresh namespace of the real control plane
    where, after the test, no request of the controller may have been denied."""
    if request.param == "devcluster":
        with devcluster_for_test() as server:
            yield server
        return
    real, sa_kubeconfig = request.getfixturevalue("realcluster_session")
    test_cluster = namespace_for_test(real, sa_kubeconfig)
    yield test_cluster
    denied = test_cluster.denied_requests()
    assert not denied, f"the controller's RBAC refused: {denied}"


@pytest.fixture
def controller(cluster: TestCluster, tmp_path: Path) -> Iterator[ControllerProcess]:
    process = start_controller(cluster, tmp_path)
    yield process
    if process.process.poll() is None:
        process.terminate()
    # pytest shows this only when the test failed: the controller's side of the story.
    print(f"--- controller log (last 6000 characters)\n{process.logs()[-6000:]}")
