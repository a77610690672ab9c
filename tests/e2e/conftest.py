"""Fixtures of the end-to-end runs: `coalmine devcluster` (our CRDs loaded) and `coalmine controller`
as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coalmine.devcluster.testing import DevClusterProcess

from .harness import ControllerProcess, devcluster_with_crds, start_controller


@pytest.fixture
def cluster() -> Iterator[DevClusterProcess]:
    with devcluster_with_crds() as server:
        yield server


@pytest.fixture
def controller(cluster: DevClusterProcess, tmp_path: Path) -> Iterator[ControllerProcess]:
    process = start_controller(cluster.kubeconfig_path, tmp_path)
    yield process
    if process.process.poll() is None:
        process.terminate()
