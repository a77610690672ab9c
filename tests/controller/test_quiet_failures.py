"""A failing API server costs a line per canary, not a traceback per cycle.

devcluster refuses every Canary status write (fault injection) while five canaries analyse; the
controller's log lines are counted as its formatter writes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from coalmine.controller.logs import PlainFormatter
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, SERVICE
from inprocess import cluster_api, running_controller

CANARIES = 5
OUTAGE_SECONDS = 4.0


class Lines(logging.Handler):
    """The controller's log as text lines, formatted like `coalmine controller` writes them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(PlainFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.extend(self.format(record).splitlines())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("coalmine")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
    }


def canary(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {"interval": "1s", "threshold": 5, "iterations": 100},
        },
    }


async def status_of(api: KubeApi, name: str) -> dict[str, Any]:
    return dict((await api.get(CANARY, name, "default")).get("status") or {})


async def wait_all(api: KubeApi, names: list[str], phase: str) -> None:
    async with asyncio.timeout(30):
        for name in names:
            while (await status_of(api, name)).get("phase") != phase:
                await asyncio.sleep(0.05)


async def test_failed_status_writes_log_one_line_per_canary_without_tracebacks(
    devcluster: DevCluster, api: KubeApi, lines: Lines
) -> None:
    names = [f"quiet-{i}" for i in range(CANARIES)]
    for name in names:
        await api.create(SERVICE, service(name, "blue"))
        await api.create(CANARY, canary(name))
    async with running_controller(devcluster, interval=0.2):
        await wait_all(api, names, "Initialized")
        for name in names:
            await api.patch(SERVICE, name, {"spec": {"selector": {"app": "green"}}}, "default")
        await wait_all(api, names, "Progressing")
        devcluster.faults.inject_error(
            code=500, message="etcd is gone", verb="patch", resource="canaries/status", count=None
        )
        start = len(lines.lines)
        await asyncio.sleep(OUTAGE_SECONDS)
        during = lines.lines[start:]
        devcluster.faults.clear()
        iterations = (await status_of(api, names[0])).get("iterations") or 0
        async with asyncio.timeout(20):
            while ((await status_of(api, names[0])).get("iterations") or 0) <= iterations:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)

    text = "\n".join(during)
    assert "Traceback" not in text
    failures = [line for line in during if "failed" in line]
    problems = [line for line in during if " WARNING " in line or " ERROR " in line]
    # About OUTAGE_SECONDS failed cycles per canary: one line each, repeats folded.
    assert len(failures) <= CANARIES, text
    assert len(problems) <= CANARIES, text
    for name in names:
        mine = [line for line in failures if f"canary {name}.default failed" in line]
        assert len(mine) == 1, text
        assert f"patch canaries/status {name}.default" in mine[0]
        assert "KubeApiError: etcd is gone" in mine[0]
    recovered = "\n".join(lines.lines)
    assert "quiet-0.default works again" in recovered


async def test_an_api_server_refusing_everything_costs_a_line_per_canary_and_watch(
    devcluster: DevCluster, api: KubeApi, lines: Lines
) -> None:
    names = [f"outage-{i}" for i in range(CANARIES)]
    for name in names:
        await api.create(SERVICE, service(name, "blue"))
        await api.create(CANARY, canary(name))
    async with running_controller(devcluster, interval=0.2):
        await wait_all(api, names, "Initialized")
        for name in names:
            await api.patch(SERVICE, name, {"spec": {"selector": {"app": "green"}}}, "default")
        await wait_all(api, names, "Progressing")
        devcluster.faults.inject_error(
            code=503, reason="ServiceUnavailable", message="storage is down", count=None
        )
        devcluster.faults.drop_watches()  # every informer has to come back through the outage
        start = len(lines.lines)
        await asyncio.sleep(OUTAGE_SECONDS)
        during = lines.lines[start:]
        devcluster.faults.clear()
        await asyncio.sleep(2)

    text = "\n".join(during)
    assert "Traceback" not in text
    problems = [line for line in during if " WARNING " in line or " ERROR " in line]
    # Each canary's cycle, each watched kind and each canary's events: one line each at most.
    assert len(problems) <= 3 * CANARIES + 8, text
