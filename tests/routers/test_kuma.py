"""Kuma TrafficRoute router (Flagger's kuma.go and kuma_test.go): the route is cluster-scoped,
splits by `kuma.io/service` tags and is validated against Kuma's CRD and its protobuf shape."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.routers.base import Routes
from coalmine.routers.common import Delete, RouterError
from coalmine.routers.kuma import ROUTER
from coalmine.routers.verdict import Options, compatibility
from routers.canaries import apply, make_canary
from routers.schemas import assert_valid


def split(obj: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (s["destination"]["kuma.io/service"], s["weight"]) for s in obj["spec"]["conf"]["split"]
    ]


def test_initialization_writes_a_cluster_scoped_route_at_100_0() -> None:
    canary = make_canary(service={"apex": {"labels": {"team": "a"}}})
    (route,) = ROUTER.reconcile(canary, [])
    assert_valid(route)
    assert route["mesh"] == "default"
    assert route["metadata"]["name"] == "podinfo"
    assert route["metadata"]["labels"] == {"team": "a"}
    assert "namespace" not in route["metadata"]
    assert "ownerReferences" not in route["metadata"]
    assert route["spec"]["sources"] == [{"match": {"kuma.io/service": "*"}}]
    assert route["spec"]["destinations"] == [
        {"match": {"kuma.io/service": "podinfo_default_svc_9898"}}
    ]
    assert split(route) == [
        ("podinfo-primary_default_svc_9898", 100),
        ("podinfo-canary_default_svc_9898", 0),
    ]


def test_the_mesh_comes_from_the_canarys_kuma_annotation() -> None:
    body = make_canary().model_dump(by_alias=True, exclude_none=True, mode="json")
    body["metadata"]["annotations"] = {"kuma.io/mesh": "payments"}
    (route,) = ROUTER.reconcile(type(make_canary()).model_validate(body), [])
    assert route["mesh"] == "payments"


@pytest.mark.parametrize(("primary", "weight"), [(80, 20), (40, 60), (0, 100)])
def test_weights_round_trip_and_reconcile_keeps_them(primary: int, weight: int) -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    update = ROUTER.set_routes(canary, cluster, primary, weight)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    assert ROUTER.get_routes(canary, cluster) == Routes(primary, weight)
    assert update.objects[0]["mesh"] == "default"
    relabelled = make_canary(service={"apex": {"labels": {"new": "label"}}})
    (written,) = ROUTER.reconcile(relabelled, cluster)
    assert split(written)[0][1] == primary


def test_another_namespaces_route_of_the_same_name_is_not_taken_over() -> None:
    theirs = ROUTER.reconcile(make_canary(), [])[0]
    theirs["spec"]["destinations"] = [{"match": {"kuma.io/service": "podinfo_other_svc_9898"}}]
    canary = make_canary()
    for call in (
        lambda: ROUTER.reconcile(canary, [theirs]),
        lambda: ROUTER.get_routes(canary, [theirs]),
        lambda: ROUTER.set_routes(canary, [theirs], 50, 50),
    ):
        with pytest.raises(RouterError, match="routes podinfo_other_svc_9898 of namespace other"):
            call()
    assert ROUTER.finalize(canary, [theirs]) == []


def test_finalize_deletes_the_route_nothing_else_would_collect() -> None:
    canary = make_canary()
    cluster = apply([], ROUTER.reconcile(canary, []))
    (action,) = ROUTER.finalize(canary, cluster)
    assert isinstance(action, Delete)
    assert (action.ref.kind, action.ref.name, action.ref.namespace) == (
        "TrafficRoute",
        "podinfo",
        "",
    )


def test_get_routes_without_the_primary_split_is_an_error() -> None:
    canary = make_canary()
    (route,) = ROUTER.reconcile(canary, [])
    route["spec"]["conf"]["split"] = []
    with pytest.raises(RouterError, match="does not contain routes for podinfo-primary"):
        ROUTER.get_routes(canary, [route])


def test_check_and_controller_refuse_ab_and_external_names_and_warn_about_leftovers() -> None:
    ab = make_canary(
        provider="kuma",
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        },
    )
    assert {(p.path, p.severity) for p in compatibility(ab, Options())} >= {
        ("spec.analysis.match", "error")
    }
    plain = make_canary(provider="kuma", analysis={"mirror": True})
    severities = {p.path: p.severity for p in compatibility(plain, Options())}
    assert severities == {"spec.analysis.mirror": "warning", "spec.revertOnDeletion": "warning"}
    reverting = make_canary(provider="kuma", extra_spec={"revertOnDeletion": True})
    assert compatibility(reverting, Options()) == []
    external = {"spec": {"type": "ExternalName", "externalName": "x.example.com"}}
    service_target = make_canary(provider="kuma", target_kind="Service")
    errors = [
        p for p in compatibility(service_target, Options(), external) if p.severity == "error"
    ]
    assert [p.path for p in errors] == ["spec.targetRef"]


def test_a_tcp_service_is_split_by_kuma_but_refused_by_gloo() -> None:
    """A TrafficRoute split is L4; a Gloo RouteTable routes HTTP only."""
    kuma = make_canary(provider="kuma", service={"appProtocol": "tcp"})
    assert [p for p in compatibility(kuma, Options()) if p.severity == "error"] == []
    gloo = make_canary(provider="gloo", service={"appProtocol": "tcp"})
    errors = [p.path for p in compatibility(gloo, Options()) if p.severity == "error"]
    assert errors == ["spec.service.appProtocol"]
