"""A fresh baseline on both tiers: created and waited for while a run analyses, removed at the
run's end, and removed by the first cycle of a restarted controller that finds one left over."""

from __future__ import annotations

from typing import Any

from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CONFIG_MAP, DEPLOYMENT, SECRET, SERVICE
from coalmine.targets.base import TargetNotReady
from coalmine.targets.deployment_controller import DeploymentController
from coalmine.targets.service_controller import ServiceTargetController
from polling import eventually

from .io_helpers import (
    configmap,
    deployment,
    initialize_until_ready,
    make_canary,
    owner_uid,
    secret,
    write,
)

ANALYSIS = {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 30}


def service(ns: str, name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898}]},
    }


def baseline_canary(ns: str, phase: str, kind: str = "Deployment") -> Any:
    analysis = {**ANALYSIS, "baseline": {"enabled": True}}
    return make_canary(ns, kind, phase=phase, analysis=analysis)


async def ready(controller: DeploymentController, canary: Any) -> bool:
    """One readiness check of the canary and its baseline; a verdict waiting cannot heal fails."""
    try:
        await controller.is_canary_ready(canary)
    except TargetNotReady as error:
        if not error.retriable:
            raise
        return False
    return True


async def test_a_deployment_baseline_runs_during_the_analysis_and_is_gone_after_it(
    ns: str, ctx: ClusterContext
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DEPLOYMENT, deployment(ns, replicas=3))
    await write(ctx, SERVICE, service(ns, "podinfo-primary", "podinfo-primary"))
    controller = DeploymentController(ctx)
    await initialize_until_ready(controller, baseline_canary(ns, "Initializing"))
    progressing = baseline_canary(ns, "Progressing")
    await eventually(lambda: ready(controller, progressing), what="canary and baseline ready")
    baseline = await ctx.api.get(DEPLOYMENT, "podinfo-baseline", ns)
    assert baseline["spec"]["replicas"] == 3
    assert baseline["spec"]["selector"] == {"matchLabels": {"app": "podinfo-baseline"}}
    assert baseline["metadata"]["ownerReferences"][0]["uid"] == owner_uid(ns)
    routed = await ctx.api.get(SERVICE, "podinfo-baseline", ns)
    assert routed["spec"]["selector"] == {"app": "podinfo-baseline"}

    # a restarted controller (new objects, the run ended meanwhile) removes the leftover
    restarted = DeploymentController(ctx)
    await restarted.initialize(baseline_canary(ns, "Succeeded"))
    assert await ctx.api.get_or_none(DEPLOYMENT, "podinfo-baseline", ns) is None
    assert await ctx.api.get_or_none(SERVICE, "podinfo-baseline", ns) is None


async def test_promotion_keeps_the_baseline_until_the_canary_is_parked(
    ns: str, ctx: ClusterContext
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DEPLOYMENT, deployment(ns))
    await write(ctx, SERVICE, service(ns, "podinfo-primary", "podinfo-primary"))
    controller = DeploymentController(ctx)
    await initialize_until_ready(controller, baseline_canary(ns, "Initializing"))
    progressing = baseline_canary(ns, "Progressing")
    await eventually(lambda: ready(controller, progressing), what="canary and baseline ready")
    # Promoting: its route share is going back to the primary; the object stays until parked
    await controller.initialize(baseline_canary(ns, "Promoting"))
    assert await ctx.api.get_or_none(DEPLOYMENT, "podinfo-baseline", ns) is not None
    await controller.scale_to_zero(baseline_canary(ns, "Finalising"))
    assert await ctx.api.get_or_none(DEPLOYMENT, "podinfo-baseline", ns) is None
    assert await ctx.api.get_or_none(SERVICE, "podinfo-baseline", ns) is None


async def test_a_service_target_baseline_copies_the_primary_service(
    ns: str, ctx: ClusterContext
) -> None:
    await write(ctx, SERVICE, service(ns, "podinfo", "green"))
    controller = ServiceTargetController(ctx)
    await controller.initialize(baseline_canary(ns, "Initializing", "Service"))
    await controller.is_canary_ready(baseline_canary(ns, "Progressing", "Service"))
    copy = await ctx.api.get(SERVICE, "podinfo-baseline", ns)
    primary = await ctx.api.get(SERVICE, "podinfo-primary", ns)
    assert copy["spec"]["selector"] == primary["spec"]["selector"] == {"app": "green"}
    assert copy["spec"]["clusterIP"] != primary["spec"]["clusterIP"]
    await controller.scale_to_zero(baseline_canary(ns, "Failed", "Service"))
    assert await ctx.api.get_or_none(SERVICE, "podinfo-baseline", ns) is None
