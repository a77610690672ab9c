"""End to end with the load tester and HTTP peers: gates, hook tasks, rollback, event webhooks, alerts.

`coalmine devcluster`, `coalmine controller` and `coalmine loadtester` run as processes; the
test's own aiohttp servers stand in for the application under load, the event webhook receiver
and Slack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from binaries import require_binary
from clusters import TestCluster
from coalmine.hooks.signing import sign_headers
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import ALERT_PROVIDER, CANARY, SERVICE

from .harness import (
    CanaryWatch,
    ControllerProcess,
    LoadTesterProcess,
    Recorder,
    cluster_client,
    event_messages,
    eventually,
    http_post_json,
    loadtester_process,
    serve_app,
    start_controller,
)

pytestmark = pytest.mark.e2e

REQUESTS_TOTAL = "coalmine_loadtester_requests_total"


SIGNING_KEY = b"e2e-webhook-signing-key-0123456789"


@pytest.fixture(autouse=True)
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Secret both mount: the controller signs every webhook, the load tester verifies (both
    processes read COALMINE_WEBHOOK_SIGNING_KEY_FILE)."""
    path = tmp_path / "webhook-signing-key"
    path.write_bytes(SIGNING_KEY + b"\n")
    monkeypatch.setenv("COALMINE_WEBHOOK_SIGNING_KEY_FILE", str(path))


@pytest.fixture
def loadtester(tmp_path: Path) -> Iterator[LoadTesterProcess]:
    with loadtester_process(tmp_path / "loadtester.log") as process:
        yield process


async def signed_post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    """What an operator's signed `curl` to /gate/open sends (docs/loadtester.md)."""
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign_headers([SIGNING_KEY], raw)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw, headers=headers) as response,
    ):
        return response.status, await response.text()


def service(selector: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"selector": {"app": selector}, "ports": [{"name": "http", "port": 9898}]},
    }


def canary(
    ns: str,
    *,
    iterations: int = 2,
    webhooks: list[dict[str, Any]] | None = None,
    alerts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "interval": "1s",
        "threshold": 2,
        "iterations": iterations,
        "metrics": [],
        "webhooks": webhooks or [],
    }
    if alerts:
        analysis["alerts"] = alerts
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


def alert_provider(name: str, ns: str, address: str, channel: str | None = None) -> dict[str, Any]:
    spec = {"type": "slack", "address": address, **({"channel": channel} if channel else {})}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


async def create_and_release(api: KubeApi, watch: CanaryWatch, manifest: dict[str, Any]) -> None:
    """podinfo from blue, initialised; then the new revision (green) is applied."""
    ns = watch.namespace
    await api.create(SERVICE, service("podinfo-blue", ns))
    await api.create(CANARY, manifest)
    await eventually(lambda: watch.phase == "Initialized", what="Initialized", watch=watch)
    await api.patch(SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}}, ns)


async def primary_selector(api: KubeApi, ns: str) -> dict[str, str]:
    primary = await api.get(SERVICE, "podinfo-primary", ns)
    return dict(primary["spec"]["selector"])


async def test_a_confirm_rollout_gate_holds_the_canary_waiting_until_it_is_opened(
    cluster: TestCluster, controller: ControllerProcess, loadtester: LoadTesterProcess
) -> None:
    ns = cluster.namespace
    hooks = [{"name": "gate", "type": "confirm-rollout", "url": f"{loadtester.url}/gate/check"}]
    denied = {"endpoint": "/gate/check", "code": "403"}
    async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await create_and_release(api, watch, canary(ns, webhooks=hooks))
        await eventually(lambda: watch.phase == "Waiting", what="Waiting", watch=watch)
        # Several intervals: the controller keeps asking and the gate keeps refusing.
        async with asyncio.timeout(30):
            while await loadtester.metric(REQUESTS_TOTAL, denied) < 4:
                await asyncio.sleep(0.2)
        assert watch.phase == "Waiting"
        assert "Progressing" not in watch.phases
        assert await primary_selector(api, ns) == {"app": "podinfo-blue"}
        messages = await event_messages(api, ns)
        assert messages.count(f"Halt podinfo.{ns} advancement waiting for approval gate") == 1

        gate = {"name": "podinfo", "namespace": ns}
        assert (await http_post_json(f"{loadtester.url}/gate/open", gate))[0] == 401
        assert await signed_post(f"{loadtester.url}/gate/open", gate) == (202, "")
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        assert watch.phases[watch.phases.index("Waiting") + 1] == "Progressing", watch.phases
        assert await primary_selector(api, ns) == {"app": "podinfo-green"}
        messages = await event_messages(api, ns)
        assert "Confirm-rollout check gate passed" in messages
        assert f"New revision detected! Progressing canary analysis for podinfo.{ns}" in messages
        assert (
            f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
            in messages
        )


async def test_a_pre_rollout_cmd_task_runs_hey_against_the_application_through_the_loadtester(
    cluster: TestCluster, controller: ControllerProcess, loadtester: LoadTesterProcess
) -> None:
    ns = cluster.namespace
    require_binary("hey")
    served: list[str] = []

    async def application(request: web.Request) -> web.Response:
        served.append(request.headers.get("User-Agent", ""))
        return web.Response(text="podinfo green")

    app = web.Application()
    app.router.add_get("/", application)
    async with (
        serve_app(app) as application_url,
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
    ):
        hooks = [
            {
                "name": "load-test",
                "type": "pre-rollout",
                "url": f"{loadtester.url}/",
                "metadata": {"cmd": f"hey -n 20 -c 2 {application_url}/"},
            }
        ]
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await create_and_release(api, watch, canary(ns, webhooks=hooks))
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        await eventually(
            lambda: len(served) >= 20, what=f"20 requests from hey: {loadtester.logs()[-2000:]}"
        )
        assert len(served) == 20
        assert all(agent.startswith("hey/") for agent in served), set(served)
        assert "Pre-rollout check load-test passed" in await event_messages(api, ns)


async def test_opening_the_rollback_switch_during_analysis_fails_the_canary_and_alerts(
    cluster: TestCluster, controller: ControllerProcess, loadtester: LoadTesterProcess
) -> None:
    ns = cluster.namespace
    hooks = [{"name": "stop", "type": "rollback", "url": f"{loadtester.url}/rollback/check"}]
    # A `warn` subscriber hears the rollback, not the routine `info` alerts of the run.
    alerts = [{"name": "pager", "severity": "warn", "providerRef": {"name": "pager"}}]
    pager = Recorder()
    async with (
        serve_app(pager.app()) as pager_url,
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
    ):
        await api.create(ALERT_PROVIDER, alert_provider("pager", ns, f"{pager_url}/hook"))
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        # Enough iterations that only the switch can end this run.
        await create_and_release(
            api, watch, canary(ns, iterations=30, webhooks=hooks, alerts=alerts)
        )
        await eventually(
            lambda: watch.phase == "Progressing" and watch.history[-1][2] >= 1,
            what="analysis under way",
            watch=watch,
        )
        assert await signed_post(
            f"{loadtester.url}/rollback/open", {"name": "podinfo", "namespace": ns}
        ) == (202, "")
        await eventually(lambda: watch.phase == "Failed", what="Failed", watch=watch)
        assert "Promoting" not in watch.phases
        assert await primary_selector(api, ns) == {"app": "podinfo-blue"}
        messages = await event_messages(api, ns)
        assert "Rollback hook stop not signaling a rollback" in messages
        assert "Rollback check stop passed" in messages
        assert f"Rolling back podinfo.{ns} manual webhook invoked" in messages
        assert (
            f"Canary failed! Routing all traffic of podinfo.{ns} back to podinfo-primary.{ns}"
            in messages
        )
        await eventually(lambda: bool(pager.bodies), what="the rollback alert")

    assert [body["attachments"][0]["text"] for body in pager.bodies] == [
        "Rolling back manual webhook invoked"
    ]
    assert pager.bodies[0]["attachments"][0]["color"] == "good"  # red is for `error` only


async def test_the_event_webhook_receives_every_event_of_the_run_with_flaggers_payload(
    cluster: TestCluster, tmp_path: Path
) -> None:
    ns = cluster.namespace
    receiver = Recorder()
    async with serve_app(receiver.app()) as receiver_url:
        controller = start_controller(cluster, tmp_path, f"--event-webhook={receiver_url}/events")
        try:
            async with cluster_client(cluster.kubeconfig_path) as (api, canaries):
                watch = CanaryWatch("podinfo", ns)
                canaries.subscribe(watch)
                await create_and_release(api, watch, canary(ns))
                await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
                done = f"Promotion completed! podinfo-primary.{ns} now serves the revision of podinfo.{ns}"
                await eventually(
                    lambda: any(b["metadata"]["eventMessage"] == done for b in receiver.bodies),
                    what="the last event forwarded",
                )
                recorded = await event_messages(api, ns)
        finally:
            controller.terminate()

    forwarded = [body["metadata"]["eventMessage"] for body in receiver.bodies]
    assert sorted(forwarded) == sorted(recorded)
    by_message = {body["metadata"]["eventMessage"]: body for body in receiver.bodies}
    scaling_up = by_message[f"New revision detected! Progressing canary analysis for podinfo.{ns}"]
    assert set(scaling_up) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (scaling_up["name"], scaling_up["namespace"]) == ("podinfo", ns)
    assert scaling_up["phase"] == "Progressing"
    assert scaling_up["checksum"]
    assert set(scaling_up["metadata"]) == {"eventMessage", "eventType", "timestamp"}
    assert scaling_up["metadata"]["eventType"] == "Normal"
    assert scaling_up["metadata"]["timestamp"].isdigit()
    assert by_message[f"Initialization done! podinfo.{ns}"]["phase"] == "Initialized"
    assert by_message[done]["phase"] == "Succeeded"


async def test_slack_alerts_of_a_release_reach_the_alert_provider_in_flaggers_format(
    cluster: TestCluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace
    slack = Recorder()
    async with (
        serve_app(slack.app()) as slack_url,
        cluster_client(cluster.kubeconfig_path) as (api, canaries),
    ):
        await api.create(
            ALERT_PROVIDER, alert_provider("on-call", ns, f"{slack_url}/hook", channel="releases")
        )
        alerts = [{"name": "on-call", "severity": "info", "providerRef": {"name": "on-call"}}]
        watch = CanaryWatch("podinfo", ns)
        canaries.subscribe(watch)
        await create_and_release(api, watch, canary(ns, alerts=alerts))
        await eventually(lambda: watch.phase == "Succeeded", what="Succeeded", watch=watch)
        completed = "Canary analysis completed successfully, promotion finished."
        await eventually(
            lambda: any(b["attachments"][0]["text"] == completed for b in slack.bodies),
            what="the completion alert",
        )

    by_text = {body["attachments"][0]["text"]: body for body in slack.bodies}
    assert by_text["New revision detected, progressing canary analysis."] == {
        "channel": "releases",
        "username": "flagger",
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": "good",
                "author_name": f"podinfo.{ns}",
                "text": "New revision detected, progressing canary analysis.",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "Target", "value": f"Service/podinfo.{ns}", "short": False},
                    {"title": "Failed checks threshold", "value": "2", "short": False},
                    {"title": "Progress deadline", "value": "600s", "short": False},
                    {"title": "Traffic routing", "value": "Blue/Green", "short": False},
                ],
            }
        ],
    }
    assert by_text[completed]["attachments"][0]["fields"] == []
    assert by_text[completed]["attachments"][0]["color"] == "good"
