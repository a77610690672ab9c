"""A running controller (in-process) on either tier, a Service-target canary, steerable webhooks."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from coalmine.cli.status import console_for
from coalmine.controller.runtime import Controller
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.kinds import CANARY, EVENT, SERVICE
from inprocess import admin_api, controller_on
from polling import eventually
from tiered import ApiServer


@pytest.fixture
def ns(apiserver: ApiServer) -> str:
    return apiserver.namespace


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The user's client (admin)."""
    async with admin_api(apiserver) as client:
        yield client


@pytest.fixture
async def controller(apiserver: ApiServer, api: KubeApi) -> AsyncIterator[Controller]:
    async with controller_on(apiserver, interval=0.2) as running:
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


def service(ns: str, name: str, colour: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": f"{name}-{colour}"}, "ports": [{"port": 80}]},
    }


def canary(ns: str, name: str, **analysis: Any) -> Object:
    body: dict[str, Any] = {"interval": "200ms", "threshold": 1, "iterations": 2}
    body.update(analysis)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": body,
        },
    }


async def get_canary(ns: str, api: KubeApi, name: str = "podinfo") -> Object:
    return await api.get(CANARY, name, ns)


async def phase_of(ns: str, api: KubeApi, name: str = "podinfo") -> str:
    return str(((await get_canary(ns, api, name)).get("status") or {}).get("phase") or "")


async def wait_phase(ns: str, api: KubeApi, *phases: str, name: str = "podinfo") -> None:
    async def reached() -> bool:
        return await phase_of(ns, api, name) in phases

    await eventually(reached, what=f"{name} in {phases}")


async def primary_colour(ns: str, api: KubeApi, name: str = "podinfo") -> str:
    primary = await api.get(SERVICE, f"{name}-primary", ns)
    return str(primary["spec"]["selector"]["app"]).rsplit("-", 1)[1]


async def messages(ns: str, api: KubeApi, name: str = "podinfo") -> list[str]:
    events = (await api.list(EVENT, ns)).items
    return [e["message"] for e in events if e["involvedObject"]["name"] == name]


async def release(ns: str, api: KubeApi, name: str = "podinfo", colour: str = "green") -> None:
    """Wait for initialisation, then change the Service: a new revision."""
    await wait_phase(ns, api, "Initialized", "Succeeded", "Failed", name=name)
    await api.patch(SERVICE, name, {"spec": {"selector": {"app": f"{name}-{colour}"}}}, ns)


async def create(ns: str, api: KubeApi, name: str = "podinfo", **analysis: Any) -> None:
    await api.create(SERVICE, service(ns, name, "blue"))
    await api.create(CANARY, canary(ns, name, **analysis))


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


def in_namespace(kubeconfig: Path, ns: str, directory: Path) -> Path:
    """A copy of `kubeconfig` whose current context works in `ns`."""
    config = yaml.safe_load(kubeconfig.read_text())
    for context in config["contexts"]:
        if context["name"] == config["current-context"]:
            context["context"]["namespace"] = ns
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def user_kubeconfig(apiserver: ApiServer, ns: str, tmp_path: Path) -> Path:
    """The admin kubeconfig with the test's namespace as its context's: the CLI as a user runs it."""
    return in_namespace(apiserver.kubeconfig_path, ns, tmp_path)
