"""Service targets on devcluster: `<apex>-canary` / `<apex>-primary` copies under the API server's
real allocation and validation rules, revisions, promotion, and writes only on difference."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.api import Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import SERVICE
from coalmine.targets.base import TargetChanged
from coalmine.targets.errors import TargetError
from coalmine.targets.service import KEEP_TYPE_ANNOTATION
from coalmine.targets.service_controller import ServiceTargetController

from .io_helpers import (
    USER_APIS,
    cached,
    counting_writes,
    current_revision,
    make_canary,
    owner_uid,
    patch,
    service,
    write,
)
from .scheduler_rig import ClusterRig


async def get(ns: str, ctx: ClusterContext, name: str) -> Object:
    return await ctx.api.get(SERVICE, name, ns)


async def services(
    ns: str, ctx: ClusterContext, apex: str = "podinfo"
) -> tuple[Object, Object, Object]:
    """(target, primary copy, canary copy) as the server holds them."""
    return (
        await get(ns, ctx, "podinfo"),
        await get(ns, ctx, f"{apex}-primary"),
        await get(ns, ctx, f"{apex}-canary"),
    )


def node_ports(svc: Object) -> list[int]:
    return [int(port["nodePort"]) for port in svc["spec"].get("ports") or [] if "nodePort" in port]


def owned_by_canary(svc: Object) -> bool:
    refs = svc["metadata"].get("ownerReferences") or []
    return [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [
        ("Canary", owner_uid(svc["metadata"]["namespace"]), True)
    ]


async def test_clusterip_copies_get_their_own_cluster_ips_and_the_targets_selector(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)

    await controller.initialize(make_canary(ns, "Service"))

    target, primary, canary = await services(ns, ctx)
    ips = [svc["spec"]["clusterIP"] for svc in (target, primary, canary)]
    assert all(ips)
    assert len(set(ips)) == 3
    for copy in (primary, canary):
        assert copy["spec"]["clusterIPs"] == [copy["spec"]["clusterIP"]]
        assert copy["spec"]["selector"] == {"app": "podinfo-blue"}
        assert copy["spec"]["ports"][0]["targetPort"] == "http"
        assert owned_by_canary(copy)
    assert "ownerReferences" not in target["metadata"]


async def test_a_new_selector_moves_the_canary_copy_and_waits_for_promotion_on_the_primary(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    _, primary_before, canary_before = await services(ns, ctx)
    blue = await controller.fingerprint(canary)

    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}})
    green = await controller.fingerprint(canary)
    assert green.spec_hash != blue.spec_hash
    assert green.tracked_configs is None
    await controller.initialize(canary)

    _, primary, canary_copy = await services(ns, ctx)
    assert canary_copy["spec"]["selector"] == {"app": "podinfo-green"}
    assert canary_copy["spec"]["clusterIP"] == canary_before["spec"]["clusterIP"]
    assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
    assert primary["metadata"]["resourceVersion"] == primary_before["metadata"]["resourceVersion"]

    release_green = await current_revision(controller, canary)
    await controller.promote(canary, release_green)

    _, promoted, _ = await services(ns, ctx)
    assert promoted["spec"]["selector"] == {"app": "podinfo-green"}
    assert promoted["spec"]["clusterIP"] == primary_before["spec"]["clusterIP"]
    assert owned_by_canary(promoted)
    assert promoted["metadata"]["annotations"][naming.PROMOTED_REVISION_ANNOTATION] == (
        release_green
    )
    assert (await controller.fingerprint(canary)).primary_revision == release_green
    assert (await controller.fingerprint(canary)).spec_hash == green.spec_hash
    revision = await current_revision(controller, canary)
    assert await counting_writes(ctx.api, lambda: controller.promote(canary, revision)) == {}


SHAPES: dict[str, Callable[[str], dict[str, Any]]] = {
    "ClusterIP": service,
    "headless": lambda ns: service(ns, clusterIP="None"),
    "NodePort": lambda ns: service(ns, service_type="NodePort"),
    "LoadBalancer": lambda ns: service(
        ns, service_type="LoadBalancer", externalTrafficPolicy="Local"
    ),
    "ExternalName": lambda ns: service(
        ns, selector=None, service_type="ExternalName", externalName="lb.blue.example.com"
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_second_initialize_with_nothing_changed_makes_no_write(
    ns: str, ctx: ClusterContext, shape: str
) -> None:
    target = SHAPES[shape](ns)
    target["metadata"]["labels"]["app.kubernetes.io/name"] = "podinfo"
    target["metadata"]["annotations"] = {"app.kubernetes.io/version": "1"}
    ctx = dataclasses.replace(ctx, include_label_prefixes=("app.kubernetes.io/",))
    await write(ctx, SERVICE, target)
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    first = await counting_writes(ctx.api, lambda: controller.initialize(canary))
    assert first == {"create services": 2}
    # The watch brings the copies back; the next cycle reads them from the cache.
    for name in ("podinfo-primary", "podinfo-canary"):
        await write_seen(ns, ctx, name)

    gets_before = ctx.api.requests["get services"]
    second = await counting_writes(ctx.api, lambda: controller.initialize(canary))

    assert second == {}
    assert ctx.api.requests["get services"] == gets_before, "steady state reads the cache"


async def write_seen(ns: str, ctx: ClusterContext, name: str) -> None:
    """Wait until the watch cache holds the copy as the server has it."""
    await cached(ctx, SERVICE, await get(ns, ctx, name))


async def test_node_ports_are_allocated_per_copy_without_collisions(
    ns: str, ctx: ClusterContext
) -> None:
    await write(
        ctx,
        SERVICE,
        service(
            ns,
            service_type="LoadBalancer",
            externalTrafficPolicy="Local",
            ports=[
                {"name": "http", "port": 9898, "targetPort": 9898},
                {"name": "grpc", "port": 9999, "targetPort": 9999},
            ],
        ),
    )
    controller = ServiceTargetController(ctx)
    canary = keeping_type(make_canary(ns, "Service"))
    await controller.initialize(canary)

    target, primary, canary_copy = await services(ns, ctx)
    allocated = [*node_ports(target), *node_ports(primary), *node_ports(canary_copy)]
    assert len(allocated) == 6
    assert len(set(allocated)) == 6
    health = [svc["spec"]["healthCheckNodePort"] for svc in (target, primary, canary_copy)]
    assert len(set(health)) == 3
    assert not set(health) & set(allocated)

    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}})
    await controller.initialize(canary)
    await controller.promote(canary, await current_revision(controller, canary))
    _, promoted, moved = await services(ns, ctx)
    assert node_ports(promoted) == node_ports(primary)
    assert node_ports(moved) == node_ports(canary_copy)
    assert promoted["spec"]["healthCheckNodePort"] == primary["spec"]["healthCheckNodePort"]


def keeping_type(canary: Canary) -> Canary:
    """The Canary's opt-in to copies of the target's NodePort/LoadBalancer type."""
    canary.metadata.annotations = {KEEP_TYPE_ANNOTATION: "true"}
    return canary


async def test_a_load_balancer_target_gets_cluster_ip_copies_by_default(
    ns: str, ctx: ClusterContext
) -> None:
    await write(
        ctx, SERVICE, service(ns, service_type="LoadBalancer", externalTrafficPolicy="Local")
    )
    await ServiceTargetController(ctx).initialize(make_canary(ns, "Service"))
    target, primary, canary_copy = await services(ns, ctx)
    for copy in (primary, canary_copy):
        assert copy["spec"]["type"] == "ClusterIP"
        assert not node_ports(copy)
        assert "healthCheckNodePort" not in copy["spec"]
        assert "externalTrafficPolicy" not in copy["spec"]
    assert target["spec"]["type"] == "LoadBalancer"


async def test_a_nodeport_target_gets_nodeport_copies(ns: str, ctx: ClusterContext) -> None:
    await write(ctx, SERVICE, service(ns, service_type="NodePort"))
    await ServiceTargetController(ctx).initialize(keeping_type(make_canary(ns, "Service")))

    target, primary, canary_copy = await services(ns, ctx)
    assert {primary["spec"]["type"], canary_copy["spec"]["type"]} == {"NodePort"}
    ports = [*node_ports(target), *node_ports(primary), *node_ports(canary_copy)]
    assert len(set(ports)) == 3


async def test_an_external_name_target_is_released_by_its_external_name(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, SHAPES["ExternalName"](ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    before = await controller.fingerprint(canary)

    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"externalName": "lb.green.example.com"}})
    assert (await controller.fingerprint(canary)).spec_hash != before.spec_hash
    await controller.initialize(canary)
    _, primary, canary_copy = await services(ns, ctx)
    assert canary_copy["spec"]["externalName"] == "lb.green.example.com"
    assert primary["spec"]["externalName"] == "lb.blue.example.com"
    for copy in (primary, canary_copy):
        assert copy["spec"]["type"] == "ExternalName"
        assert "clusterIP" not in copy["spec"]
        assert "clusterIPs" not in copy["spec"]

    await controller.promote(canary, await current_revision(controller, canary))
    _, promoted, _ = await services(ns, ctx)
    assert promoted["spec"]["externalName"] == "lb.green.example.com"


async def test_a_headless_target_gets_headless_copies(ns: str, ctx: ClusterContext) -> None:
    await write(ctx, SERVICE, SHAPES["headless"](ns))
    await ServiceTargetController(ctx).initialize(make_canary(ns, "Service"))

    _, primary, canary_copy = await services(ns, ctx)
    assert primary["spec"]["clusterIP"] == "None"
    assert canary_copy["spec"]["clusterIP"] == "None"


async def test_switching_the_target_to_external_name_and_back_is_followed_by_the_copies(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    _, primary_before, _ = await services(ns, ctx)

    await write(ctx, SERVICE, SHAPES["ExternalName"](ns))
    await controller.initialize(canary)
    _, primary, canary_copy = await services(ns, ctx)
    assert canary_copy["spec"]["type"] == "ExternalName"
    assert "clusterIP" not in canary_copy["spec"]
    assert primary["spec"]["clusterIP"] == primary_before["spec"]["clusterIP"]

    await controller.promote(canary, await current_revision(controller, canary))
    _, promoted, _ = await services(ns, ctx)
    assert promoted["spec"]["type"] == "ExternalName"
    assert promoted["metadata"]["uid"] == primary_before["metadata"]["uid"]

    await write(ctx, SERVICE, service(ns, selector="podinfo-green"))
    await controller.initialize(canary)
    _, _, back = await services(ns, ctx)
    assert back["spec"]["type"] == "ClusterIP"
    assert back["spec"]["clusterIP"]
    assert back["spec"]["selector"] == {"app": "podinfo-green"}


async def test_a_target_turning_headless_recreates_the_copy(ns: str, ctx: ClusterContext) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    _, primary_before, canary_before = await services(ns, ctx)

    # A Service cannot turn headless in place: the user recreates the target too.
    await USER_APIS[ns].delete(SERVICE, "podinfo", ns)
    await write(ctx, SERVICE, SHAPES["headless"](ns))
    await controller.initialize(canary)
    _, primary, canary_copy = await services(ns, ctx)
    assert canary_copy["spec"]["clusterIP"] == "None"
    assert canary_copy["metadata"]["uid"] != canary_before["metadata"]["uid"]
    assert owned_by_canary(canary_copy)
    assert primary["metadata"]["uid"] == primary_before["metadata"]["uid"]

    await controller.promote(canary, await current_revision(controller, canary))
    _, promoted, _ = await services(ns, ctx)
    assert promoted["spec"]["clusterIP"] == "None"
    assert promoted["metadata"]["annotations"][naming.PROMOTED_REVISION_ANNOTATION] == (
        await current_revision(controller, canary)
    )
    assert owned_by_canary(promoted)


async def test_copies_are_named_after_spec_service_name(ns: str, ctx: ClusterContext) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service", service={"port": 9898, "name": "web"})

    await controller.initialize(canary)
    await controller.promote(canary, await current_revision(controller, canary))

    target, primary, canary_copy = await services(ns, ctx, apex="web")
    assert (
        primary["spec"]["selector"] == canary_copy["spec"]["selector"] == target["spec"]["selector"]
    )
    assert await ctx.api.get_or_none(SERVICE, "podinfo-primary", ns) is None
    assert await ctx.api.get_or_none(SERVICE, "podinfo-canary", ns) is None
    assert (await controller.fingerprint(canary)).primary_revision == (
        await current_revision(controller, canary)
    )


async def test_copies_carry_prefixed_metadata_and_keep_what_others_wrote(
    ns: str,
    ctx: ClusterContext,
) -> None:
    target = service(ns)
    target["metadata"]["labels"] = {"app.kubernetes.io/name": "podinfo", "team": "web"}
    target["metadata"]["annotations"] = {
        "app.kubernetes.io/version": "1.0",
        "owner": "someone",
        naming.KUBECTL_LAST_APPLIED_ANNOTATION: "{}",
    }
    ctx = dataclasses.replace(ctx, include_label_prefixes=("app.kubernetes.io/",))
    await write(ctx, SERVICE, target)
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    _, primary, canary_copy = await services(ns, ctx)
    for copy in (primary, canary_copy):
        assert copy["metadata"]["labels"] == {"app.kubernetes.io/name": "podinfo"}
        assert copy["metadata"]["annotations"] == {"app.kubernetes.io/version": "1.0"}

    await patch(ctx, ns, SERVICE, "podinfo-canary", {"metadata": {"labels": {"zone": "a"}}})
    await patch(
        ctx,
        ns,
        SERVICE,
        "podinfo",
        {"metadata": {"annotations": {"app.kubernetes.io/version": "2"}}},
    )
    await controller.initialize(canary)
    _, _, canary_copy = await services(ns, ctx)
    assert canary_copy["metadata"]["labels"] == {"app.kubernetes.io/name": "podinfo", "zone": "a"}
    assert canary_copy["metadata"]["annotations"] == {"app.kubernetes.io/version": "2"}
    await write_seen(ns, ctx, "podinfo-canary")
    assert await counting_writes(ctx.api, lambda: controller.initialize(canary)) == {}


async def test_a_missing_target_service_is_a_retriable_error_naming_it(
    ns: str,
    ctx: ClusterContext,
) -> None:
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    for call in (controller.initialize, controller.fingerprint):
        with pytest.raises(TargetError) as error:
            await call(canary)
        assert str(error.value) == f"service podinfo.{ns} get query error: not found"
        assert error.value.retriable
    assert (await controller.get_metadata(canary)).label == ""


async def test_a_service_release_runs_through_the_scheduler_with_the_kubernetes_provider(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns))
    rig = ClusterRig(ctx, make_canary(ns, "Service", provider="kubernetes"))
    await rig.cycle_until("Initialized")

    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}})
    await rig.cycle_until("Succeeded")

    target, primary, canary_copy = await services(ns, ctx)
    assert primary["spec"]["selector"] == {"app": "podinfo-green"}
    assert canary_copy["spec"]["selector"] == {"app": "podinfo-green"}
    assert owned_by_canary(primary)
    assert "ownerReferences" not in target["metadata"]
    assert f"Copying podinfo.{ns} template spec to podinfo-primary.{ns}" in rig.events.messages
    # the only Warning: which traffic is canaried with provider kubernetes (said once, on init)
    warnings = [m for kind, m in rig.events.seen if kind == "Warning"]
    assert [m.split(":")[0] for m in warnings] == ["provider kubernetes"], warnings


async def test_a_service_cycle_at_rest_makes_no_api_requests(ns: str, ctx: ClusterContext) -> None:
    await write(ctx, SERVICE, service(ns))
    rig = ClusterRig(ctx, make_canary(ns, "Service", provider="kubernetes"))
    await rig.cycle_until("Initialized")
    for name in ("podinfo-primary", "podinfo-canary"):
        await write_seen(ns, ctx, name)
    requests_before = ctx.api.request_total

    await rig.cycle()

    assert ctx.api.request_total == requests_before
    assert rig.phase == "Initialized"


async def test_promotion_wins_a_race_with_another_writer_by_reading_again(
    ns: str,
    ctx: ClusterContext,
) -> None:
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    await write_seen(ns, ctx, "podinfo-primary")
    stale = ctx.caches.informer(SERVICE).get("podinfo-primary", ns)
    assert stale is not None
    # Someone else writes the primary; this process's cache still holds the older copy.
    await USER_APIS[ns].patch(
        SERVICE, "podinfo-primary", {"metadata": {"labels": {"zone": "a"}}}, ns
    )
    await ctx.caches.informer(SERVICE).stop()
    ctx.caches.informer(SERVICE)._objects[(ns, "podinfo-primary")] = stale
    await patch_target_selector(ns, ctx, "podinfo-green")

    await controller.promote(canary, await current_revision(controller, canary))

    promoted = await get(ns, ctx, "podinfo-primary")
    assert promoted["spec"]["selector"] == {"app": "podinfo-green"}
    assert promoted["metadata"]["labels"]["zone"] == "a"
    assert promoted["metadata"]["annotations"][naming.PROMOTED_REVISION_ANNOTATION] == (
        await current_revision(controller, canary)
    )
    assert ctx.api.requests["replace services"] == 2


async def patch_target_selector(ns: str, ctx: ClusterContext, app: str) -> None:
    """Change the target directly (the informer of this test is stopped)."""
    written = await USER_APIS[ns].patch(
        SERVICE, "podinfo", {"spec": {"selector": {"app": app}}}, ns
    )
    await ctx.caches.informer(SERVICE).observe(written)


async def test_a_target_changed_after_its_analysis_is_not_promoted(
    ns: str, ctx: ClusterContext
) -> None:
    """The analysed revision is green; red arrives before the promotion copies the spec. Red was
    never analysed, so nothing is copied: the primary keeps blue until red has had its run."""
    await write(ctx, SERVICE, service(ns))
    controller = ServiceTargetController(ctx)
    canary = make_canary(ns, "Service")
    await controller.initialize(canary)
    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-green"}}})
    analysed = await current_revision(controller, canary)
    await patch(ctx, ns, SERVICE, "podinfo", {"spec": {"selector": {"app": "podinfo-red"}}})
    with pytest.raises(TargetChanged, match="changed since its analysis"):
        await controller.promote(canary, analysed)
    _, primary, _ = await services(ns, ctx)
    assert primary["spec"]["selector"] == {"app": "podinfo-blue"}
