"""DaemonSet targets and autoscalers (HPA, KEDA ScaledObject) on both tiers."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api import naming
from coalmine.kube.cache import KindUnavailable
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CONFIG_MAP, DAEMON_SET, DEPLOYMENT, HPA, SCALED_OBJECT, SECRET
from coalmine.targets.daemonset_controller import DaemonSetController
from coalmine.targets.deployment_controller import DeploymentController
from coalmine.targets.errors import TargetError
from coalmine.targets.scaler_controller import HpaScaler, KedaScaler
from tiered import ApiServer

from .io_helpers import (
    configmap,
    counting_writes,
    daemonset,
    deployment,
    initialize_until_ready,
    make_canary,
    patch,
    secret,
    until,
    write,
)


def node_selector(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["spec"]["template"]["spec"].get("nodeSelector") or {})


async def test_daemonset_primary_is_created_and_the_target_parks_behind_a_node_selector(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DAEMON_SET, daemonset(ns))
    controller = DaemonSetController(ctx)
    canary = make_canary(ns, "DaemonSet")
    await initialize_until_ready(controller, canary)
    primary = await ctx.api.get(DAEMON_SET, "podinfo-primary", ns)
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    before = await controller.fingerprint(canary)

    await controller.scale_to_zero(canary)

    target = await ctx.api.get(DAEMON_SET, "podinfo", ns)
    assert node_selector(target) == {naming.SCALE_TO_ZERO_NODE_SELECTOR: "true"}
    informer = ctx.caches.informer(DAEMON_SET)

    def parked() -> bool:
        cached = informer.get("podinfo", ns) or {}
        status = cached.get("status") or {}
        return cached.get("metadata", {}).get("generation") == status.get(
            "observedGeneration"
        ) and not status.get("desiredNumberScheduled")

    await until(parked, "no node to schedule the parked DaemonSet on")
    assert (await controller.fingerprint(canary)).spec_hash == before.spec_hash
    assert await counting_writes(ctx.api, lambda: controller.scale_to_zero(canary)) == {}

    await controller.scale_from_zero(canary)
    assert node_selector(await ctx.api.get(DAEMON_SET, "podinfo", ns)) == {}
    await controller.scale_to_zero(canary)
    await controller.finalize(canary)
    assert node_selector(await ctx.api.get(DAEMON_SET, "podinfo", ns)) == {}


async def test_an_on_delete_daemonset_is_refused_with_flaggers_message(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DAEMON_SET, daemonset(ns, strategy="OnDelete"))

    with pytest.raises(TargetError) as error:
        await DaemonSetController(ctx).initialize(make_canary(ns, "DaemonSet"))

    assert str(error.value) == (
        f"daemonset podinfo.{ns} must have RollingUpdate strategy but have OnDelete"
    )
    assert error.value.retriable, "the user can fix the strategy; no rollback"
    assert await ctx.api.get_or_none(DAEMON_SET, "podinfo-primary", ns) is None


def hpa(ns: str, max_replicas: int = 4) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 99},
                    },
                }
            ],
        },
    }


HPA_REF = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}


async def test_the_primary_hpa_is_created_at_init_and_updated_only_on_promotion(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, HPA, hpa(ns))
    scaler = HpaScaler(ctx)
    canary = make_canary(ns, autoscalerRef=HPA_REF)

    await scaler.reconcile_primary_scaler(canary, init=True)
    primary = await ctx.api.get(HPA, "podinfo-primary", ns)
    assert primary["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert primary["spec"]["maxReplicas"] == 4
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"

    await patch(ctx, ns, HPA, "podinfo", {"spec": {"maxReplicas": 10}})
    assert (
        await counting_writes(ctx.api, lambda: scaler.reconcile_primary_scaler(canary, init=True))
        == {}
    )
    await scaler.reconcile_primary_scaler(canary, init=False)
    assert (await ctx.api.get(HPA, "podinfo-primary", ns))["spec"]["maxReplicas"] == 10
    await until(
        lambda: (
            (ctx.caches.informer(HPA).get("podinfo-primary", ns) or {})["spec"]["maxReplicas"] == 10
        ),
        "the updated primary HPA in the cache",
    )
    assert (
        await counting_writes(ctx.api, lambda: scaler.reconcile_primary_scaler(canary, init=False))
        == {}
    )
    assert await counting_writes(ctx.api, lambda: scaler.pause_target_scaler(canary)) == {}


async def test_a_missing_hpa_is_reported_in_flaggers_words(ns: str, ctx: ClusterContext) -> None:
    with pytest.raises(TargetError) as error:
        await HpaScaler(ctx).reconcile_primary_scaler(
            make_canary(ns, autoscalerRef=HPA_REF), init=True
        )
    assert str(error.value) == f"HorizontalPodAutoscaler podinfo.{ns} get query error: not found"


async def test_scale_from_zero_with_an_hpa_starts_at_its_minimum(
    ns: str, ctx: ClusterContext
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DEPLOYMENT, deployment(ns, replicas=0))
    await write(ctx, HPA, hpa(ns))
    controller = DeploymentController(ctx)
    canary = make_canary(ns, autoscalerRef=HPA_REF, phase="Initialized")
    await controller.initialize(canary)

    await controller.scale_from_zero(canary)

    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 2


SO_REF = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"}


def scaled_object(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": "podinfo",
            "namespace": ns,
            "annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"},
        },
        "spec": {
            "scaleTargetRef": {"name": "podinfo"},
            "minReplicaCount": 2,
            "maxReplicaCount": 5,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "query": 'sum(rate(http_requests_total{app="podinfo-canary"}[1m]))',
                        "threshold": "10",
                    },
                }
            ],
        },
    }


@pytest.mark.devcluster_only("the session's real control plane serves KEDA's CRD for other tests")
async def test_keda_without_its_crd_is_a_clear_retriable_error(
    ns: str, ctx: ClusterContext
) -> None:
    scaler = KedaScaler(ctx, sync_timeout=0.2)

    with pytest.raises(KindUnavailable) as error:
        await scaler.reconcile_primary_scaler(make_canary(ns, autoscalerRef=SO_REF), init=True)

    assert "ScaledObject (keda.sh/v1alpha1)" in str(error.value)
    assert error.value.retriable


async def test_keda_primary_scaled_object_and_pausing_the_target(
    ns: str, apiserver: ApiServer, ctx: ClusterContext
) -> None:
    apiserver.serve_optional_crds()
    await write(ctx, SCALED_OBJECT, scaled_object(ns))
    scaler = KedaScaler(ctx)
    canary = make_canary(ns, autoscalerRef=SO_REF)

    await scaler.reconcile_primary_scaler(canary, init=True)
    primary = await ctx.api.get(SCALED_OBJECT, "podinfo-primary", ns)
    assert primary["spec"]["scaleTargetRef"] == {"name": "podinfo-primary"}
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == (
        'sum(rate(http_requests_total{app="podinfo-primary"}[1m]))'
    )
    assert primary["metadata"]["annotations"] == {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true"
    }

    await scaler.pause_target_scaler(canary)
    target = await ctx.api.get(SCALED_OBJECT, "podinfo", ns)
    assert target["metadata"]["annotations"][naming.KEDA_PAUSED_REPLICAS_ANNOTATION] == "0"
    assert await counting_writes(ctx.api, lambda: scaler.pause_target_scaler(canary)) == {}

    await scaler.resume_target_scaler(canary)
    target = await ctx.api.get(SCALED_OBJECT, "podinfo", ns)
    assert naming.KEDA_PAUSED_REPLICAS_ANNOTATION not in target["metadata"]["annotations"]
    assert await counting_writes(ctx.api, lambda: scaler.resume_target_scaler(canary)) == {}
