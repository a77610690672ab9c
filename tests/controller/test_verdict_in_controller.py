"""The controller acts on the one verdict `coalmine check` reports (`routers.verdict.judge`):
a canary check passes runs, one check fails is refused with check's own words, and one check
only warns about (a mirror the router cannot make, as Flagger ran it) runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from coalmine.cli.check import Options as CheckOptions
from coalmine.cli.check import check_stream
from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, INGRESS, SERVICE
from inprocess import cluster_api, running_controller


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


@pytest.fixture
async def controller(devcluster: DevCluster, api: KubeApi) -> AsyncIterator[Controller]:
    async with running_controller(devcluster, interval=1.0) as running:
        yield running


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": f"{name}-blue"}, "ports": [{"port": 80}]},
    }


def ingress(name: str) -> dict[str, Any]:
    backend = {"service": {"name": name, "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": f"{name}.example.com", "http": {"paths": [path]}}]},
    }


def canary(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {"interval": "1s", "threshold": 1, "iterations": 1},
            **spec,
        },
    }


def check(doc: dict[str, Any]) -> dict[str, list[str]]:
    """`coalmine check` with the controller's flags (mesh provider kubernetes, as in-process)."""
    result = check_stream(yaml.safe_dump(doc), "-", CheckOptions(mesh_provider="kubernetes"))
    found: dict[str, list[str]] = {"error": [], "warning": []}
    for finding in result.findings:
        found[finding.severity].append(f"{finding.path}: {finding.message}")
    return found


async def settled(api: KubeApi, name: str) -> dict[str, Any]:
    """The canary once the controller refused it or initialised it."""
    async with asyncio.timeout(30):
        while True:
            obj = await api.get(CANARY, name, "default")
            status = obj.get("status") or {}
            conditions = status.get("conditions") or []
            if status.get("phase") == "Initialized" or any(
                c.get("type") == "Valid" for c in conditions
            ):
                return obj
            await asyncio.sleep(0.05)


def valid_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Valid"), None)


async def test_the_controller_runs_what_check_passes_and_refuses_what_check_fails(
    api: KubeApi, controller: Controller
) -> None:
    runs = canary("plain")
    # An A/B run on a router without header routing.
    ab = {
        "interval": "1s",
        "threshold": 1,
        "iterations": 1,
        "match": [{"headers": {"x": {"exact": "1"}}}],
    }
    refused = canary("meshed", provider="kuma", analysis=ab)
    warned = canary(
        "edge",
        provider="nginx",
        ingressRef={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "edge"},
    )
    warned["spec"]["analysis"]["mirror"] = True
    for name in ("plain", "meshed", "edge"):
        await api.create(SERVICE, service(name))
    await api.create(INGRESS, ingress("edge"))
    for doc in (runs, refused, warned):
        await api.create(CANARY, doc)

    assert check(runs)["error"] == []
    assert (await settled(api, "plain"))["status"]["phase"] == "Initialized"

    errors = check(refused)["error"]
    assert errors == [
        "spec.analysis.match: the kuma router cannot route by header or cookie; an A/B run "
        "would send all traffic to the canary"
    ]
    found = valid_condition(await settled(api, "meshed"))
    assert found is not None
    assert found["reason"] == "UnsupportedRouting"
    assert found["message"] == "; ".join(errors)

    verdict = check(warned)
    assert verdict["error"] == []
    assert any(
        w.startswith("spec.analysis.mirror: the nginx router cannot mirror")
        for w in verdict["warning"]
    )
    obj = await settled(api, "edge")
    assert valid_condition(obj) is None
    assert obj["status"]["phase"] == "Initialized"
