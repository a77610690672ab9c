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
from coalmine.targets.knative_controller import KnativeTargetController
from coalmine.targets.scaler_controller import HpaScaler, KedaScaler
from coalmine.targets.service_controller import ServiceTargetController

from .io_helpers import cached, counting_writes, make_canary, service, write
from .scheduler_rig import ClusterRig

METADATA = TargetMetadata("app", "podinfo", {"http-metrics": 8080})


async def test_workload_services_are_created_once_and_rewritten_only_on_difference(
    ns: str,
    ctx: ClusterContext,
) -> None:
    router = KubernetesServiceRouter(ctx)
    canary = make_canary(ns, service={"port": 9898, "portDiscovery": True})

    await router.initialize(canary, METADATA)
    await router.reconcile(canary, METADATA)

    apex = await ctx.api.get(SERVICE, "podinfo", ns)
    primary = await ctx.api.get(SERVICE, "podinfo-primary", ns)
    canary_svc = await ctx.api.get(SERVICE, "podinfo-canary", ns)
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
    canary_svc = await ctx.api.get(SERVICE, "podinfo-canary", ns)
    assert [p["port"] for p in canary_svc["spec"]["ports"]] == [9898]
    assert canary_svc["spec"]["clusterIP"]


async def test_finalize_points_a_users_apex_service_back_at_the_target_pods(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns, selector="podinfo"))
    router = KubernetesServiceRouter(ctx)
    canary = make_canary(ns)
    await router.reconcile(canary, METADATA)
    taken = await ctx.api.get(SERVICE, "podinfo", ns)
    assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
    assert "ownerReferences" not in taken["metadata"]
    assert taken["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    await cached(ctx, SERVICE, taken)

    await router.finalize(canary, METADATA)

    restored = await ctx.api.get(SERVICE, "podinfo", ns)
    assert restored["spec"]["selector"] == {"app": "podinfo"}
    assert restored["spec"]["clusterIP"] == taken["spec"]["clusterIP"]


async def test_finalize_prefers_the_selector_kubectl_last_applied(
    ns: str, ctx: ClusterContext
) -> None:
    user_service = service(ns, selector="podinfo-web")
    user_service["metadata"]["annotations"] = {
        naming.KUBECTL_LAST_APPLIED_ANNOTATION: json.dumps(
            {"spec": {"selector": {"app": "podinfo-web"}}}
        )
    }
    await write(ctx, SERVICE, user_service)
    router = KubernetesServiceRouter(ctx)
    canary = make_canary(ns)
    await cached(ctx, SERVICE, await router_reconciled(ns, router, ctx))

    await router.finalize(canary, METADATA)

    restored = await ctx.api.get(SERVICE, "podinfo", ns)
    assert restored["spec"]["selector"] == {"app": "podinfo-web"}


async def router_reconciled(
    ns: str, router: KubernetesServiceRouter, ctx: ClusterContext
) -> dict[str, object]:
    await router.reconcile(make_canary(ns), METADATA)
    return await ctx.api.get(SERVICE, "podinfo", ns)


async def test_finalize_leaves_services_the_canary_owns_to_garbage_collection(
    ns: str,
    ctx: ClusterContext,
) -> None:
    router = KubernetesServiceRouter(ctx)
    canary = make_canary(ns)
    await router.reconcile(canary, METADATA)
    await cached(ctx, SERVICE, await ctx.api.get(SERVICE, "podinfo", ns))

    assert await counting_writes(ctx.api, lambda: router.finalize(canary, METADATA)) == {}
    assert (await ctx.api.get(SERVICE, "podinfo", ns))["spec"]["selector"] == {
        "app": "podinfo-primary"
    }


async def test_the_kubernetes_mesh_router_reports_blue_green_switches(ns: str) -> None:
    router: Router = KubernetesMeshRouter()
    canary = make_canary(ns, provider="kubernetes")
    assert router.supports_mirroring is False
    assert await router.get_routes(canary) == Routes(100, 0, False)
    assert await router.set_routes(canary, 0, 100, False) is None
    canary.status = CanaryStatus(phase="Progressing", iterations=1)
    assert await router.get_routes(canary) == Routes(0, 100, False)


async def test_service_targets_get_the_noop_service_router(ns: str, ctx: ClusterContext) -> None:
    noop: ServiceRouter = service_router_for(make_canary(ns, "Service"), ctx)
    assert isinstance(noop, NoopServiceRouter)
    assert await counting_writes(ctx.api, lambda: noop.initialize(make_canary(ns), METADATA)) == {}
    assert isinstance(service_router_for(make_canary(ns), ctx), KubernetesServiceRouter)


def test_registries_resolve_every_kind_the_api_version_included(
    ns: str, ctx: ClusterContext
) -> None:
    assert isinstance(target_controller_for(make_canary(ns), ctx), DeploymentController)
    assert isinstance(target_controller_for(make_canary(ns, "DaemonSet"), ctx), DaemonSetController)
    assert isinstance(
        target_controller_for(make_canary(ns, "Service"), ctx), ServiceTargetController
    )
    knative = make_canary(ns, "Service")
    knative.spec.target_ref.api_version = "serving.knative.dev/v1"
    assert isinstance(target_controller_for(knative, ctx), KnativeTargetController)
    assert isinstance(service_router_for(knative, ctx), NoopServiceRouter)
    unknown = make_canary(ns)
    unknown.spec.target_ref.kind = "StatefulSet"  # type: ignore[assignment]
    with pytest.raises(TargetError, match=r"StatefulSet is not supported"):
        target_controller_for(unknown, ctx)
    assert scaler_for(make_canary(ns), ctx) is None
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}
    keda = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"}
    assert isinstance(scaler_for(make_canary(ns, autoscalerRef=hpa), ctx), HpaScaler)
    assert isinstance(scaler_for(make_canary(ns, autoscalerRef=keda), ctx), KedaScaler)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("Deployment", "deployment podinfo.{ns} get query error: not found"),
        ("DaemonSet", "daemonset podinfo.{ns} get query error: not found"),
        ("Service", "service podinfo.{ns} get query error: not found"),
    ],
)
async def test_the_scheduler_warns_about_a_missing_target_and_keeps_initializing(
    ns: str, ctx: ClusterContext, kind: str, message: str
) -> None:
    rig = ClusterRig(ctx, make_canary(ns, kind))

    await rig.cycle()
    await rig.cycle()

    assert rig.events.seen.count(("Warning", message.format(ns=ns))) == 2
    assert rig.phase == ""
    assert rig.store.phases == []
    assert await counting_writes(ctx.api, rig.cycle) == {}
