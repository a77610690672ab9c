"""Every router through the controller's real I/O path (`MeshRouter`: watch-cache reads, writes on
difference) against devcluster serving the routers' official CRDs: each object the router writes
is validated and pruned by the API server, so a wrong field fails the write (422) or the read-back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.controller.seams import MeshRouter
from coalmine.kube.api import KubeApi
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import NAMESPACE, kind_for
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from targets_io.io_helpers import POLL_SECONDS, WAIT_SECONDS, counting_writes, make_canary
from tiered import ApiServer

from .gateway import AcceptingGateway
from .routing import (
    AB_PROVIDERS,
    MIRROR_PROVIDERS,
    PROVIDERS,
    ab_match,
    canary_spec,
    mesh_router,
    routing_object,
    seed,
    seed_copies,
    split_of,
)

STEPS = [(80, 20), (60, 40), (40, 60)]


async def live_routes(router: MeshRouter, canary: Canary) -> Routes:
    """get_routes once the route is readable (Gateway API: once its gateway accepted it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        try:
            return await router.get_routes(canary)
        except RouterError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(POLL_SECONDS)


async def prepared(
    ns: str, ctx: ClusterContext, provider: str, **analysis: Any
) -> tuple[Canary, MeshRouter]:
    await seed(ns, ctx.api, provider)
    if provider == "gloo":
        await seed_copies(ns, ctx.api)
    canary = make_canary(ns, "Service", **canary_spec(provider, **analysis))
    return canary, mesh_router(ctx, canary)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_weights_step_on_the_api_server_and_read_back(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    canary, router = await prepared(ns, ctx, provider)

    await router.reconcile(canary)

    assert split_of(await routing_object(ctx.api, canary, router.pure)) == (100, 0)
    assert await live_routes(router, canary) == Routes(100, 0, False)
    assert await counting_writes(ctx.api, lambda: router.reconcile(canary)) == {}

    for primary, weight in [*STEPS, (100, 0)]:
        await router.set_routes(canary, primary, weight, False)
        stored = await routing_object(ctx.api, canary, router.pure)
        assert split_of(stored) == (primary, weight)
        assert await live_routes(router, canary) == Routes(primary, weight, False)
        assert await counting_writes(ctx.api, lambda: router.reconcile(canary)) == {}, (
            f"reconcile at {primary}/{weight} rewrote a routing object"
        )


def assert_ab_routing(provider: str, obj: dict[str, Any]) -> None:
    """The matched requests go to the canary; everything else stays on the primary."""
    spec = obj.get("spec") or {}
    if provider == "istio":
        matched, rest = spec["http"]
        assert [m["headers"] for m in matched["match"]] == [
            {"x-canary": {"exact": "insider"}},
            {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}},
        ]
        assert [(d["destination"]["host"], d["weight"]) for d in matched["route"]] == [
            ("podinfo-primary", 0),
            ("podinfo-canary", 100),
        ]
        assert [d["destination"]["host"] for d in rest["route"]] == ["podinfo-primary"]
    elif provider.startswith("gatewayapi"):
        matched, rest = spec["rules"]
        assert [m["headers"] for m in matched["matches"]] == [
            [{"name": "x-canary", "type": "Exact", "value": "insider"}],
            [
                {
                    "name": "cookie",
                    "type": "RegularExpression",
                    "value": "^(.*?;)?(canary=always)(;.*)?$",
                }
            ],
        ]
        assert [(b["name"], b["weight"]) for b in matched["backendRefs"]] == [
            ("podinfo-primary", 0),
            ("podinfo-canary", 100),
        ]
        assert [b["name"] for b in rest["backendRefs"]] == ["podinfo-primary"]
    elif provider == "nginx":
        annotations = obj["metadata"]["annotations"]
        prefix = "nginx.ingress.kubernetes.io"
        assert annotations[f"{prefix}/canary"] == "true"
        assert annotations[f"{prefix}/canary-by-header"] == "x-canary"
        assert annotations[f"{prefix}/canary-by-header-value"] == "insider"
        assert annotations[f"{prefix}/canary-by-cookie"] == "canary"
        assert f"{prefix}/canary-weight" not in annotations
    elif provider == "contour":
        matched, rest = spec["routes"]
        assert {"header": {"name": "x-canary", "exact": "insider"}} in matched["conditions"]
        assert [(s["name"], s["weight"]) for s in matched["services"]] == [
            ("podinfo-primary", 0),
            ("podinfo-canary", 100),
        ]
        assert [(s["name"], s["weight"]) for s in rest["services"]] == [
            ("podinfo-primary", 100),
            ("podinfo-canary", 0),
        ]
    elif provider == "gloo":
        matched, rest = spec["routes"]
        assert matched["matchers"] == [
            {"headers": [{"name": "x-canary", "value": "insider"}]},
            {
                "headers": [
                    {"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": True}
                ]
            },
        ]
        assert split_of({**obj, "spec": {"routes": [matched]}}) == (0, 100)
        assert "matchers" not in rest
        assert split_of({**obj, "spec": {"routes": [rest]}}) == (100, 0)
    elif provider.startswith("appmesh"):
        header, cookie, rest = spec["routes"]
        assert [r["priority"] for r in (header, cookie, rest)] == [10, 11, 20]
        assert header["httpRoute"]["match"]["headers"] == [
            {"name": "x-canary", "match": {"exact": "insider"}}
        ]
        assert cookie["httpRoute"]["match"]["headers"] == [
            {"name": "cookie", "match": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}
        ]
        for matched in (header, cookie):
            assert [
                (t["virtualNodeRef"]["name"], t["weight"])
                for t in matched["httpRoute"]["action"]["weightedTargets"]
            ] == [("podinfo-canary", 100), ("podinfo-primary", 0)]
        assert [
            (t["virtualNodeRef"]["name"], t["weight"])
            for t in rest["httpRoute"]["action"]["weightedTargets"]
        ] == [("podinfo-primary", 100)]
    else:
        raise AssertionError(f"no A/B expectation for {provider}")


@pytest.mark.parametrize("provider", AB_PROVIDERS)
async def test_ab_testing_routes_matched_requests_to_the_canary(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    canary, router = await prepared(ns, ctx, provider, iterations=2, match=ab_match(provider))
    await router.reconcile(canary)

    await router.set_routes(canary, 0, 100, False)

    assert_ab_routing(provider, await routing_object(ctx.api, canary, router.pure))
    assert await live_routes(router, canary) == Routes(0, 100, False)

    await router.set_routes(canary, 100, 0, False)

    assert await live_routes(router, canary) == Routes(100, 0, False)
    assert await counting_writes(ctx.api, lambda: router.reconcile(canary)) == {}


def mirror_of(provider: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The mirror settings of the weighted route, or None."""
    if provider == "istio":
        route = obj["spec"]["http"][0]
        if "mirror" not in route:
            return None
        return {"host": route["mirror"]["host"], "percent": route["mirrorPercentage"]["value"]}
    rule = obj["spec"]["rules"][0]
    for item in rule.get("filters") or []:
        if item["type"] == "RequestMirror":
            mirror = item["requestMirror"]
            return {"host": mirror["backendRef"]["name"], "percent": mirror["percent"]}
    return None


@pytest.mark.parametrize("provider", MIRROR_PROVIDERS)
async def test_mirroring_copies_primary_traffic_to_the_canary(
    ns: str, ctx: ClusterContext, gateway: AcceptingGateway, provider: str
) -> None:
    canary, router = await prepared(ns, ctx, provider, mirror=True, mirrorWeight=50)
    await router.reconcile(canary)
    assert router.supports_mirroring

    await router.set_routes(canary, 100, 0, True)

    stored = await routing_object(ctx.api, canary, router.pure)
    assert mirror_of(provider, stored) == {"host": "podinfo-canary", "percent": 50}
    assert split_of(stored) == (100, 0)
    assert await live_routes(router, canary) == Routes(100, 0, True)
    assert await counting_writes(ctx.api, lambda: router.reconcile(canary)) == {}

    await router.set_routes(canary, 80, 20, False)

    stored = await routing_object(ctx.api, canary, router.pure)
    assert mirror_of(provider, stored) is None
    assert await live_routes(router, canary) == Routes(80, 20, False)


@pytest.mark.parametrize("provider", sorted(set(PROVIDERS) - set(MIRROR_PROVIDERS)))
def test_routers_without_mirroring_say_so(ns: str, ctx: ClusterContext, provider: str) -> None:
    canary = make_canary(ns, "Service", **canary_spec(provider))
    assert mesh_router(ctx, canary).supports_mirroring is False


@pytest.mark.devcluster_only("injects a 409 with devcluster's fault hook")
async def test_a_write_that_loses_a_race_is_recomputed_from_the_server(
    ns: str, ctx: ClusterContext, apiserver: ApiServer
) -> None:
    """409 on the replace: the router reads the object again and decides on what is there."""
    canary, router = await prepared(ns, ctx, "traefik")
    await router.reconcile(canary)
    kind = kind_for("traefik.io/v1alpha1", "TraefikService")
    await ctx.api.patch(kind, "podinfo", {"metadata": {"labels": {"team": "edge"}}}, ns)
    apiserver.hooks.faults.inject_error(
        409, "Conflict", "the object has been modified", verb="update", resource="traefikservices"
    )

    await router.set_routes(canary, 80, 20, False)

    stored = await routing_object(ctx.api, canary, router.pure)
    assert split_of(stored) == (80, 20)
    assert stored["metadata"]["labels"]["team"] == "edge"
    assert ctx.api.requests["replace traefikservices.traefik.io"] == 2
    assert ctx.api.requests["get traefikservices.traefik.io"] >= 1


async def test_gloo_clones_the_upstream_ref_of_a_namespace_the_controller_does_not_watch(
    ns: str, ctx: ClusterContext, admin_api: KubeApi
) -> None:
    """Gloo's discovery writes upstreams to its own namespace; with `--namespace` (the real
    tier) the watch cache never holds them, so the router reads that one from the API server."""
    settings_ns = f"{ns}-gloo"
    await admin_api.create(NAMESPACE, {"metadata": {"name": settings_ns}})
    upstream = kind_for("gloo.solo.io/v1", "Upstream")
    await admin_api.create(
        upstream,
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": "podinfo-settings", "namespace": settings_ns},
            "spec": {"useHttp2": True, "sslConfig": {"sni": "podinfo.example.com"}},
        },
    )
    await seed_copies(ns, ctx.api)
    ref = {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "podinfo-settings"}
    canary = make_canary(
        ns, "Service", **canary_spec("gloo"), upstreamRef={**ref, "namespace": settings_ns}
    )
    router = mesh_router(ctx, canary)

    await router.reconcile(canary)

    generated = await ctx.api.get(upstream, f"{ns}-podinfo-canaryupstream-9898", ns)
    assert generated["spec"]["useHttp2"] is True
    assert generated["spec"]["sslConfig"] == {"sni": "podinfo.example.com"}
    assert generated["spec"]["kube"]["serviceName"] == "podinfo-canary"
    assert await counting_writes(ctx.api, lambda: router.reconcile(canary)) == {}
