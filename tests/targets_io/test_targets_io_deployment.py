"""Deployment targets on devcluster: primary creation with config copies, readiness gate,
revision detection, promotion with the revision mark, scaling and finalize."""

from __future__ import annotations

import pytest

from coalmine.api import naming
from coalmine.api.hashing import release_checksum
from coalmine.devcluster.simulator import FAIL_ROLLOUT
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CONFIG_MAP, DEPLOYMENT, SECRET, SERVICE
from coalmine.targets.base import TargetNotReady
from coalmine.targets.deployment_controller import DeploymentController
from coalmine.targets.errors import TargetError

from .io_helpers import (
    cached,
    configmap,
    counting_writes,
    deployment,
    initialize_until_ready,
    make_canary,
    owner_uid,
    patch,
    pod_template,
    secret,
    write,
)
from .scheduler_rig import ClusterRig


async def podinfo(ns: str, ctx: ClusterContext, image: str = "podinfo:6.0.0") -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DEPLOYMENT, deployment(ns, image))


async def test_initialize_creates_the_primary_with_config_copies_and_waits_for_its_rollout(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await podinfo(ns, ctx)
    controller = DeploymentController(ctx)
    canary = make_canary(ns)

    with pytest.raises(TargetNotReady) as first:
        await controller.initialize(canary)
    assert first.value.retriable
    assert first.value.message.startswith(
        f"podinfo-primary.{ns} not ready: waiting for rollout to finish"
    )
    await initialize_until_ready(controller, canary)

    primary = await ctx.api.get(DEPLOYMENT, "podinfo-primary", ns)
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["replicas"] == 2
    assert primary["metadata"]["ownerReferences"][0]["uid"] == owner_uid(ns)
    pod_spec = primary["spec"]["template"]["spec"]
    env_ref = pod_spec["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]
    assert env_ref["name"] == "podinfo-config-primary"
    assert pod_spec["volumes"][0]["secret"]["secretName"] == "podinfo-secret-primary"
    config_copy = await ctx.api.get(CONFIG_MAP, "podinfo-config-primary", ns)
    assert config_copy["data"] == {"color": "blue"}
    assert config_copy["binaryData"] == {"logo": "iVBORw0KGgo="}
    secret_copy = await ctx.api.get(SECRET, "podinfo-secret-primary", ns)
    assert (secret_copy["type"], secret_copy["data"]) == ("Opaque", {"token": "c2VjcmV0"})


async def test_an_existing_primary_is_left_alone_and_not_gated_after_initialisation(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await podinfo(ns, ctx)
    controller = DeploymentController(ctx)
    await initialize_until_ready(controller, make_canary(ns))
    await patch(ctx, ns, DEPLOYMENT, "podinfo", {"spec": {"template": pod_template_image("v2")}})
    progressing = make_canary(ns, phase="Progressing")

    writes = await counting_writes(ctx.api, lambda: controller.initialize(progressing))

    assert writes == {}
    primary = await ctx.api.get(DEPLOYMENT, "podinfo-primary", ns)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.0.0"


def pod_template_image(version: str) -> dict[str, object]:
    """The whole template (a merge patch replaces lists) with a new image."""
    return pod_template(f"podinfo:{version}")


async def test_scheduler_parks_the_target_only_after_the_primary_is_ready(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await podinfo(ns, ctx)
    rig = ClusterRig(ctx, make_canary(ns))

    await rig.cycle()
    assert rig.phase in ("", "Initializing")
    assert any(f"podinfo-primary.{ns} not ready" in m for m in rig.events.messages)
    target = await ctx.api.get(DEPLOYMENT, "podinfo", ns)
    assert target["spec"]["replicas"] == 2, "parked before the primary was ready"

    await rig.cycle_until("Initialized")
    target = await ctx.api.get(DEPLOYMENT, "podinfo", ns)
    assert target["spec"]["replicas"] == 0
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        assert await ctx.api.get_or_none(SERVICE, name, ns) is not None
    apex = await ctx.api.get(SERVICE, "podinfo", ns)
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}


async def test_a_release_runs_end_to_end_and_promotion_records_its_revision(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await podinfo(ns, ctx)
    canary = make_canary(ns)
    controller = DeploymentController(ctx)
    rig = ClusterRig(ctx, canary)
    await rig.cycle_until("Initialized")
    before = await controller.fingerprint(canary)
    assert before.primary_revision is None
    assert before.tracked_configs is not None
    assert set(before.tracked_configs) == {
        "configmap/podinfo-config",
        "secret/podinfo-secret",
    }

    await patch(ctx, ns, DEPLOYMENT, "podinfo", {"spec": {"template": pod_template_image("6.1.0")}})
    await write(ctx, CONFIG_MAP, configmap(ns, "green"))
    after = await controller.fingerprint(canary)
    assert after.spec_hash != before.spec_hash
    assert after.tracked_configs is not None
    assert (
        after.tracked_configs["configmap/podinfo-config"]
        != (before.tracked_configs["configmap/podinfo-config"])
    )

    await rig.cycle_until("Progressing")
    assert f"New revision detected! Scaling up podinfo.{ns}" in rig.events.messages
    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 2
    await rig.cycle_until("Succeeded")

    primary = await ctx.api.get(DEPLOYMENT, "podinfo-primary", ns)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.1.0"
    revision = release_checksum(after.spec_hash, after.tracked_configs)
    assert primary["metadata"]["annotations"][naming.PROMOTED_REVISION_ANNOTATION] == revision
    assert (await controller.fingerprint(canary)).primary_revision == revision
    config_copy = await ctx.api.get(CONFIG_MAP, "podinfo-config-primary", ns)
    assert config_copy["data"] == {"color": "green"}
    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 0


async def test_finalize_gives_the_target_the_primary_replicas_back(
    ns: str, ctx: ClusterContext
) -> None:
    await podinfo(ns, ctx)
    controller = DeploymentController(ctx)
    canary = make_canary(ns)
    await initialize_until_ready(controller, canary)
    await controller.scale_to_zero(canary)
    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 0
    await patch(ctx, ns, DEPLOYMENT, "podinfo-primary", {"spec": {"replicas": 3}})

    await controller.finalize(canary)

    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 3
    assert await counting_writes(ctx.api, lambda: controller.finalize(canary)) == {}


async def test_scale_from_zero_mirrors_the_primary_and_scaling_twice_writes_once(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await podinfo(ns, ctx)
    controller = DeploymentController(ctx)
    canary = make_canary(ns)
    await initialize_until_ready(controller, canary)
    await controller.scale_to_zero(canary)
    assert await counting_writes(ctx.api, lambda: controller.scale_to_zero(canary)) == {}

    await controller.scale_from_zero(canary)

    assert (await ctx.api.get(DEPLOYMENT, "podinfo", ns))["spec"]["replicas"] == 2


async def test_a_missing_target_is_a_retriable_error_naming_it(
    ns: str, ctx: ClusterContext
) -> None:
    controller = DeploymentController(ctx)
    canary = make_canary(ns)
    for call in (controller.get_metadata, controller.initialize, controller.fingerprint):
        with pytest.raises(TargetError) as error:
            await call(canary)
        assert str(error.value) == f"deployment podinfo.{ns} get query error: not found"
        assert error.value.retriable


async def test_a_target_without_a_selector_label_is_refused_with_flaggers_message(
    ns: str,
    ctx: ClusterContext,
) -> None:
    target = deployment(ns)
    target["spec"]["selector"] = {"matchLabels": {"role": "web"}}
    target["spec"]["template"]["metadata"]["labels"] = {"role": "web"}
    await write(ctx, DEPLOYMENT, target)
    controller = DeploymentController(ctx)

    with pytest.raises(TargetError) as error:
        await controller.get_metadata(make_canary(ns))

    assert str(error.value) == (
        f"deployment podinfo.{ns} spec.selector.matchLabels must contain one of "
        "[app name app.kubernetes.io/name]"
    )
    assert await ctx.api.get_or_none(DEPLOYMENT, "podinfo-primary", ns) is None


async def test_a_missing_mandatory_config_is_reported_and_nothing_is_created(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SECRET, secret(ns))
    await write(ctx, DEPLOYMENT, deployment(ns))
    controller = DeploymentController(ctx)

    with pytest.raises(TargetError) as error:
        await controller.initialize(make_canary(ns))

    assert str(error.value) == f"configmap podinfo-config.{ns} get query error: not found"
    assert error.value.retriable
    assert await ctx.api.get_or_none(DEPLOYMENT, "podinfo-primary", ns) is None


async def test_a_cycle_at_rest_makes_no_api_writes(ns: str, ctx: ClusterContext) -> None:
    await podinfo(ns, ctx)
    rig = ClusterRig(ctx, make_canary(ns))
    await rig.cycle_until("Initialized")
    for name in ("podinfo", "podinfo-primary"):
        await cached(ctx, DEPLOYMENT, await ctx.api.get(DEPLOYMENT, name, ns))
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        await cached(ctx, SERVICE, await ctx.api.get(SERVICE, name, ns))
    requests_before = ctx.api.request_total

    assert await counting_writes(ctx.api, rig.cycle) == {}
    assert ctx.api.request_total == requests_before, "a cycle at rest reads only the cache"
    assert rig.phase == "Initialized"


@pytest.mark.devcluster_only("devcluster's FAIL_ROLLOUT switch fails the primary's rollout")
async def test_a_primary_stuck_past_its_deadline_is_not_retriable(
    ns: str, ctx: ClusterContext
) -> None:
    await write(ctx, CONFIG_MAP, configmap(ns))
    await write(ctx, SECRET, secret(ns))
    # The primary inherits the target's annotations, so devcluster fails its rollout too.
    await write(ctx, DEPLOYMENT, deployment(ns, annotations={FAIL_ROLLOUT: "true"}))
    controller = DeploymentController(ctx)

    with pytest.raises(TargetNotReady) as error:
        await initialize_until_ready(controller, make_canary(ns))

    assert not error.value.retriable
    assert error.value.message == (
        f'podinfo-primary.{ns} not ready: deployment "podinfo-primary" exceeded its progress deadline'
    )
