"""Planted secrets never show: the controller on devcluster runs the failing paths (a webhook and
an event webhook whose URLs carry a token, a MetricTemplate whose address carries credentials,
an AlertProvider whose Secret address is refused) and the secret value is searched in the
controller's log records, the Events, the Canaries' status and /metrics (the Canary spec holds
the hook URL as its author wrote it)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import ALERT_PROVIDER, CANARY, EVENT, METRIC_TEMPLATE, SECRET, SERVICE
from inprocess import cluster_api, running_controller
from polling import eventually

from .outbound_rig import serve

PLANTED = "PlAnTeD-S3cret-4711"


@pytest.fixture
async def api(devcluster: DevCluster) -> AsyncIterator[KubeApi]:
    async with cluster_api(devcluster) as client:
        yield client


async def closed_port_url() -> str:
    async def never(request: object) -> object:
        raise AssertionError("unreachable")

    async with serve(never) as (url,):  # type: ignore[arg-type]
        pass
    return url


def canary(name: str, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {
                "interval": "1s",
                "threshold": 1,
                "iterations": 2,
                "alerts": [{"name": "chat", "severity": "info", "providerRef": {"name": "chat"}}],
                **analysis,
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": f"{name}-blue"}, "ports": [{"port": 80}]},
    }


async def plant(api: KubeApi, dead: str) -> None:
    secret_address = f"ftp://user:{PLANTED}@chat.example/hooks"
    await api.create(
        SECRET,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "chat", "namespace": "default"},
            "data": {"address": base64.b64encode(secret_address.encode()).decode()},
        },
    )
    await api.create(
        ALERT_PROVIDER,
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "chat", "namespace": "default"},
            "spec": {"type": "slack", "channel": "releases", "secretRef": {"name": "chat"}},
        },
    )
    await api.create(
        METRIC_TEMPLATE,
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "errors", "namespace": "default"},
            "spec": {
                "provider": {
                    "type": "prometheus",
                    "address": dead.replace("http://", f"http://admin:{PLANTED}@")
                    + f"/?api_key={PLANTED}",
                },
                "query": "up",
            },
        },
    )
    hooked = canary(
        "hooked",
        webhooks=[
            {"name": "gate", "type": "pre-rollout", "url": f"{dead}/gate?token={PLANTED}"},
            {"name": "events", "type": "event", "url": f"{dead}/events?sig={PLANTED}"},
        ],
    )
    metered = canary(
        "metered",
        metrics=[
            {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
        ],
    )
    for name, body in (("hooked", hooked), ("metered", metered)):
        await api.create(SERVICE, service(name))
        await api.create(CANARY, body)


async def test_planted_secrets_never_reach_logs_events_status_or_metrics(
    devcluster: DevCluster, api: KubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = await closed_port_url()
    await plant(api, dead)
    async with running_controller(devcluster, interval=1.0) as controller:

        async def phase(name: str) -> str:
            obj = await api.get(CANARY, name, "default")
            return str((obj.get("status") or {}).get("phase") or "")

        for name in ("hooked", "metered"):
            await eventually(lambda name=name: _is(phase(name), "Initialized"))
            await api.patch(
                SERVICE, name, {"spec": {"selector": {"app": f"{name}-green"}}}, "default"
            )
        for name in ("hooked", "metered"):
            await eventually(lambda name=name: _is(phase(name), "Failed"))
        events = (await api.list(EVENT, "default")).items
        canaries = (await api.list(CANARY, "default")).items
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{controller.http_port}/metrics") as response,
        ):
            metrics_text = await response.text()
    messages = [str(event.get("message")) for event in events]
    # The failing paths really ran, and named what failed (redacted):
    assert any("token=xxxxx" in message for message in messages), messages
    assert any("admin:xxxxx@" in message for message in messages), messages
    assert "invalid slack URL 'ftp://user:xxxxx@chat.example/hooks'" in caplog.text
    assert "sig=xxxxx" in caplog.text
    assert 'flagger_canary_status{name="metered",namespace="default"}' in metrics_text
    for where, text in (
        ("log records", caplog.text),
        ("events", json.dumps(events)),
        ("canary status", json.dumps([canary.get("status") for canary in canaries])),
        ("/metrics", metrics_text),
    ):
        assert PLANTED not in text, f"the planted secret appears in the {where}"


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)
