"""Every router through a whole canary run: objects valid against the official CRD schemas at
initialization, at each weight step, after promotion/rollback, and weights read back exactly."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.models import Canary
from coalmine.routers.base import Routes
from coalmine.routers.common import Delete, PureRouter, Write
from coalmine.routers.registry import ROUTERS
from knative_serving import reconciled
from routers.canaries import apply, make_canary
from routers.schemas import as_stored, assert_valid

SOURCE_INGRESS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "podinfo", "namespace": "default", "labels": {"app": "podinfo"}},
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
                            "backend": {"service": {"name": "podinfo", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    },
}

SOURCE_ROUTE: dict[str, Any] = {
    "apiVersion": "apisix.apache.org/v2",
    "kind": "ApisixRoute",
    "metadata": {"name": "podinfo", "namespace": "default"},
    "spec": {
        "http": [
            {
                "name": "rule1",
                "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                "backends": [{"serviceName": "podinfo", "servicePort": 80}],
            }
        ]
    },
}


KNATIVE_SERVICE: dict[str, Any] = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "podinfo", "namespace": "default", "generation": 1},
    "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo"}]}}},
}


def knative_settled(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects after Knative's controller saw them (status.traffic follows spec.traffic)."""
    return [
        reconciled(o, {})[0] if o.get("apiVersion") == "serving.knative.dev/v1" else o
        for o in objects
    ]


def canary_for(provider: str) -> Canary:
    service: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if provider == "knative":
        target = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}
        return make_canary(extra_spec={"targetRef": target, "provider": "knative"})
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    if provider == "appmesh":
        service["meshName"] = "global"
    if provider in ("nginx", "skipper"):
        extra["ingressRef"] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "name": "podinfo",
        }
    if provider == "apisix":
        extra["routeRef"] = {
            "apiVersion": "apisix.apache.org/v2",
            "kind": "ApisixRoute",
            "name": "podinfo",
        }
    return make_canary(service=service, extra_spec=extra)


def copy_service(name: str) -> dict[str, Any]:
    """A copy Service as the service router creates it (the Gloo router reads its selector)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9898}]},
    }


def initial_objects(provider: str) -> list[dict[str, Any]]:
    if provider == "knative":
        return knative_settled([KNATIVE_SERVICE])
    if provider in ("nginx", "skipper"):
        return [SOURCE_INGRESS]
    if provider == "gloo":
        return [copy_service("podinfo-primary"), copy_service("podinfo-canary")]
    return [SOURCE_ROUTE] if provider == "apisix" else []


def applied(cluster: list[dict[str, Any]], writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return knative_settled(apply(cluster, writes))


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_canary_run_objects_are_valid_and_weights_round_trip(provider: str) -> None:
    router: PureRouter = ROUTERS[provider]
    canary = canary_for(provider)
    cluster = initial_objects(provider)

    created = router.reconcile(canary, cluster)
    assert created, "initialization writes the routing objects"
    assert_valid(*created)
    cluster = applied(cluster, created)
    assert router.get_routes(canary, cluster) == Routes(100, 0, False)
    assert router.reconcile(canary, cluster) == [], "a second reconcile writes nothing"

    for primary, weight in [(80, 20), (60, 40), (40, 60), (100, 0)]:
        update = router.set_routes(canary, cluster, primary, weight)
        assert_valid(*update.objects)
        cluster = applied(cluster, update.objects)
        assert router.get_routes(canary, cluster) == Routes(primary, weight, False)
        assert router.reconcile(canary, cluster) == [], f"reconcile at {primary}/{weight}"


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_server_defaults_are_not_mistaken_for_drift(provider: str) -> None:
    """Objects read back from the API server carry CRD defaults; reconcile must not fight them."""
    router = ROUTERS[provider]
    canary = canary_for(provider)
    cluster = initial_objects(provider)
    cluster = applied(cluster, [as_stored(o) for o in router.reconcile(canary, cluster)])
    assert router.reconcile(canary, cluster) == []
    update = router.set_routes(canary, cluster, 70, 30)
    cluster = applied(cluster, [as_stored(o) for o in update.objects])
    assert router.get_routes(canary, cluster) == Routes(70, 30, False)
    assert router.reconcile(canary, cluster) == []


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_finalize_after_a_run(provider: str) -> None:
    """revertOnDeletion: objects the Canary created are left to garbage collection, except the
    NGINX and Skipper canary Ingresses, deleted so the user's Ingress alone routes again, and
    Kuma's cluster-scoped TrafficRoute, which nothing else would delete."""
    router = ROUTERS[provider]
    canary = canary_for(provider)
    cluster = initial_objects(provider)
    cluster = applied(cluster, router.reconcile(canary, cluster))
    cluster = applied(cluster, router.set_routes(canary, cluster, 40, 60).objects)
    actions = router.finalize(canary, cluster)
    if provider in ("nginx", "skipper", "kuma"):
        (action,) = actions
        assert isinstance(action, Delete)
        assert action.ref.name == {"kuma": "podinfo"}.get(provider, "podinfo-canary")
    elif provider == "knative":
        # The user's Knative Service loses the primary-revision record, keeps serving the primary.
        (action,) = actions
        assert isinstance(action, Write)
        assert "flagger.app/primary-revision" not in action.obj["metadata"]["annotations"]
        assert action.obj["spec"]["traffic"][1]["revisionName"] == "podinfo-00001"
    else:
        assert actions == []


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_created_routing_objects_are_owned_by_the_canary(provider: str) -> None:
    router = ROUTERS[provider]
    canary = canary_for(provider)
    for obj in router.reconcile(canary, initial_objects(provider)):
        if provider == "knative":
            # The Knative Service is the user's target: never owned, never garbage-collected.
            assert "ownerReferences" not in obj["metadata"]
            continue
        if provider == "kuma":
            # Cluster-scoped: a namespaced owner would never collect it (see test_kuma.py).
            assert "ownerReferences" not in obj["metadata"]
            assert "namespace" not in obj["metadata"]
            continue
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": "podinfo",
            "uid": "0b1c-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert obj["metadata"]["namespace"] == "default"


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_references_name_every_object_the_router_writes(provider: str) -> None:
    router = ROUTERS[provider]
    canary = canary_for(provider)
    written = {
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in router.reconcile(canary, initial_objects(provider))
    }
    referenced = {(r.api_version, r.kind, r.name) for r in router.references(canary)}
    assert written <= referenced
