"""End to end: `coalmine devcluster` and `coalmine controller` as processes, manifests applied.

The headline feature: a Canary whose target is a plain Service. Changing the Service (a new
selector, a new externalName) is a new revision, analysed and promoted onto `<svc>-primary`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lightkube.types import PatchType

from clusters import TestCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, DEPLOYMENT, LEASE, SERVICE

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    start_controller,
)

pytestmark = pytest.mark.e2e


def service(
    name: str, ns: str, selector: str | None = None, external: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any]
    if external is not None:
        spec = {"type": "ExternalName", "externalName": external}
    else:
        spec = {"selector": {"app": selector}, "ports": [{"name": "http", "port": 9898}]}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def canary(
    name: str,
    ns: str,
    *,
    threshold: int = 2,
    iterations: int = 2,
    webhooks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "interval": "1s",
        "threshold": threshold,
        "iterations": iterations,
        "metrics": [],
    }
    if webhooks:
        analysis["webhooks"] = webhooks
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 9898},
            "analysis": analysis,
        },
    }


async def start_release(
    api: KubeApi, watch: CanaryWatch, name: str, change: dict[str, Any]
) -> None:
    """Wait for initialization, then change the target Service: a new revision."""
    await eventually(lambda: watch.phase == "Initialized", what=f"{name} Initialized")
    await api.patch(SERVICE, name, {"spec": change}, watch.namespace)


async def test_a_clusterip_service_selector_change_is_released_onto_the_primary(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service("podinfo", ns, selector="podinfo-blue"))
        await api.create(CANARY, canary("podinfo", ns))
        await start_release(api, watch, "podinfo", {"selector": {"app": "podinfo-green"}})
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded")
        assert watch.phases == [
            "Initializing",
            "Initialized",
            "Progressing",
            "Promoting",
            "Finalising",
            "Succeeded",
        ] or watch.phases[-4:] == ["Progressing", "Promoting", "Finalising", "Succeeded"], (
            watch.phases
        )
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        canary_copy = await api.get(SERVICE, "podinfo-canary", ns)
        target = await api.get(SERVICE, "podinfo", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-green"}
        assert canary_copy["spec"]["selector"] == {"app": "podinfo-green"}
        assert (
            len(
                {
                    primary["spec"]["clusterIP"],
                    canary_copy["spec"]["clusterIP"],
                    target["spec"]["clusterIP"],
                }
            )
            == 3
        )
        assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
        messages = await event_messages(api, ns)
        assert f"Initialization done! podinfo.{ns}" in messages
        assert messages.count(f"Copying podinfo.{ns} template spec to podinfo-primary.{ns}") == 1
        assert (
            f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
            in messages
        )


async def test_an_externalname_change_releases_a_new_cluster(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("backend", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service("backend", ns, external="lb.blue.example.com"))
        await api.create(CANARY, canary("backend", ns))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized")
        primary = await api.get(SERVICE, "backend-primary", ns)
        assert primary["spec"]["externalName"] == "lb.blue.example.com"
        assert "clusterIP" not in primary["spec"]
        await api.patch(SERVICE, "backend", {"spec": {"externalName": "lb.green.example.com"}}, ns)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded")
        assert "Progressing" in watch.phases
        assert "Promoting" in watch.phases
        primary = await api.get(SERVICE, "backend-primary", ns)
        assert primary["spec"]["externalName"] == "lb.green.example.com"


@pytest.fixture
async def failing_hook() -> AsyncIterator[str]:
    calls: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(json.loads(await request.text()))
        return web.Response(status=500, text="error rate too high")

    app = web.Application()
    app.router.add_post("/check", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/check"
    await runner.cleanup()


async def test_a_failing_check_rolls_back_and_leaves_the_primary_untouched(
    cluster: TestCluster, controller: ControllerProcess, failing_hook: str
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service("podinfo", ns, selector="podinfo-blue"))
        hooks = [{"name": "acceptance", "type": "rollout", "url": failing_hook, "timeout": "5s"}]
        await api.create(CANARY, canary("podinfo", ns, iterations=5, webhooks=hooks))
        await start_release(api, watch, "podinfo", {"selector": {"app": "podinfo-green"}})
        await eventually(lambda: watch.phase == "Failed", what="Failed")
        assert "Promoting" not in watch.phases
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
        messages = await event_messages(api, ns)
        assert any(
            "advancement external check acceptance failed" in m and "error rate too high" in m
            for m in messages
        )
        assert any(
            m.startswith(
                f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
            )
            for m in messages
        ), messages


async def test_a_controller_killed_mid_analysis_finishes_the_release_after_a_restart(
    cluster: TestCluster, tmp_path: Path
) -> None:
    ns = cluster.namespace
    first = start_controller(cluster, tmp_path)
    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            watch = CanaryWatch("podinfo", ns)
            canaries.subscribe(watch)
            await api.create(SERVICE, service("podinfo", ns, selector="podinfo-blue"))
            await api.create(CANARY, canary("podinfo", ns, iterations=4))
            await start_release(api, watch, "podinfo", {"selector": {"app": "podinfo-green"}})
            await eventually(
                lambda: (
                    watch.phase == "Progressing"
                    and (watch.last["status"].get("iterations") or 0) >= 1
                ),
                what="mid-analysis",
                watch=watch,
            )
            first.kill()
            second = start_controller(cluster, tmp_path)
            try:
                await eventually(lambda: watch.phase == "Succeeded", what="Succeeded after restart")
            finally:
                second.terminate()
            primary = await api.get(SERVICE, "podinfo-primary", ns)
            assert primary["spec"]["selector"] == {"app": "podinfo-green"}
            messages = await event_messages(api, ns)
            assert (
                messages.count(f"Copying podinfo.{ns} template spec to podinfo-primary.{ns}") == 1
            )
            assert messages.count(f"Initialization done! podinfo.{ns}") == 1
    finally:
        if first.process.poll() is None:
            first.kill()


async def test_with_leader_election_killing_the_leader_hands_over_and_the_run_completes_once(
    cluster: TestCluster, tmp_path: Path
) -> None:
    ns = cluster.namespace
    election = (
        "--enable-leader-election",
        f"--leader-election-namespace={ns}",
        "--leader-election-lease=3s",
        "--leader-election-renew-deadline=2s",
        "--leader-election-retry=500ms",
    )
    replicas = [start_controller(cluster, tmp_path, *election) for _ in range(2)]
    try:
        async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
            watch = CanaryWatch("podinfo", ns)
            canaries.subscribe(watch)
            await api.create(SERVICE, service("podinfo", ns, selector="podinfo-blue"))
            await api.create(CANARY, canary("podinfo", ns, iterations=4))
            await start_release(api, watch, "podinfo", {"selector": {"app": "podinfo-green"}})
            await eventually(lambda: watch.phase == "Progressing", what="Progressing", watch=watch)
            lease = await api.get(LEASE, "flagger-leader-election", ns)
            holder = lease["spec"]["holderIdentity"]
            leader = next(r for r in replicas if f"{holder} became leader" in r.logs())
            leader.kill()
            await eventually(
                lambda: watch.phase == "Succeeded", limit=90, what="Succeeded after hand-over"
            )
            messages = await event_messages(api, ns)
            assert (
                messages.count(f"Copying podinfo.{ns} template spec to podinfo-primary.{ns}") == 1
            )
            lease = await api.get(LEASE, "flagger-leader-election", ns)
            assert lease["spec"]["holderIdentity"] != holder
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.kill()


def deployment(name: str, ns: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 9898}],
                        }
                    ]
                },
            },
        },
    }


async def test_a_deployment_release_creates_the_primary_scales_the_target_and_promotes(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(
            DEPLOYMENT, deployment("podinfo", ns, "ghcr.io/stefanprodan/podinfo:6.0.0")
        )
        spec = canary("podinfo", ns)
        spec["spec"]["targetRef"] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "podinfo",
        }
        await api.create(CANARY, spec)
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        target = await api.get(DEPLOYMENT, "podinfo", ns)
        assert target["spec"]["replicas"] == 0
        primary = await api.get(DEPLOYMENT, "podinfo-primary", ns)
        assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
        apex = await api.get(SERVICE, "podinfo", ns)
        assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
        image = "ghcr.io/stefanprodan/podinfo:6.0.1"
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "podinfo", "image": image}]}}}
        }
        await api.patch(DEPLOYMENT, "podinfo", patch, ns, patch_type=PatchType.STRATEGIC)
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        primary = await api.get(DEPLOYMENT, "podinfo-primary", ns)
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == image
        assert (await api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 0
