"""The target-kind table is what every layer reads: one entry per kind."""

from __future__ import annotations

import importlib

import pytest

from coalmine.controller.runtime import TARGET_KINDS as WATCHED
from coalmine.targets.base import TargetController
from coalmine.targets.hashing import revision_hash
from coalmine.targets.kinds import TARGET_KINDS, target_kind


def test_the_runtime_watches_every_kind_of_the_table_at_its_api_version() -> None:
    assert set(WATCHED) == set(TARGET_KINDS)
    for name, kind in WATCHED.items():
        assert (kind.api_version, kind.kind, kind.plural) == (
            TARGET_KINDS[name].api_version,
            name,
            TARGET_KINDS[name].plural,
        )


@pytest.mark.parametrize("name", sorted(TARGET_KINDS))
def test_every_row_names_a_target_controller_class(name: str) -> None:
    module, _, cls = TARGET_KINDS[name].controller.partition(":")
    found = getattr(importlib.import_module(module), cls)
    assert isinstance(found, type)
    members = [m for m in dir(TargetController) if not m.startswith("_")]
    assert all(callable(getattr(found, member, None)) for member in members)


def test_a_knative_service_and_an_unknown_kind_are_not_targets() -> None:
    assert target_kind("serving.knative.dev/v1", "Service") is None
    assert target_kind("apps/v1", "StatefulSet") is None
    assert target_kind("v1", "Service") is TARGET_KINDS["Service"]


def test_a_revision_is_hashed_by_the_rule_of_its_row() -> None:
    template = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    assert revision_hash({"kind": "Deployment", **template}) == revision_hash(
        {"kind": "DaemonSet", **template}
    )
    assert revision_hash({"kind": "StatefulSet", **template}) is None
    assert revision_hash({"kind": "Service", "spec": {"ports": [{"port": 80}]}}) is not None
