"""Issue 13 end to end: Service targets with no silent traps, as a new user meets them.

`coalmine devcluster` (and the real control plane) with `coalmine controller` as processes. Each
test names the finding it covers; findings 2 (gateway/mesh coverage) and 4 (builtin checks) are in
test_router_releases.py and test_metrics_release.py, the LoadBalancer copies of finding 3 in
test_service_copies.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import yaml
from aiohttp import web

from clusters import TestCluster
from coalmine.cli.check import check_stream
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, SERVICE

from .harness import (
    CanaryWatch,
    ControllerProcess,
    cluster_client,
    event_messages,
    eventually,
    serve_app,
)

pytestmark = pytest.mark.e2e

KUBERNETES_COVERAGE = (
    "provider kubernetes: no traffic follows the canary weights; only clients of podinfo-primary "
    "and podinfo-canary are kept apart, and every client of podinfo.{ns} moves to a new revision "
    "as soon as the Service changes"
)


def service(ns: str, selector: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 9898}]}
    if selector is not None:
        spec["selector"] = {"app": selector}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": spec,
    }


def canary(ns: str, webhooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    analysis: dict[str, Any] = {"interval": "1s", "threshold": 1, "iterations": 2, "metrics": []}
    if webhooks:
        analysis["webhooks"] = webhooks
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": analysis,
        },
    }


def conditions(watch: CanaryWatch) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (watch.last.get("status") or {}).get("conditions") or []}


async def coalmine(cluster: TestCluster, *args: str) -> tuple[int, str]:
    """The `coalmine` command as a user runs it, against the test's cluster."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalmine",
        *args,
        f"--kubeconfig={cluster.kubeconfig_path}",
        f"--namespace={cluster.namespace}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "400"},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_finding_1_provider_kubernetes_says_only_the_copies_clients_are_protected(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    sentence = KUBERNETES_COVERAGE.format(ns=ns)
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service(ns, "podinfo-blue"))
        await api.create(CANARY, canary(ns))
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        coverage = conditions(watch)["TrafficCoverage"]
        assert (coverage["status"], coverage["reason"], coverage["message"]) == (
            "False",
            "CopiesOnly",
            sentence,
        )
        # The event follows the condition's status write: wait for it rather than race it.
        recorded: list[str] = []

        async def record() -> None:
            recorded[:] = await event_messages(api, ns)

        async with asyncio.timeout(30):
            while sentence not in recorded:
                await record()
                await asyncio.sleep(0.1)
        code, out = await coalmine(cluster, "status", "podinfo")
        assert code == 0, out
        assert sentence in " ".join(out.split())
    # `coalmine check` says the same sentence before anything reaches the cluster
    checked = check_stream(yaml.safe_dump(canary(ns)), "canary.yaml")
    assert [f.message for f in checked.findings] == [sentence]
    assert [f.severity for f in checked.findings] == ["warning"]


async def test_finding_3_a_selectorless_target_is_refused_until_it_has_a_selector(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service(ns, None))
        await api.create(CANARY, canary(ns))

        def refusal() -> str:
            valid = conditions(watch).get("Valid") or {}
            return str(valid.get("message") or "") if valid.get("status") == "False" else ""

        await eventually(lambda: bool(refusal()), what="refused", watch=watch)
        assert refusal().startswith(
            f"spec.targetRef: Service podinfo.{ns} has no selector (its endpoints are managed by "
            "hand): its copies would have no endpoints and routed traffic would go nowhere"
        )
        assert refusal() in await event_messages(api, ns)
        names = {s["metadata"]["name"] for s in (await api.list(SERVICE, ns)).items}
        assert not names & {"podinfo-primary", "podinfo-canary"}
        code, _ = await coalmine(cluster, "status", "podinfo")
        assert code == 1
        # Given a selector, the same canary starts without an edit of its own.
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-blue"}}}, ns)
        await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
        primary = await api.get(SERVICE, "podinfo-primary", ns)
        assert primary["spec"]["selector"] == {"app": "podinfo-blue"}


def failing_hook() -> AbstractAsyncContextManager[str]:
    """A rollout webhook that always fails: every run rolls back at its first check."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=500, text="error rate too high")

    app = web.Application()
    app.router.add_post("/check", handler)
    return serve_app(app)


async def fail_a_release(api: KubeApi, watch: CanaryWatch, ns: str) -> None:
    await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
    await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
    await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)


async def test_finding_5_a_revert_after_a_failure_is_reported_and_passes_the_pipeline(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries), failing_hook() as hook:
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service(ns, "podinfo-blue"))
        hooks = [{"name": "acceptance", "type": "rollout", "url": f"{hook}/check"}]
        await api.create(CANARY, canary(ns, hooks))
        await fail_a_release(api, watch, ns)
        code, out = await coalmine(cluster, "status", "podinfo")
        assert code == 1, out
        # the GitOps revert: the target back to the promoted spec, then the pipeline's wait
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-blue"}}}, ns)
        code, out = await coalmine(cluster, "status", "podinfo", "--watch", "--timeout=60s")
        assert code == 0, out
        reverted = conditions(watch).get("Reverted") or {}
        assert (reverted.get("status"), reverted.get("reason")) == ("True", "TargetMatchesPromoted")
        messages = await event_messages(api, ns)
        assert messages.count("target matches the promoted revision; nothing to release") == 1
        assert watch.phase == "Failed"
        # re-applying the failed revision is a new run again, and its failure fails the pipeline
        seen = len(watch.phases)
        await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)
        await eventually(
            lambda: watch.phases[seen:] == ["Progressing", "Failed"],
            what="a new run that fails",
            watch=watch,
        )
        assert "Reverted" not in conditions(watch)
        code, out = await coalmine(cluster, "status", "podinfo")
        assert code == 1, out


async def test_finding_6_service_target_events_and_conditions_never_speak_of_scaling(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries), failing_hook() as hook:
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await api.create(SERVICE, service(ns, "podinfo-blue"))
        hooks = [{"name": "acceptance", "type": "rollout", "url": f"{hook}/check"}]
        await api.create(CANARY, canary(ns, hooks))
        await fail_a_release(api, watch, ns)
        failed = conditions(watch)["Promoted"]["message"]
        assert failed == "Canary analysis failed, all traffic routed back to the primary copy."
        messages = await event_messages(api, ns)
        assert f"New revision detected! Progressing canary analysis for podinfo.{ns}" in messages
        assert (
            f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
            in messages
        )
        written = [*messages, *(c["message"] for c in conditions(watch).values())]
        assert not [m for m in written if "scal" in m.lower()], written
