"""Knative Service targets through the real client on both tiers, with Knative's official Service
and Revision CRDs served and `KnativeServing` (tests/knative_serving.py) standing in for
Knative's controller: initialisation, revisions, readiness, promotion and the knative router's
split as the API server stores it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from coalmine.api.hashing import release_checksum
from coalmine.api.models import Canary, CanaryStatus
from coalmine.controller.seams import MeshRouter
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import KNATIVE_SERVICE
from coalmine.routers.base import Routes
from coalmine.routers.knative import ROUTER
from coalmine.targets.base import TargetChanged, TargetNotReady
from coalmine.targets.knative_controller import KnativeTargetController
from knative_serving import KnativeServing
from polling import eventually

TARGET = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def canary(ns: str, phase: str | None = None) -> Canary:
    model = Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": ns, "uid": "u"},
            "spec": {
                "provider": "knative",
                "targetRef": TARGET,
                "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10},
            },
        }
    )
    if phase is not None:
        model.status = CanaryStatus(phase=phase)
    return model


def knative_service(ns: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
    }


@pytest.fixture
async def serving(admin_api: KubeApi, ns: str) -> AsyncIterator[KnativeServing]:
    async with KnativeServing(admin_api, ns).running() as knative:
        yield knative


async def stored(api: KubeApi, ns: str) -> Object:
    return await api.get(KNATIVE_SERVICE, "podinfo", ns)


async def settled(api: KubeApi, ns: str, latest: str, ctx: ClusterContext | None = None) -> Object:
    """The Service once Knative created `latest` and caught up with its spec (and, given `ctx`,
    once the controller's cache has that state)."""
    service: Object = {}

    async def check() -> bool:
        nonlocal service
        service = await stored(api, ns)
        status = service.get("status") or {}
        caught_up = status.get("observedGeneration") == service["metadata"].get("generation")
        if not (caught_up and status.get("latestCreatedRevisionName") == latest):
            return False
        if ctx is None:
            return True
        cached = (await ctx.caches.synced(KNATIVE_SERVICE)).get("podinfo", ns)
        return cached is not None and cached.get("status") == status

    def detail() -> str:
        seen = {k: service.get(k) for k in ("metadata", "status")}
        return f"last seen {seen}; stand-in errors {KnativeServing.errors[-5:]}"

    await eventually(check, 60, f"Knative Service podinfo at {latest}", detail=detail)
    return service


async def new_image(api: KubeApi, ns: str, image: str) -> None:
    """The user's edit of the template (a merge patch: Knative writes the status meanwhile)."""
    template = {"spec": {"containers": [{"image": image}]}}
    await api.patch(KNATIVE_SERVICE, "podinfo", {"spec": {"template": template}}, ns)


async def test_a_release_of_revisions_from_initialisation_to_promotion(
    ctx: ClusterContext, admin_api: KubeApi, ns: str, serving: KnativeServing
) -> None:
    controller = KnativeTargetController(ctx)
    router = MeshRouter(ctx, ROUTER)
    await admin_api.create(KNATIVE_SERVICE, knative_service(ns, "podinfo:6.0.0"))
    await settled(admin_api, ns, "podinfo-00001", ctx)

    await controller.initialize(canary(ns, "Initializing"))
    service = await settled(admin_api, ns, "podinfo-00001", ctx)
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00001"
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 100},
    ]
    assert "ownerReferences" not in service["metadata"]
    await controller.is_primary_ready(canary(ns))
    first = await controller.fingerprint(canary(ns))
    assert first.route == "podinfo-00001"
    assert await router.get_routes(canary(ns)) == Routes(100, 0)

    # A new template: Knative creates podinfo-00002, which is the canary and a new release.
    await new_image(admin_api, ns, "podinfo:6.0.1")
    await settled(admin_api, ns, "podinfo-00002", ctx)
    second = await controller.fingerprint(canary(ns))
    assert (second.spec_hash != first.spec_hash, second.route) == (True, "podinfo-00002")
    await controller.is_canary_ready(canary(ns))
    await router.set_routes(canary(ns), 70, 30, False)
    await settled(admin_api, ns, "podinfo-00002", ctx)
    assert await router.get_routes(canary(ns)) == Routes(70, 30)
    # The canary's traffic goes to the latest ready revision, as Knative resolves it.
    status_traffic = (await stored(admin_api, ns))["status"]["traffic"]
    assert [(t["revisionName"], t["percent"]) for t in status_traffic] == [
        ("podinfo-00002", 30),
        ("podinfo-00001", 70),
    ]

    analysed = release_checksum(second.spec_hash, None)
    await controller.promote(canary(ns), analysed)
    await router.set_routes(canary(ns), 100, 0, False)
    service = await settled(admin_api, ns, "podinfo-00002", ctx)
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00002"
    assert [(t["revisionName"], t["percent"]) for t in service["status"]["traffic"]] == [
        ("podinfo-00002", 0),
        ("podinfo-00002", 100),
    ]
    assert (await controller.fingerprint(canary(ns))).primary_revision == analysed

    # revertOnDeletion: the record goes, the Service keeps serving the promoted revision.
    await router.finalize(canary(ns))
    service = await stored(admin_api, ns)
    assert "flagger.app/primary-revision" not in (service["metadata"].get("annotations") or {})
    assert service["spec"]["traffic"][1]["revisionName"] == "podinfo-00002"


async def test_a_revision_created_after_the_analysis_is_not_promoted(
    ctx: ClusterContext, admin_api: KubeApi, ns: str, serving: KnativeServing
) -> None:
    controller = KnativeTargetController(ctx)
    await admin_api.create(KNATIVE_SERVICE, knative_service(ns, "podinfo:6.0.0"))
    await settled(admin_api, ns, "podinfo-00001", ctx)
    await controller.initialize(canary(ns, "Initializing"))
    await new_image(admin_api, ns, "podinfo:6.0.1")
    await settled(admin_api, ns, "podinfo-00002", ctx)
    analysed = release_checksum((await controller.fingerprint(canary(ns))).spec_hash, None)
    await new_image(admin_api, ns, "podinfo:6.0.2")
    await settled(admin_api, ns, "podinfo-00003", ctx)
    with pytest.raises(TargetChanged):
        await controller.promote(canary(ns), analysed)
    service = await stored(admin_api, ns)
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00001"


async def test_a_revision_knative_declared_failed_is_a_verdict_not_a_wait(
    ctx: ClusterContext, admin_api: KubeApi, ns: str, serving: KnativeServing
) -> None:
    controller = KnativeTargetController(ctx)
    await admin_api.create(KNATIVE_SERVICE, knative_service(ns, "podinfo:6.0.0"))
    await settled(admin_api, ns, "podinfo-00001", ctx)
    await controller.initialize(canary(ns, "Initializing"))
    await new_image(admin_api, ns, "podinfo:bad")
    await settled(admin_api, ns, "podinfo-00002", ctx)
    with pytest.raises(TargetNotReady) as raised:
        await controller.is_canary_ready(canary(ns))
    assert raised.value.retriable is False
    assert raised.value.message == (
        f"Knative Revision podinfo-00002.{ns} is not ready: ContainerMissing: "
        "image cannot be pulled"
    )
    await controller.is_primary_ready(canary(ns))


async def test_a_missing_knative_service_is_named_in_the_error(
    ctx: ClusterContext, ns: str
) -> None:
    controller = KnativeTargetController(ctx)
    with pytest.raises(Exception, match=f"Knative Service podinfo.{ns} get query error"):
        await controller.initialize(canary(ns, "Initializing"))
