"""The knative router: the split between the primary revision and the latest one, written in the
target Knative Service's own `spec.traffic` (Flagger's `pkg/router/knative.go`), every object
valid under Knative's official Service CRD, and the one verdict of `coalmine check` and the
controller on what it cannot do."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from coalmine.api.models import Canary
from coalmine.cli.check import check_stream
from coalmine.routers.base import Routes
from coalmine.routers.common import RouterError, Write
from coalmine.routers.knative import ROUTER
from coalmine.routers.verdict import Options, judge
from knative_serving import reconciled
from routers.schemas import as_stored, assert_valid

TARGET = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def canary_doc(**analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u"},
        "spec": {
            "provider": "knative",
            "targetRef": TARGET,
            "analysis": {"interval": "1m", "threshold": 5, **(analysis or {"stepWeight": 10})},
        },
    }


CANARY = Canary.model_validate(canary_doc())


def knative_service(
    *, primary: str | None = "podinfo-00001", traffic: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """podinfo with one revision, as Knative's controller left it."""
    service: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "7"},
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.0"}]}}},
    }
    if primary:
        service["metadata"]["annotations"] = {"flagger.app/primary-revision": primary}
    if traffic is not None:
        service["spec"]["traffic"] = traffic
    return reconciled(service, {})[0]


def test_set_routes_writes_flaggers_two_traffic_targets_valid_under_the_crd() -> None:
    (written,) = ROUTER.set_routes(CANARY, [knative_service()], 90, 10).objects
    assert written["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 10},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 90},
    ]
    assert_valid(written)
    # What the server stores (pruned, defaulted) is what was written: no drift to fight.
    assert as_stored(written) == written
    assert written["spec"]["template"] == knative_service()["spec"]["template"]


def test_set_routes_without_a_recorded_primary_revision_is_an_error() -> None:
    with pytest.raises(RouterError, match=r"flagger\.app/primary-revision"):
        ROUTER.set_routes(CANARY, [knative_service(primary=None)], 90, 10)


def test_routes_are_read_from_what_knative_routes_not_from_the_spec() -> None:
    service = knative_service(
        traffic=[
            {"latestRevision": True, "percent": 30},
            {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 70},
        ]
    )
    assert ROUTER.get_routes(CANARY, [service]) == Routes(70, 30)
    # Written but not yet reconciled by Knative: the live split is still the old one.
    (pending,) = ROUTER.set_routes(CANARY, [service], 50, 50).objects
    assert ROUTER.get_routes(CANARY, [pending]) == Routes(70, 30)


def test_routes_right_after_a_promotion_count_the_old_revision_on_the_primary_side() -> None:
    service = knative_service(
        traffic=[
            {"latestRevision": True, "percent": 40},
            {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 60},
        ]
    )
    service["metadata"]["annotations"]["flagger.app/primary-revision"] = "podinfo-00002"
    assert ROUTER.get_routes(CANARY, [service]) == Routes(60, 40)


def test_reconcile_records_the_latest_created_revision_as_the_primary_at_100_percent() -> None:
    (written,) = ROUTER.reconcile(CANARY, [knative_service(primary=None)])
    assert written["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00001"
    assert written["spec"]["traffic"][0] == {"latestRevision": True, "percent": 0}
    assert "ownerReferences" not in written["metadata"]
    assert_valid(written)


def test_reconcile_puts_back_a_traffic_block_a_gitops_reapply_removed() -> None:
    split = ROUTER.set_routes(CANARY, [knative_service()], 80, 20).objects[0]
    assert ROUTER.reconcile(CANARY, [split]) == []
    reapplied = copy.deepcopy(split)
    del reapplied["spec"]["traffic"]  # Knative would route 100 % to the latest revision
    (restored,) = ROUTER.reconcile(CANARY, [reapplied])
    assert restored["spec"]["traffic"][1] == {
        "revisionName": "podinfo-00001",
        "latestRevision": False,
        "percent": 100,
    }


def test_finalize_removes_the_annotations_and_keeps_the_traffic_on_the_primary() -> None:
    service = ROUTER.set_routes(CANARY, [knative_service()], 100, 0).objects[0]
    service["metadata"]["annotations"]["coalmine.dev/promoted-revision"] = "x"
    (action,) = ROUTER.finalize(CANARY, [service])
    assert isinstance(action, Write)
    assert action.obj["metadata"]["annotations"] == {}
    assert action.obj["spec"]["traffic"] == service["spec"]["traffic"]


def findings(doc: dict[str, Any]) -> tuple[set[str], set[str], bool]:
    """(check's errors, check's warnings, whether the controller refuses)."""
    result = check_stream(yaml.safe_dump(doc), "canary.yaml")
    errors = {f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"}
    warnings = {f.path for f in result.findings if f.severity == "warning"}
    return errors, warnings, judge(doc, Options()).refusal is not None


def test_a_knative_canary_run_passes_check_and_the_controller() -> None:
    errors, _, refused = findings(canary_doc())
    assert (errors, refused) == (set(), False)


def test_an_ab_run_on_knative_is_refused_by_check_and_the_controller_alike() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    errors, _, refused = findings(canary_doc(iterations=5, match=match))
    assert refused
    assert any(e.startswith("spec.analysis.match") and "knative" in e for e in errors)


@pytest.mark.parametrize(
    ("analysis", "path"),
    [
        ({"stepWeight": 10, "mirror": True}, "spec.analysis.mirror"),
        (
            {"stepWeight": 10, "sessionAffinity": {"cookieName": "canary"}},
            "spec.analysis.sessionAffinity",
        ),
        ({"iterations": 5}, "spec.analysis.iterations"),
    ],
)
def test_what_knative_cannot_do_beyond_ab_is_a_warning_of_both(
    analysis: dict[str, Any], path: str
) -> None:
    errors, warnings, refused = findings(canary_doc(**analysis))
    assert (errors, refused) == (set(), False)
    assert path in warnings


def test_reconcile_after_a_promotion_points_all_traffic_at_the_new_primary() -> None:
    """skipAnalysis routes 100/0 before the promotion records the new revision (Flagger's
    order): the split still pins the old one, so Reconcile moves it to the new primary."""
    service = ROUTER.set_routes(CANARY, [knative_service()], 100, 0).objects[0]
    service["metadata"]["annotations"]["flagger.app/primary-revision"] = "podinfo-00002"
    (written,) = ROUTER.reconcile(CANARY, [service])
    assert written["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00002", "latestRevision": False, "percent": 100},
    ]
