"""NGINX canary Ingress router (Flagger's ingress.go and ingress_test.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.nginx import ROUTER, NginxRouter
from routers.canaries import apply, assert_finalize_deletes_canary_ingress, make_canary
from routers.schemas import assert_valid

PREFIX = "nginx.ingress.kubernetes.io"
INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}


def source_ingress(backend: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"app": "podinfo"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                naming.KUBECTL_LAST_APPLIED_ANNOTATION: "{}",
                f"{PREFIX}/canary-weight": "33",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            },
                            {
                                "path": "/static",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "cdn", "port": {"number": 80}}},
                            },
                        ]
                    },
                }
            ],
        },
    }


def canary_with(**kwargs: Any) -> Any:
    return make_canary(extra_spec={"ingressRef": INGRESS_REF}, **kwargs)


def canary_ingress(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["metadata"]["name"] == "podinfo-canary")


def test_reconcile_creates_the_canary_ingress_at_weight_0() -> None:
    canary = canary_with()
    (ingress,) = ROUTER.reconcile(canary, [source_ingress()])
    assert_valid(ingress)
    assert ingress["metadata"]["name"] == "podinfo-canary"
    assert ingress["metadata"]["labels"] == {"app": "podinfo"}
    assert ingress["metadata"]["annotations"] == {
        "kubernetes.io/ingress.class": "nginx",
        **naming.TOOLKIT_DISABLE_ANNOTATIONS,
        f"{PREFIX}/canary": "true",
        f"{PREFIX}/canary-weight": "0",
    }
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["podinfo-canary", "cdn"]
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_weights_are_written_as_canary_weight_annotation() -> None:
    canary = canary_with()
    cluster = apply([source_ingress()], ROUTER.reconcile(canary, [source_ingress()]))
    update = ROUTER.set_routes(canary, cluster, 50, 50)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    annotations = canary_ingress(cluster)["metadata"]["annotations"]
    assert annotations[f"{PREFIX}/canary-weight"] == "50"
    assert annotations[f"{PREFIX}/canary"] == "true"
    assert ROUTER.get_routes(canary, cluster) == Routes(50, 50)
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 100, 0).objects)
    assert canary_ingress(cluster)["metadata"]["annotations"][f"{PREFIX}/canary-weight"] == "0"
    assert ROUTER.get_routes(canary, cluster) == Routes(100, 0)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"cookie": {"exact": "canary"}}, {"canary-by-cookie": "canary"}),
        (
            {"x-canary": {"exact": "insider"}},
            {"canary-by-header": "x-canary", "canary-by-header-value": "insider"},
        ),
        (
            {"x-user": {"regex": "^(alice|bob)$"}},
            {"canary-by-header": "x-user", "canary-by-header-pattern": "^(alice|bob)$"},
        ),
    ],
    ids=["cookie", "header-value", "header-pattern"],
)
def test_ab_testing_writes_header_and_cookie_annotations(
    match: dict[str, Any], expected: dict[str, str]
) -> None:
    canary = canary_with(
        analysis={"stepWeight": None, "iterations": 10, "match": [{"headers": match}]}
    )
    cluster = apply([source_ingress()], ROUTER.reconcile(canary, [source_ingress()]))
    update = ROUTER.set_routes(canary, cluster, 0, 100)
    assert_valid(*update.objects)
    cluster = apply(cluster, update.objects)
    annotations = canary_ingress(cluster)["metadata"]["annotations"]
    ours = {k.removeprefix(f"{PREFIX}/"): v for k, v in annotations.items() if k.startswith(PREFIX)}
    assert ours == {"canary": "true", **expected}
    assert ROUTER.get_routes(canary, cluster) == Routes(0, 100)
    # promotion resets the header routing
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 100, 0).objects)
    annotations = canary_ingress(cluster)["metadata"]["annotations"]
    ours = {k.removeprefix(f"{PREFIX}/"): v for k, v in annotations.items() if k.startswith(PREFIX)}
    assert ours == {"canary": "true", "canary-weight": "0"}
    assert ROUTER.get_routes(canary, cluster) == Routes(100, 0)


def test_annotation_prefix_is_configurable() -> None:
    router = NginxRouter(annotations_prefix="custom.ingress.kubernetes.io")
    canary = canary_with()
    (ingress,) = router.reconcile(canary, [source_ingress()])
    assert ingress["metadata"]["annotations"]["custom.ingress.kubernetes.io/canary-weight"] == "0"
    cluster = apply([source_ingress()], [ingress])
    cluster = apply(cluster, router.set_routes(canary, cluster, 70, 30).objects)
    assert router.get_routes(canary, cluster) == Routes(70, 30)


def test_reconcile_follows_the_user_ingress_and_keeps_the_live_weight() -> None:
    canary = canary_with()
    cluster = apply([source_ingress()], ROUTER.reconcile(canary, [source_ingress()]))
    cluster = apply(cluster, ROUTER.set_routes(canary, cluster, 60, 40).objects)
    canary_ingress(cluster)["metadata"]["annotations"]["foreign"] = "kept"
    assert ROUTER.reconcile(canary, cluster) == []
    changed = copy.deepcopy(source_ingress())
    changed["spec"]["rules"][0]["host"] = "new.example.com"
    cluster = [changed if o["metadata"]["name"] == "podinfo" else o for o in cluster]
    (written,) = ROUTER.reconcile(canary, cluster)
    assert_valid(written)
    assert written["spec"]["rules"][0]["host"] == "new.example.com"
    assert written["metadata"]["annotations"][f"{PREFIX}/canary-weight"] == "40"
    assert written["metadata"]["annotations"]["foreign"] == "kept"


def test_service_target_ingress_may_route_to_the_primary_copy() -> None:
    canary = make_canary(target_kind="Service", extra_spec={"ingressRef": INGRESS_REF})
    source = source_ingress(backend="podinfo-primary")
    (ingress,) = ROUTER.reconcile(canary, [source])
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["backend"]["service"]["name"] == "podinfo-canary"
    assert (
        ROUTER.compatibility(canary, "Service", {"spec": {"type": "ClusterIP"}}, existing=[source])
        == []
    )


def test_service_target_ingress_routing_to_the_target_itself_is_fatal() -> None:
    canary = make_canary(target_kind="Service", extra_spec={"ingressRef": INGRESS_REF})
    problems = ROUTER.compatibility(
        canary, "Service", {"spec": {"type": "ClusterIP"}}, existing=[source_ingress()]
    )
    (problem,) = problems
    assert problem.severity == "error"
    assert "route the Ingress to podinfo-primary" in str(problem)
    # a Deployment target's apex Service selects the primary pods: fine
    assert (
        ROUTER.compatibility(canary_with(), "Deployment", None, existing=[source_ingress()]) == []
    )


def test_missing_ingress_ref_and_missing_backend_are_errors() -> None:
    with pytest.raises(RouterError, match="ingress selector is empty"):
        ROUTER.reconcile(make_canary(), [source_ingress()])
    with pytest.raises(RouterError, match="backend podinfo not found in ingress podinfo"):
        ROUTER.reconcile(canary_with(), [source_ingress(backend="other")])
    problems = ROUTER.compatibility(
        canary_with(), "Deployment", None, existing=[source_ingress(backend="other")]
    )
    assert any(p.severity == "error" and "not found" in str(p) for p in problems)


def test_finalize_deletes_the_canary_ingress() -> None:
    assert_finalize_deletes_canary_ingress(ROUTER, canary_with(), source_ingress())


def test_external_name_backends_are_a_caveat_naming_upstream_vhost() -> None:
    external = {"spec": {"type": "ExternalName", "externalName": "lb.example.com"}}
    canary = make_canary(target_kind="Service", extra_spec={"ingressRef": INGRESS_REF})
    (caveat,) = ROUTER.compatibility(
        canary, "Service", external, existing=[source_ingress(backend="podinfo-primary")]
    )
    assert caveat.severity == "warning"
    assert f"{PREFIX}/upstream-vhost" in str(caveat)


def test_ab_matches_ingress_nginx_cannot_express_are_reported() -> None:
    canary = canary_with(
        analysis={
            "stepWeight": None,
            "iterations": 2,
            "match": [
                {"headers": {"x-a": {"exact": "1"}, "x-b": {"prefix": "v"}}},
                {"headers": {"cookie": {"regex": "canary=.*"}}},
                {"queryParams": {"debug": {"exact": "1"}}},
            ],
        }
    )
    messages = [
        str(p)
        for p in ROUTER.compatibility(canary, "Deployment", None, existing=[source_ingress()])
    ]
    assert any("headers.x-b" in m for m in messages)
    assert any("headers.cookie" in m for m in messages)
    assert any("query_params" in m for m in messages)
    assert any("single header" in m for m in messages)
