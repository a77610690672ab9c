"""Label/annotation copying and selector discovery (Flagger's util_test.go and GetMetadata)."""

from __future__ import annotations

import pytest

from coalmine.targets.errors import TargetError
from coalmine.targets.labels import (
    include_by_prefix,
    is_owned_by,
    make_primary_labels,
    merge_owner_references,
    owner_reference,
    parse_include_label_prefixes,
    selector_label,
)

from .targets_fixtures import CANARY_UID, make_canary, podinfo_deployment

LABELS = {
    "foo": "foo-value",
    "bar": "bar-value",
    "lorem": "ipsum",
    "kustomize.toolkit.fluxcd.io/checksum": "123",
}


def test_include_labels_by_prefix_keeps_only_matching_keys() -> None:
    assert include_by_prefix(LABELS, ["foo", "lor"]) == {"foo": "foo-value", "lorem": "ipsum"}


def test_include_labels_by_prefix_with_wildcard_keeps_all_but_toolkit_keys() -> None:
    assert include_by_prefix(LABELS, ["*"]) == {
        "foo": "foo-value",
        "bar": "bar-value",
        "lorem": "ipsum",
    }


def test_include_labels_with_default_empty_prefix_keeps_nothing() -> None:
    assert include_by_prefix(LABELS, parse_include_label_prefixes("")) == {}


def test_toolkit_keys_are_dropped_even_when_a_prefix_matches_them() -> None:
    assert include_by_prefix(LABELS, ["kustomize"]) == {}


def test_include_label_prefix_flag_is_split_on_commas() -> None:
    assert parse_include_label_prefixes("app.kubernetes.io,foo") == ("app.kubernetes.io", "foo")


def test_make_primary_labels_overwrites_the_selector_label() -> None:
    labels = {"lorem": "ipsum", "foo": "old-bar"}
    assert make_primary_labels(labels, "foo", "new-bar") == {"lorem": "ipsum", "foo": "new-bar"}
    assert labels["foo"] == "old-bar"


def test_selector_label_is_the_first_configured_label_present() -> None:
    deployment = podinfo_deployment()
    deployment["spec"]["selector"]["matchLabels"] = {"name": "podinfo-name", "app": "podinfo"}
    assert selector_label("Deployment", deployment) == ("app", "podinfo")
    assert selector_label("Deployment", deployment, ["name", "app"]) == ("name", "podinfo-name")


def test_missing_selector_label_is_an_error_naming_object_and_field() -> None:
    deployment = podinfo_deployment()
    deployment["spec"]["selector"]["matchLabels"] = {"role": "web"}
    with pytest.raises(TargetError) as error:
        selector_label("Deployment", deployment)
    assert str(error.value) == (
        "deployment podinfo.default spec.selector.matchLabels must contain one of "
        "[app name app.kubernetes.io/name]"
    )
    assert error.value.retriable is False


def test_owner_reference_names_the_canary_as_controller() -> None:
    ref = owner_reference(make_canary())
    assert ref == {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "name": "podinfo",
        "uid": CANARY_UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert is_owned_by({"metadata": {"ownerReferences": [ref]}}, "podinfo")
    assert not is_owned_by({"metadata": {"ownerReferences": [ref]}}, "other")


def test_other_owners_are_kept_but_demoted_from_controller() -> None:
    ours = owner_reference(make_canary())
    other = {**ours, "name": "other", "uid": "other-uid"}
    merged = merge_owner_references([other, ours], ours)
    assert merged[0] == ours
    assert merged[1]["name"] == "other"
    assert merged[1]["controller"] is False
    assert len(merged) == 2
