"""Objects and waiting helpers for the target/router I/O tests (plain dicts, as users write them)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from coalmine.api.hashing import release_checksum
from coalmine.api.models import Canary, CanaryStatus
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import resource_version
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import Kind
from coalmine.targets.base import TargetController, TargetNotReady
from polling import eventually

CANARY_UID = "0c0ffee0-0000-4000-8000-000000000001"
# The uid of the Canary `podinfo` stored in each test's namespace (the `owner` fixture): a real
# API server's garbage collector deletes the copies if their owner does not exist.
OWNER_UIDS: dict[str, str] = {}
# The user's (admin) client of each test's namespace (the `admin_api` fixture): `write` and `patch`
# act as the user, not as the controller's ServiceAccount.
USER_APIS: dict[str, KubeApi] = {}
WRITE_VERBS = ("create", "replace", "patch", "delete")
POLL_SECONDS = 0.01
WAIT_SECONDS = 10.0


def owner_uid(ns: str) -> str:
    return OWNER_UIDS.get(ns, CANARY_UID)


def make_canary(
    ns: str,
    kind: str = "Deployment",
    *,
    phase: str | None = None,
    name: str = "podinfo",
    **spec: Any,
) -> Canary:
    api_version = "v1" if kind == "Service" else "apps/v1"
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": api_version, "kind": kind, "name": name},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 5, "iterations": 2},
        **spec,
    }
    canary = Canary.model_validate(
        {"metadata": {"name": name, "namespace": ns, "uid": owner_uid(ns)}, "spec": body}
    )
    if phase is not None:
        canary.status = CanaryStatus(phase=phase)
    return canary


def pod_template(image: str, app: str = "podinfo") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 9898}],
                    "env": [
                        {
                            "name": "COLOR",
                            "valueFrom": {
                                "configMapKeyRef": {"name": "podinfo-config", "key": "color"}
                            },
                        }
                    ],
                }
            ],
            "volumes": [{"name": "secret", "secret": {"secretName": "podinfo-secret"}}],
        },
    }


def deployment(
    ns: str, image: str = "podinfo:6.0.0", replicas: int = 2, **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}, **meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": pod_template(image),
        },
    }


def daemonset(
    ns: str, image: str = "podinfo:6.0.0", strategy: str = "RollingUpdate"
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": {
            "updateStrategy": {"type": strategy},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": pod_template(image),
        },
    }


def configmap(ns: str, color: str = "blue") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "podinfo-config", "namespace": ns},
        "data": {"color": color},
        "binaryData": {"logo": "iVBORw0KGgo="},
    }


def secret(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "podinfo-secret", "namespace": ns},
        "data": {"token": "c2VjcmV0"},
    }


def service(
    ns: str,
    name: str = "podinfo",
    *,
    selector: str | None = "podinfo-blue",
    service_type: str = "ClusterIP",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": service_type, **spec}
    if selector is not None:
        body["selector"] = {"app": selector}
    if service_type != "ExternalName" and "ports" not in body:
        body["ports"] = [{"name": "http", "port": 9898, "targetPort": "http", "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": body,
    }


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll `check` (short interval) until it holds; fail naming `what` after WAIT_SECONDS."""
    await eventually(check, WAIT_SECONDS, what, interval=POLL_SECONDS)


async def cached(ctx: ClusterContext, kind: Kind, written: Object) -> None:
    """Wait until the watch cache holds `written` (or newer), as a later cycle would see it.
    Kinds read on demand (Secrets, ConfigMaps: no watch) are forgotten instead, as their time to
    live would let them expire, so the next read GETs them."""
    metadata = written["metadata"]
    if kind in ctx.caches.on_demand:
        await ctx.caches.on_demand_cache(kind).forget(metadata["name"], metadata.get("namespace"))
        return
    informer = await ctx.caches.synced(kind)
    wanted = resource_version(written)

    def arrived() -> bool:
        current = informer.get(metadata["name"], metadata.get("namespace"))
        return current is not None and resource_version(current) >= wanted

    await until(arrived, f"{kind.kind} {metadata['name']} in the cache")


async def write(ctx: ClusterContext, kind: Kind, obj: Mapping[str, Any]) -> Object:
    """A user's write (create, or update of the current object), seen by the cache afterwards."""
    metadata = obj["metadata"]
    user = USER_APIS.get(metadata["namespace"], ctx.api)
    current = await user.get_or_none(kind, metadata["name"], metadata.get("namespace"))
    if current is None:
        written = await user.create(kind, obj)
    else:
        updated = copy.deepcopy(dict(obj))
        updated["metadata"] = {**current["metadata"], **obj["metadata"]}
        written = await user.replace(kind, updated)
    await cached(ctx, kind, written)
    return written


async def patch(
    ctx: ClusterContext, ns: str, kind: Kind, name: str, body: Mapping[str, Any]
) -> Object:
    written = await USER_APIS.get(ns, ctx.api).patch(kind, name, dict(body), ns)
    await cached(ctx, kind, written)
    return written


async def initialize_until_ready(controller: TargetController, canary: Canary) -> int:
    """Call `initialize` until the primary is ready; the number of not-ready verdicts seen."""
    refusals = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        try:
            await controller.initialize(canary)
            return refusals
        except TargetNotReady as error:
            if not error.retriable or loop.time() > deadline:
                raise
            refusals += 1
            await asyncio.sleep(POLL_SECONDS)


def write_requests(api: KubeApi) -> dict[str, int]:
    """The write requests made so far, by verb and kind."""
    return {key: count for key, count in api.requests.items() if key.split(" ")[0] in WRITE_VERBS}


async def counting_writes(api: KubeApi, action: Callable[[], Awaitable[Any]]) -> dict[str, int]:
    """The write requests `action` made."""
    before = write_requests(api)
    await action()
    after = write_requests(api)
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


async def current_revision(controller: TargetController, canary: Canary) -> str:
    """The revision the target holds now: what a promotion after its analysis must carry."""
    fingerprint = await controller.fingerprint(canary)
    return release_checksum(fingerprint.spec_hash, fingerprint.tracked_configs)
