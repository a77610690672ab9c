"""JSON merge patch and JSON patch: RFC examples, failures, and the merge patch laws."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.devcluster.patches import PatchError, apply_json_patch, json_merge_patch

SCALARS = st.booleans() | st.integers() | st.text(max_size=4)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
DOCS = st.dictionaries(st.text(max_size=3), VALUES, max_size=4)
PATCH_VALUES = st.recursive(
    SCALARS | st.none(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def test_merge_patch_rfc7386_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert json_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "phoneNumber": "+01-123-456-7890",
        "content": "This will be unchanged",
    }


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386_appendix(target: Any, patch: Any, expected: Any) -> None:
    assert json_merge_patch(target, patch) == expected


def test_merge_patch_does_not_modify_inputs() -> None:
    target = {"metadata": {"labels": {"a": "1"}}}
    patch = {"metadata": {"labels": {"b": "2"}}}
    result = json_merge_patch(target, patch)
    result["metadata"]["labels"]["c"] = "3"
    assert target == {"metadata": {"labels": {"a": "1"}}}
    assert patch == {"metadata": {"labels": {"b": "2"}}}


@given(DOCS, DOCS)
def test_merge_patch_without_nulls_sets_every_patched_key(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    result = json_merge_patch(target, patch)
    for key, value in patch.items():
        if not isinstance(value, dict):
            assert result[key] == value
    for key, value in target.items():
        if key not in patch:
            assert result[key] == value


@given(DOCS, st.dictionaries(st.text(max_size=3), PATCH_VALUES, max_size=4))
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = json_merge_patch(target, patch)
    assert json_merge_patch(once, patch) == once


@given(DOCS)
def test_merge_patch_with_empty_patch_is_identity(target: dict[str, Any]) -> None:
    assert json_merge_patch(target, {}) == target


def test_json_patch_applies_operations_in_order() -> None:
    doc = {"spec": {"replicas": 1, "ports": [{"port": 80}]}, "metadata": {"labels": {}}}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/spec/ports/-", "value": {"port": 443}},
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "podinfo"},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/minReplicas"},
        {"op": "move", "from": "/spec/minReplicas", "path": "/spec/maxReplicas"},
        {"op": "remove", "path": "/spec/ports/0"},
    ]
    assert apply_json_patch(doc, ops) == {
        "spec": {"replicas": 3, "ports": [{"port": 443}], "maxReplicas": 3},
        "metadata": {"labels": {"app.kubernetes.io/name": "podinfo"}},
    }
    assert doc["spec"]["replicas"] == 1, "the input must be left alone"


def test_json_patch_failed_test_names_the_operation() -> None:
    with pytest.raises(PatchError, match=r"operation 1 \(test /spec/replicas\): test failed"):
        apply_json_patch(
            {"spec": {"replicas": 1}},
            [
                {"op": "add", "path": "/spec/paused", "value": True},
                {"op": "test", "path": "/spec/replicas", "value": 2},
            ],
        )


@pytest.mark.parametrize(
    ("operations", "fragment"),
    [
        ({"op": "add"}, "must be a list"),
        ([1], "must be an object"),
        ([{"path": "/a"}], "has no 'op'"),
        ([{"op": "frobnicate", "path": "/a"}], "frobnicate"),
        ([{"op": "remove", "path": "/missing"}], "remove /missing"),
        ([{"op": "replace", "path": "/missing", "value": 1}], "replace /missing"),
        ([{"op": "add", "path": "/a/b/c", "value": 1}], "add /a/b/c"),
        ([{"op": "add", "path": "relative", "value": 1}], "add relative"),
        ([{"op": "add", "path": "/a"}], "missing 'value'"),
        ([{"op": "move", "from": "/nothing", "path": "/a"}], "move /a"),
    ],
)
def test_json_patch_errors_are_patch_errors(operations: Any, fragment: str) -> None:
    doc = {"a": 1}
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError, match=fragment):
        apply_json_patch(doc, operations)
    assert doc == before
