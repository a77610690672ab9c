"""Traefik TraefikService router (Flagger's traefik.go and traefik_test.go)."""

from __future__ import annotations

import pytest

from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.traefik import ROUTER
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid


def services(obj: dict) -> list[dict]:  # type: ignore[type-arg]
    return list(obj["spec"]["weighted"]["services"])


def test_initialization_routes_only_to_the_primary() -> None:
    canary = make_canary(service={"apex": {"annotations": {"a": "b"}, "labels": {"l": "v"}}})
    (obj,) = ROUTER.reconcile(canary, [])
    assert_valid(obj)
    assert services(obj) == [
        {"name": "podinfo-primary", "namespace": "default", "port": 9898, "weight": 100}
    ]
    assert obj["metadata"]["labels"] == {"l": "v"}
    assert obj["metadata"]["annotations"]["a"] == "b"


def test_canary_entry_exists_only_while_it_has_weight() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, 60, 40)
    assert_valid(*update.objects)
    assert [(s["name"], s["weight"]) for s in services(update.objects[0])] == [
        ("podinfo-primary", 60),
        ("podinfo-canary", 40),
    ]
    cluster = apply(cluster, update.objects)
    assert ROUTER.get_routes(canary, cluster) == Routes(60, 40)
    update = ROUTER.set_routes(canary, cluster, 100, 0)
    assert [s["name"] for s in services(update.objects[0])] == ["podinfo-primary"]


def test_set_routes_refuses_zero_weights() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    with pytest.raises(RouterError, match="no valid weights"):
        ROUTER.set_routes(canary, cluster, 0, 0)


@pytest.mark.parametrize(("primary", "weight"), [(100, 0), (80, 20), (0, 100)])
def test_reconcile_keeps_the_live_split(primary: int, weight: int) -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, primary, weight).objects)
    changed = make_canary(service={"apex": {"labels": {"new": "label"}}})
    (written,) = ROUTER.reconcile(changed, cluster)
    assert_valid(written)
    assert written["metadata"]["labels"] == {"new": "label"}
    cluster = apply(cluster, [written])
    assert ROUTER.get_routes(canary, cluster) == Routes(primary, weight)


def test_get_routes_fails_without_the_primary_entry() -> None:
    canary = make_canary()
    (obj,) = ROUTER.reconcile(canary, [])
    obj["spec"]["weighted"]["services"] = []
    with pytest.raises(RouterError, match="has no service podinfo-primary"):
        ROUTER.get_routes(canary, [obj])


def test_external_name_is_a_caveat_and_ab_testing_is_refused() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.example.com"}}
    (caveat,) = ROUTER.compatibility(make_canary(), "Service", external)
    assert caveat.severity == "warning"
    assert "allowExternalNameServices" in str(caveat)
    ab = make_canary(
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        }
    )
    assert any(p.severity == "error" for p in ROUTER.compatibility(ab, "Deployment", None))
