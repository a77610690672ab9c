"""A running controller (in-process) on devcluster, a Service-target canary, steerable webhooks."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from coalmine.cli.status import console_for
from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.kinds import CANARY, EVENT, SERVICE
from inprocess import cluster_api, running_controller
from polling import eventually


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


@pytest.fixture
async def controller(devcluster: DevCluster, api: KubeApi) -> AsyncIterator[Controller]:
    async with running_controller(devcluster, interval=0.2) as running:
        yield running


@dataclass
class Hooks:
    """A webhook server: each hook answers 200 unless its name is in `refusing`."""

    url: str = ""
    refusing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def hook(self, name: str, hook_type: str) -> dict[str, Any]:
        return {"name": name, "type": hook_type, "url": f"{self.url}/{name}", "timeout": "5s"}


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    state = Hooks()

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state.calls.append(name)
        if name in state.refusing:
            return web.Response(status=403, text=f"{name} refuses")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def service(name: str, colour: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": f"{name}-{colour}"}, "ports": [{"port": 80}]},
    }


def canary(name: str, **analysis: Any) -> Object:
    body: dict[str, Any] = {"interval": "200ms", "threshold": 1, "iterations": 2}
    body.update(analysis)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": body,
        },
    }


async def get_canary(api: KubeApi, name: str = "podinfo") -> Object:
    return await api.get(CANARY, name, "default")


async def phase_of(api: KubeApi, name: str = "podinfo") -> str:
    return str(((await get_canary(api, name)).get("status") or {}).get("phase") or "")


async def wait_phase(api: KubeApi, *phases: str, name: str = "podinfo") -> None:
    async def reached() -> bool:
        return await phase_of(api, name) in phases

    await eventually(reached, what=f"{name} in {phases}")


async def primary_colour(api: KubeApi, name: str = "podinfo") -> str:
    primary = await api.get(SERVICE, f"{name}-primary", "default")
    return str(primary["spec"]["selector"]["app"]).rsplit("-", 1)[1]


async def messages(api: KubeApi, name: str = "podinfo") -> list[str]:
    events = (await api.list(EVENT, "default")).items
    return [e["message"] for e in events if e["involvedObject"]["name"] == name]


async def release(api: KubeApi, name: str = "podinfo", colour: str = "green") -> None:
    """Wait for initialisation, then change the Service: a new revision."""
    await wait_phase(api, "Initialized", "Succeeded", "Failed", name=name)
    await api.patch(SERVICE, name, {"spec": {"selector": {"app": f"{name}-{colour}"}}}, "default")


async def create(api: KubeApi, name: str = "podinfo", **analysis: Any) -> None:
    await api.create(SERVICE, service(name, "blue"))
    await api.create(CANARY, canary(name, **analysis))


@dataclass
class Output:
    buffer: io.StringIO = field(default_factory=io.StringIO)

    def console(self) -> Any:
        return console_for(self.buffer)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def output() -> Output:
    return Output()
