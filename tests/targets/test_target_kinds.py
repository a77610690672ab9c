"""The target-kind table is what every layer reads: one entry per kind."""

from __future__ import annotations

import importlib

import pytest

from coalmine.controller.runtime import TARGET_KINDS as WATCHED
from coalmine.controller.runtime import WATCHED_TARGET_KINDS
from coalmine.targets.base import TargetController
from coalmine.targets.hashing import revision_hash
from coalmine.targets.kinds import TARGET_KINDS, target_kind


def test_the_runtime_watches_every_kind_of_the_table_at_its_api_version() -> None:
    assert set(WATCHED) == set(TARGET_KINDS)
    for name, kind in WATCHED.items():
        assert (kind.api_version, kind.kind, kind.plural) == (
            TARGET_KINDS[name].api_version,
            TARGET_KINDS[name].kind,
            TARGET_KINDS[name].plural,
        )


def test_a_kind_whose_crd_may_be_missing_is_not_watched_from_the_start() -> None:
    # The runtime's start waits for every kind it watches: Knative's CRD is not in every cluster.
    assert WATCHED["Service.serving.knative.dev"] not in WATCHED_TARGET_KINDS
    assert set(WATCHED_TARGET_KINDS) == {
        WATCHED[name] for name in ("Deployment", "DaemonSet", "Service")
    }


@pytest.mark.parametrize("name", sorted(TARGET_KINDS))
def test_every_row_names_a_target_controller_class(name: str) -> None:
    module, _, cls = TARGET_KINDS[name].controller.partition(":")
    found = getattr(importlib.import_module(module), cls)
    assert isinstance(found, type)
    members = [m for m in dir(TargetController) if not m.startswith("_")]
    assert all(callable(getattr(found, member, None)) for member in members)


def test_the_api_version_tells_a_knative_service_from_a_core_one() -> None:
    knative = target_kind("serving.knative.dev/v1", "Service")
    assert knative is TARGET_KINDS["Service.serving.knative.dev"]
    assert knative.controller.endswith(":KnativeTargetController")
    assert target_kind("v1", "Service") is TARGET_KINDS["Service"]
    assert target_kind("core/v1", "Service") is TARGET_KINDS["Service"]
    assert target_kind("apps/v1", "StatefulSet") is None


def test_a_revision_is_hashed_by_the_rule_of_its_row() -> None:
    template = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    assert revision_hash({"kind": "Deployment", **template}) == revision_hash(
        {"kind": "DaemonSet", **template}
    )
    assert revision_hash({"kind": "StatefulSet", **template}) is None
    assert revision_hash({"kind": "Service", "spec": {"ports": [{"port": 80}]}}) is not None


def test_a_knative_revision_is_the_revision_knative_created_not_our_traffic_writes() -> None:
    def service(traffic: list[dict[str, object]], latest: str) -> dict[str, object]:
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}, "traffic": traffic},
            "status": {"latestCreatedRevisionName": latest},
        }

    before = revision_hash(service([{"latestRevision": True, "percent": 100}], "podinfo-00001"))
    split = [{"latestRevision": True, "percent": 10}, {"revisionName": "podinfo-00001"}]
    assert revision_hash(service(split, "podinfo-00001")) == before
    assert revision_hash(service(split, "podinfo-00002")) != before
