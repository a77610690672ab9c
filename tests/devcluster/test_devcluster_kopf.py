"""kopf, unmodified, runs an operator against devcluster and sees each change exactly once."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf
import pytest

from coalmine.devcluster import DevCluster
from polling import eventually

from .dchelpers import WIDGET_CRD, WIDGETS, Raw, widget


def build_registry(url: str, seen: list[tuple[str, str]]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 30

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kopf's own kubeconfig reader, on the kubeconfig devcluster wrote (KUBECONFIG)
        info: kopf.ConnectionInfo | None = kopf.login_with_kubeconfig(**kwargs)
        assert info is not None
        assert info.server == url
        return info

    @kopf.on.create("example.com", "v1", "widgets", registry=registry)
    def created(name: str, **_: Any) -> None:
        seen.append(("create", name))

    @kopf.on.update("example.com", "v1", "widgets", registry=registry)
    def updated(name: str, **_: Any) -> None:
        seen.append(("update", name))

    @kopf.on.delete("example.com", "v1", "widgets", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.append(("delete", name))

    return registry


async def test_kopf_operator_sees_create_update_delete_once_each(
    devcluster: DevCluster, devcluster_http: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(devcluster.kubeconfig_path))
    assert (
        await devcluster_http.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD
        )
    ).status == 201
    seen: list[tuple[str, str]] = []
    registry = build_registry(devcluster.url, seen)
    stop = threading.Event()
    ready = threading.Event()

    def run() -> None:
        asyncio.run(
            kopf.operator(
                registry=registry,
                standalone=True,
                namespaces=["default"],
                stop_flag=stop,
                ready_flag=ready,
            )
        )

    thread = threading.Thread(target=run, name="kopf-operator", daemon=True)
    thread.start()
    try:
        await eventually(ready.is_set)
        await devcluster_http.post(WIDGETS, widget("k1", size=1))
        await eventually(lambda: ("create", "k1") in seen)
        await devcluster_http.patch(f"{WIDGETS}/k1", {"spec": {"size": 2}})
        await eventually(lambda: ("update", "k1") in seen)
        await devcluster_http.delete(f"{WIDGETS}/k1")
        await eventually(lambda: ("delete", "k1") in seen)

        await eventually(
            lambda: devcluster.store.storage.get("widgets.example.com", ("default", "k1")) is None
        )
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
    assert seen == [("create", "k1"), ("update", "k1"), ("delete", "k1")]
