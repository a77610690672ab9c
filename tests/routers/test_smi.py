"""SMI TrafficSplit router: Linkerd (v1alpha1), OSM (v1alpha2), v1alpha3 (Flagger's smi*.go)."""

from __future__ import annotations

import pytest

from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.registry import router_for
from coalmine.routers.smi import (
    LINKERD,
    OSM,
    ROUTER_V1ALPHA1,
    ROUTER_V1ALPHA2,
    ROUTER_V1ALPHA3,
    SMIRouter,
)
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid

ROUTERS = [ROUTER_V1ALPHA1, ROUTER_V1ALPHA2, ROUTER_V1ALPHA3, LINKERD, OSM]


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.provider)
def test_initialization_splits_100_0_between_the_copies(router: SMIRouter) -> None:
    (split,) = router.reconcile(make_canary(), [])
    assert_valid(split)
    assert split["apiVersion"] == f"split.smi-spec.io/{router.version}"
    expected_primary = "100" if router.version == "v1alpha1" else 100
    expected_canary = "0" if router.version == "v1alpha1" else 0
    assert split["spec"] == {
        "service": "podinfo",
        "backends": [
            {"service": "podinfo-canary", "weight": expected_canary},
            {"service": "podinfo-primary", "weight": expected_primary},
        ],
    }


def test_linkerd_and_osm_use_v1alpha1_and_v1alpha2() -> None:
    assert LINKERD.version == "v1alpha1"
    assert OSM.version == "v1alpha2"


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.provider)
def test_the_split_service_is_the_first_host(router: SMIRouter) -> None:
    canary = make_canary(service={"hosts": ["podinfo.example.svc", "other"]})
    (split,) = router.reconcile(canary, [])
    assert split["spec"]["service"] == "podinfo.example.svc"


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.provider)
def test_set_routes_and_get_routes_round_trip(router: SMIRouter) -> None:
    canary = make_canary()
    cluster = apply([], router.reconcile(canary, []))
    for primary, weight in [(80, 20), (60, 40), (40, 60), (0, 100), (100, 0)]:
        update = router.set_routes(canary, cluster, primary, weight)
        assert_valid(*update.objects)
        cluster = apply(cluster, update.objects)
        assert router.get_routes(canary, cluster) == Routes(primary, weight)


def test_v1alpha1_weights_may_be_quantities() -> None:
    canary = make_canary()
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-canary", "weight": "30"},
                {"service": "podinfo-primary", "weight": 70},
            ],
        },
    }
    assert LINKERD.get_routes(canary, [split]) == Routes(70, 30)


def test_get_routes_fails_without_weights() -> None:
    canary = make_canary()
    (split,) = LINKERD.reconcile(canary, [])
    split["spec"]["backends"] = []
    with pytest.raises(RouterError, match="does not contain routes for podinfo-primary"):
        LINKERD.get_routes(canary, [split])


def test_reconcile_keeps_live_weights_and_foreign_labels() -> None:
    canary = make_canary()
    cluster = apply([], OSM.reconcile(canary, []))
    cluster = apply(cluster, OSM.set_routes(canary, cluster, 60, 40).objects)
    cluster[0]["metadata"]["labels"] = {"foreign": "yes"}
    assert OSM.reconcile(canary, cluster) == []
    (written,) = OSM.reconcile(make_canary(service={"hosts": ["podinfo.test"]}), cluster)
    assert written["spec"]["service"] == "podinfo.test"
    assert [b["weight"] for b in written["spec"]["backends"]] == [40, 60]
    assert written["metadata"]["labels"] == {"foreign": "yes"}


def test_istio_mesh_suffix_adds_the_gateways_annotation() -> None:
    router = router_for("smi:v1alpha1:istio").router
    assert isinstance(router, SMIRouter)
    assert router.mesh == "istio"
    canary = make_canary(service={"gateways": ["public-gateway"]})
    (split,) = router.reconcile(canary, [])
    assert split["metadata"]["annotations"] == {
        "VirtualService.v1alpha3.networking.istio.io/spec.gateways": '["public-gateway"]'
    }
    (plain,) = LINKERD.reconcile(canary, [])
    assert "annotations" not in plain["metadata"]


def test_external_name_backends_cannot_be_split_by_linkerd() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.example.com"}}
    (problem,) = LINKERD.compatibility(make_canary(), "Service", external)
    assert problem.severity == "error"
    assert "ExternalName" in str(problem)


def test_ab_testing_is_refused_and_mirroring_reported_as_ignored() -> None:
    canary = make_canary(
        analysis={
            "stepWeight": None,
            "iterations": 3,
            "mirror": True,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        }
    )
    found = {p.path: p.severity for p in LINKERD.compatibility(canary, "Deployment", None)}
    assert found == {"spec.analysis.match": "error", "spec.analysis.mirror": "warning"}
