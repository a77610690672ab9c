"""The kubernetes routers on devcluster (apex/primary/canary Services, finalize), the no-op mesh
router of `provider: kubernetes`, and the kind registries."""

from __future__ import annotations

import json

import pytest

from coalmine.api import naming
from coalmine.api.models import CanaryStatus
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import SERVICE
from coalmine.routers.base import Router, Routes, ServiceRouter
from coalmine.routers.kubernetes import (
    KubernetesMeshRouter,
    KubernetesServiceRouter,
    NoopServiceRouter,
    service_router_for,
)
from coalmine.targets.base import TargetMetadata
from coalmine.targets.daemonset_controller import DaemonSetController
from coalmine.targets.deployment_controller import DeploymentController
from coalmine.targets.errors import TargetError
from coalmine.targets.kinds_registry import scaler_for, target_controller_for
from coalmine.targets.scaler_controller import HpaScaler, KedaScaler
from coalmine.targets.service_controller import ServiceTargetController

from .io_helpers import NS, cached, counting_writes, make_canary, service, write
from .scheduler_rig import ClusterRig

METADATA = TargetMetadata("app", "podinfo", {"http-metrics": 8080})


async def test_workload_services_are_created_once_and_rewritten_only_on_difference(
    ctx: ClusterContext,
) -> None:
    router = KubernetesServiceRouter(ctx)
    canary = make_canary(service={"port": 9898, "portDiscovery": True})

    await router.initialize(canary, METADATA)
    await router.reconcile(canary, METADATA)

    apex = await ctx.api.get(SERVICE, "podinfo", NS)
    primary = await ctx.api.get(SERVICE, "podinfo-primary", NS)
    canary_svc = await ctx.api.get(SERVICE, "podinfo-canary", NS)
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
    assert primary["spec"]["selector"] == {"app": "podinfo-primary"}
    assert canary_svc["spec"]["selector"] == {"app": "podinfo"}
    assert [p["port"] for p in canary_svc["spec"]["ports"]] == [9898, 8080]
    assert apex["metadata"]["labels"] == {"app": "podinfo"}
    for svc in (apex, primary, canary_svc):
        await cached(ctx, SERVICE, svc)

    async def cycle() -> None:
        await router.initialize(canary, METADATA)
        await router.reconcile(canary, METADATA)

    assert await counting_writes(ctx.api, cycle) == {}

    fewer_ports = TargetMetadata("app", "podinfo", {})
    await router.initialize(canary, fewer_ports)
    canary_svc = await ctx.api.get(SERVICE, "podinfo-canary", NS)
    assert [p["port"] for p in canary_svc["spec"]["ports"]] == [9898]
    assert canary_svc["spec"]["clusterIP"]


async def test_finalize_points_a_users_apex_service_back_at_the_target_pods(
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(selector="podinfo"))
    router = KubernetesServiceRouter(ctx)
    canary = make_canary()
    await router.reconcile(canary, METADATA)
    taken = await ctx.api.get(SERVICE, "podinfo", NS)
    assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
    assert "ownerReferences" not in taken["metadata"]
    assert taken["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    await cached(ctx, SERVICE, taken)

    await router.finalize(canary, METADATA)

    restored = await ctx.api.get(SERVICE, "podinfo", NS)
    assert restored["spec"]["selector"] == {"app": "podinfo"}
    assert restored["spec"]["clusterIP"] == taken["spec"]["clusterIP"]


async def test_finalize_prefers_the_selector_kubectl_last_applied(ctx: ClusterContext) -> None:
    user_service = service(selector="podinfo-web")
    user_service["metadata"]["annotations"] = {
        naming.KUBECTL_LAST_APPLIED_ANNOTATION: json.dumps(
            {"spec": {"selector": {"app": "podinfo-web"}}}
        )
    }
    await write(ctx, SERVICE, user_service)
    router = KubernetesServiceRouter(ctx)
    canary = make_canary()
    await cached(ctx, SERVICE, await router_reconciled(router, ctx))

    await router.finalize(canary, METADATA)

    restored = await ctx.api.get(SERVICE, "podinfo", NS)
    assert restored["spec"]["selector"] == {"app": "podinfo-web"}


async def router_reconciled(
    router: KubernetesServiceRouter, ctx: ClusterContext
) -> dict[str, object]:
    await router.reconcile(make_canary(), METADATA)
    return await ctx.api.get(SERVICE, "podinfo", NS)


async def test_finalize_leaves_services_the_canary_owns_to_garbage_collection(
    ctx: ClusterContext,
) -> None:
    router = KubernetesServiceRouter(ctx)
    canary = make_canary()
    await router.reconcile(canary, METADATA)
    await cached(ctx, SERVICE, await ctx.api.get(SERVICE, "podinfo", NS))

    assert await counting_writes(ctx.api, lambda: router.finalize(canary, METADATA)) == {}
    assert (await ctx.api.get(SERVICE, "podinfo", NS))["spec"]["selector"] == {
        "app": "podinfo-primary"
    }


async def test_the_kubernetes_mesh_router_reports_blue_green_switches() -> None:
    router: Router = KubernetesMeshRouter()
    canary = make_canary(provider="kubernetes")
    assert router.supports_mirroring is False
    assert await router.get_routes(canary) == Routes(100, 0, False)
    assert await router.set_routes(canary, 0, 100, False) is None
    canary.status = CanaryStatus(phase="Progressing", iterations=1)
    assert await router.get_routes(canary) == Routes(0, 100, False)


async def test_service_targets_get_the_noop_service_router(ctx: ClusterContext) -> None:
    noop: ServiceRouter = service_router_for(make_canary("Service"), ctx)
    assert isinstance(noop, NoopServiceRouter)
    assert await counting_writes(ctx.api, lambda: noop.initialize(make_canary(), METADATA)) == {}
    assert isinstance(service_router_for(make_canary(), ctx), KubernetesServiceRouter)


def test_registries_resolve_kinds_and_refuse_knative(ctx: ClusterContext) -> None:
    assert isinstance(target_controller_for(make_canary(), ctx), DeploymentController)
    assert isinstance(target_controller_for(make_canary("DaemonSet"), ctx), DaemonSetController)
    assert isinstance(target_controller_for(make_canary("Service"), ctx), ServiceTargetController)
    knative = make_canary("Service")
    knative.spec.target_ref.api_version = "serving.knative.dev/v1"
    with pytest.raises(TargetError, match=r"Knative Services .* are not supported yet"):
        target_controller_for(knative, ctx)
    assert scaler_for(make_canary(), ctx) is None
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}
    keda = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"}
    assert isinstance(scaler_for(make_canary(autoscalerRef=hpa), ctx), HpaScaler)
    assert isinstance(scaler_for(make_canary(autoscalerRef=keda), ctx), KedaScaler)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("Deployment", "deployment podinfo.test get query error: not found"),
        ("DaemonSet", "daemonset podinfo.test get query error: not found"),
        ("Service", "service podinfo.test get query error: not found"),
    ],
)
async def test_the_scheduler_warns_about_a_missing_target_and_keeps_initializing(
    ctx: ClusterContext, kind: str, message: str
) -> None:
    rig = ClusterRig(ctx, make_canary(kind))

    await rig.cycle()
    await rig.cycle()

    assert rig.events.seen.count(("Warning", message)) == 2
    assert rig.phase == ""
    assert rig.store.phases == []
    assert await counting_writes(ctx.api, rig.cycle) == {}
