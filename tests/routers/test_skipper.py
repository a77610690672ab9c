"""Skipper canary Ingress router (Flagger's skipper.go and skipper_test.go)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from coalmine.api import naming
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError
from coalmine.routers.skipper import ROUTER, insert_predicate
from routers.canaries import (
    apply,
    assert_finalize_deletes_canary_ingress,
    make_canary,
    severities,
)
from routers.schemas import assert_valid

INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"


def path(prefix: str, service: str, port: int = 80) -> dict[str, Any]:
    return {
        "path": prefix,
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }


def user_ingress(backend: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": "default",
            "labels": {"app": "podinfo"},
            "annotations": {
                PREDICATE: "Header('X-Env', 'prod') && False()",
                naming.KUBECTL_LAST_APPLIED_ANNOTATION: "{}",
            },
        },
        "spec": {
            "ingressClassName": "skipper",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {"paths": [path("/", backend, 9898), path("/static", "cdn")]},
                }
            ],
        },
    }


def canary_with(**kwargs: Any) -> Any:
    return make_canary(extra_spec={"ingressRef": INGRESS_REF}, provider="skipper", **kwargs)


def test_reconcile_flips_the_paths_to_the_primary_and_adds_the_canary_at_100_0() -> None:
    (ingress,) = ROUTER.reconcile(canary_with(), [user_ingress()])

    assert_valid(ingress)
    assert ingress["metadata"]["name"] == "podinfo-canary"
    assert ingress["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert ingress["metadata"]["labels"] == {"app": "podinfo"}
    annotations = ingress["metadata"]["annotations"]
    assert json.loads(annotations[WEIGHTS]) == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert annotations[WEIGHTS] == '{"podinfo-canary":0,"podinfo-primary":100}'
    assert annotations[PREDICATE] == "Weight(100) && Header('X-Env', 'prod')"
    assert naming.KUBECTL_LAST_APPLIED_ANNOTATION not in annotations
    assert ingress["spec"]["ingressClassName"] == "skipper"
    assert ingress["spec"]["rules"][0]["http"]["paths"] == [
        path("/", "podinfo-primary", 9898),
        path("/static", "cdn"),
        path("/", "podinfo-canary", 9898),
    ]


def test_set_routes_writes_both_weights_and_disables_the_canary_routes_at_weight_0() -> None:
    canary = canary_with()
    existing = apply([user_ingress()], ROUTER.reconcile(canary, [user_ingress()]))
    assert ROUTER.get_routes(canary, existing) == Routes(100, 0)

    for primary, weight in ((90, 10), (50, 50), (0, 100)):
        (ingress,) = ROUTER.set_routes(canary, existing, primary, weight).objects
        assert_valid(ingress)
        existing = apply(existing, [ingress])
        assert ROUTER.get_routes(canary, existing) == Routes(primary, weight)
        assert ingress["metadata"]["annotations"][PREDICATE].startswith("Weight(100) && ")

    (ingress,) = ROUTER.set_routes(canary, existing, 100, 0).objects
    existing = apply(existing, [ingress])
    annotations = ingress["metadata"]["annotations"]
    assert annotations[PREDICATE] == "False() && Header('X-Env', 'prod')"
    assert ROUTER.get_routes(canary, existing) == Routes(100, 0)


@pytest.mark.parametrize(
    ("raw", "insert", "expected"),
    [
        ("", "Weight(100)", "Weight(100)"),
        ("Weight(100)", "False()", "False()"),
        ("Path('/x') && False() && Weight(100)", "Weight(100)", "Weight(100) && Path('/x')"),
        ("A() && B()", "False()", "False() && A() && B()"),
    ],
)
def test_insert_predicate_puts_ours_first_and_drops_the_conflicting_ones(
    raw: str, insert: str, expected: str
) -> None:
    assert insert_predicate(raw, insert) == expected


def test_reconcile_updates_the_spec_and_keeps_the_live_weights() -> None:
    canary = canary_with()
    existing = apply([user_ingress()], ROUTER.reconcile(canary, [user_ingress()]))
    existing = apply(existing, ROUTER.set_routes(canary, existing, 70, 30).objects)
    assert ROUTER.reconcile(canary, existing) == []

    changed = copy.deepcopy(user_ingress())
    changed["spec"]["rules"][0]["host"] = "new.example.com"
    (ingress,) = ROUTER.reconcile(canary, [changed, *existing[1:]])

    assert ingress["spec"]["rules"][0]["host"] == "new.example.com"
    assert json.loads(ingress["metadata"]["annotations"][WEIGHTS])["podinfo-canary"] == 30


def test_get_routes_names_a_missing_or_broken_weights_annotation() -> None:
    canary = canary_with()
    (ingress,) = ROUTER.reconcile(canary, [user_ingress()])
    ingress["metadata"]["annotations"][WEIGHTS] = "{not json"
    with pytest.raises(
        RouterError, match=re.escape("podinfo-canary.default zalando.org/backend-weights")
    ):
        ROUTER.get_routes(canary, [ingress])
    ingress["metadata"]["annotations"][WEIGHTS] = '{"podinfo-primary": 100}'
    with pytest.raises(RouterError, match=re.escape("canary weight not found for podinfo-canary")):
        ROUTER.get_routes(canary, [ingress])
    del ingress["metadata"]["annotations"][WEIGHTS]
    with pytest.raises(
        RouterError, match=re.escape("has no zalando.org/backend-weights annotation")
    ):
        ROUTER.get_routes(canary, [ingress])


def test_an_ingress_without_the_apex_backend_is_refused() -> None:
    with pytest.raises(
        RouterError, match=re.escape("backend podinfo not found in ingress podinfo")
    ):
        ROUTER.reconcile(canary_with(), [user_ingress("other")])


def test_a_missing_ingress_ref_is_named() -> None:
    with pytest.raises(RouterError, match=re.escape("ingress selector is empty")):
        ROUTER.references(make_canary(provider="skipper"))


def test_finalize_deletes_the_canary_ingress() -> None:
    assert_finalize_deletes_canary_ingress(ROUTER, canary_with(), user_ingress())


def test_a_service_target_must_route_its_ingress_to_the_primary_copy() -> None:
    canary = make_canary(
        target_kind="Service", provider="skipper", extra_spec={"ingressRef": INGRESS_REF}
    )
    to_target = ROUTER.compatibility(canary, "Service", None, existing=[user_ingress()])
    assert [p.reason for p in to_target] == [
        "Ingress podinfo routes to Service podinfo, the canary's target: at canary weight 0 "
        "Skipper routes through it alone and the new version would get all traffic; route the "
        "Ingress to podinfo-primary"
    ]
    to_primary = [user_ingress("podinfo-primary")]
    assert ROUTER.compatibility(canary, "Service", None, existing=to_primary) == []
    (ingress,) = ROUTER.reconcile(canary, to_primary)
    backends = [
        p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    ]
    assert backends == ["podinfo-primary", "cdn", "podinfo-canary"]


def test_ab_runs_are_refused_and_mirroring_is_a_warning() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    ab = canary_with(analysis={"iterations": 5, "match": match, "stepWeight": None})
    problems = severities(ab)
    assert problems["spec.analysis.match"] == "error"
    mirrored = canary_with(analysis={"mirror": True})
    problems = severities(mirrored)
    assert problems == {"spec.analysis.mirror": "warning"}
