"""The smallest merge patch between two objects, subset comparison, and the in-shape memory."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from coalmine.kube.writes import InShape, contains, merge_patch_between, version

json_scalars = st.one_of(st.booleans(), st.integers(), st.text(max_size=5))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=3), children, max_size=3),
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 as the RFC's pseudo-code states it, to check the patches we compute."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@given(json_objects, json_objects)
def test_the_patch_turns_actual_into_desired(
    actual: dict[str, Any], desired: dict[str, Any]
) -> None:
    assert apply_merge_patch(actual, merge_patch_between(actual, desired)) == desired


def test_an_unchanged_object_needs_an_empty_patch() -> None:
    obj = {"spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 80}]}}
    assert merge_patch_between(obj, obj) == {}


def test_only_the_changed_field_is_patched() -> None:
    actual = {"spec": {"selector": {"app": "blue"}, "type": "ClusterIP"}}
    desired = {"spec": {"selector": {"app": "green"}, "type": "ClusterIP"}}
    assert merge_patch_between(actual, desired) == {"spec": {"selector": {"app": "green"}}}


def test_contains_ignores_fields_the_server_added() -> None:
    actual = {"metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}, "spec": {"ports": [1]}}
    assert contains(actual, {"metadata": {"labels": {"a": "1"}}})
    assert not contains(actual, {"metadata": {"labels": {"a": "2"}}})
    assert not contains(actual, {"spec": {"ports": [1, 2]}})


def _stored(uid: str, version_: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": version_}}


def test_an_object_in_shape_for_the_same_inputs_is_not_built_again() -> None:
    memory = InShape()
    inputs = ("canary-uid", 3, version(_stored("t", "10")), version(_stored("c", "11")))
    assert not memory.holds(("Service", "test", "podinfo-canary"), inputs)
    memory.remember(("Service", "test", "podinfo-canary"), inputs)
    assert memory.holds(("Service", "test", "podinfo-canary"), inputs)


def test_any_changed_input_means_building_and_comparing_again() -> None:
    memory = InShape()
    key = ("Service", "test", "podinfo-canary")
    memory.remember(key, ("canary-uid", 3, version(_stored("t", "10"))))
    assert not memory.holds(key, ("canary-uid", 4, version(_stored("t", "10"))))
    assert not memory.holds(key, ("canary-uid", 3, version(_stored("t", "12"))))
    assert not memory.holds(
        ("Service", "test", "other"), ("canary-uid", 3, version(_stored("t", "10")))
    )


def test_an_object_never_stored_has_no_version_and_is_never_remembered() -> None:
    memory = InShape()
    key = ("Service", "test", "podinfo-canary")
    built = {"metadata": {"name": "podinfo-canary"}}
    assert version(built) is None
    assert version(None) is None
    memory.remember(key, ("canary-uid", version(built)))
    assert not memory.holds(key, ("canary-uid", version(built)))
