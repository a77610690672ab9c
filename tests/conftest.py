"""Shared test set-up. Import `require_binary` from `binaries` (unique name), not from here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from binaries import INSTALL_HINTS, require_binary
from clusters import (
    OPTIONAL_CRDS,
    RealClusterProcess,
    controller_kubeconfig,
    require_go,
    start_realcluster,
    stop_realcluster,
)
from tiered import apiserver, parametrize

__all__ = ["INSTALL_HINTS", "apiserver", "require_binary"]

pytest_plugins = ["coalmine.devcluster.testing"]


@pytest.fixture(scope="session")
def realcluster_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RealClusterProcess, Path]]:
    """One real control plane for the session (it takes tens of seconds to start), with the
    controller's ServiceAccount kubeconfig; tests keep apart by namespace."""
    require_go()
    workdir = tmp_path_factory.mktemp("realcluster")
    cluster = start_realcluster(workdir, *OPTIONAL_CRDS)
    try:
        yield cluster, controller_kubeconfig(cluster, workdir / "controller.kubeconfig")
    finally:
        stop_realcluster(cluster)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `apiserver` runs on each tier (see tiered.py)."""
    parametrize(metafunc)
