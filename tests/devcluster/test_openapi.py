"""Structural schema validation, pruning and defaulting, against hand-written and real CRD schemas."""

from __future__ import annotations

import copy
import time
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from coalmine.devcluster.crds import crd_path
from coalmine.devcluster.openapi import FieldError, apply_defaults, prune, validate

# The official CRDs devcluster ships (see their SOURCES.md).
SCHEMAS = crd_path("")


@cache
def crd_schema(relative: str, version: str | None = None) -> dict[str, Any]:
    path = SCHEMAS / relative
    crd = yaml.safe_load(path.read_text())
    for entry in crd["spec"]["versions"]:
        if (version is None and entry.get("storage")) or entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"no version {version} in {relative}")


CANARY_LIKE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["targetRef"],
            "properties": {
                "targetRef": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["Deployment", "DaemonSet", "Service"]},
                        "name": {"type": "string", "maxLength": 10, "minLength": 1},
                    },
                },
                "progressDeadlineSeconds": {"type": "number", "default": 600},
                "analysis": {
                    "type": "object",
                    "properties": {
                        "interval": {"type": "string", "pattern": "^[0-9]+(m|s)"},
                        "threshold": {"type": "integer", "minimum": 0, "maximum": 100},
                        "stepWeights": {
                            "type": "array",
                            "items": {"type": "number"},
                            "maxItems": 3,
                        },
                        "metrics": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "interval": {"type": "string", "default": "1m"},
                                    "thresholdRange": {
                                        "type": "object",
                                        "properties": {"min": {"type": "number"}},
                                    },
                                },
                            },
                        },
                        "webhooks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
                "service": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "port": {"type": "integer", "format": "int32"},
                        "targetPort": {
                            "x-kubernetes-int-or-string": True,
                            "anyOf": [{"type": "integer"}, {"type": "string"}],
                        },
                    },
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "tags": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "nullableNote": {"type": "string", "nullable": True},
                "createdAt": {"type": "string", "format": "date-time"},
            },
        },
    },
}


def canary(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"targetRef": {"kind": "Deployment", "name": "podinfo"}}
    body.update(spec)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "labels": {"app": "podinfo"}},
        "spec": body,
    }


def messages(errors: list[FieldError]) -> list[str]:
    return [str(error) for error in errors]


def test_valid_object_has_no_errors() -> None:
    obj = canary(analysis={"interval": "30s", "threshold": 5, "stepWeights": [1, 2.5]})
    assert validate(obj, CANARY_LIKE) == []


def test_missing_required_field_is_reported_at_its_path() -> None:
    obj = canary()
    del obj["spec"]["targetRef"]["name"]
    assert validate(obj, CANARY_LIKE) == [
        FieldError("spec.targetRef.name", "Required value", "FieldValueRequired")
    ]


def test_wrong_type_is_worded_like_kubernetes() -> None:
    errors = validate(canary(analysis={"threshold": "five"}), CANARY_LIKE)
    assert messages(errors) == [
        'spec.analysis.threshold: Invalid value: "string": spec.analysis.threshold in body '
        'must be of type integer: "string"'
    ]
    assert errors[0].cause == "FieldValueTypeInvalid"


def test_integer_rejects_fractions_and_booleans_but_number_takes_integers() -> None:
    assert validate(canary(analysis={"threshold": 1.5}), CANARY_LIKE)[0].reason.endswith(
        'must be of type integer: "number"'
    )
    assert validate(canary(analysis={"threshold": True}), CANARY_LIKE)[0].reason.endswith(
        'must be of type integer: "boolean"'
    )
    assert validate(canary(progressDeadlineSeconds=60), CANARY_LIKE) == []


def test_enum_lists_supported_values() -> None:
    obj = canary()
    obj["spec"]["targetRef"]["kind"] = "StatefulSet"
    assert messages(validate(obj, CANARY_LIKE)) == [
        'spec.targetRef.kind: Unsupported value: "StatefulSet": supported values: '
        '"Deployment", "DaemonSet", "Service"'
    ]


def test_pattern_uses_search_semantics_like_flagger_prefix_patterns() -> None:
    assert validate(canary(analysis={"interval": "1m30s"}), CANARY_LIKE) == []
    assert validate(canary(analysis={"interval": "10sx"}), CANARY_LIKE) == []
    errors = validate(canary(analysis={"interval": "soon"}), CANARY_LIKE)
    assert messages(errors) == [
        'spec.analysis.interval: Invalid value: "soon": spec.analysis.interval in body '
        "should match '^[0-9]+(m|s)'"
    ]


def test_bounds_lengths_and_counts() -> None:
    obj = canary(analysis={"threshold": 101, "stepWeights": [1, 2, 3, 4]})
    obj["spec"]["targetRef"]["name"] = "a-very-long-name"
    assert sorted(messages(validate(obj, CANARY_LIKE))) == [
        "spec.analysis.stepWeights: Too many: 4: must have at most 3 items",
        "spec.analysis.threshold: Invalid value: 101: spec.analysis.threshold in body should be "
        "less than or equal to 100",
        "spec.targetRef.name: Too long: may not be more than 10 bytes",
    ]
    obj["spec"]["targetRef"]["name"] = ""
    assert (
        'spec.targetRef.name: Invalid value: "": spec.targetRef.name in body should be at least '
        "1 chars long"
    ) in messages(validate(obj, CANARY_LIKE))


def test_array_items_are_indexed_in_paths() -> None:
    errors = validate(canary(analysis={"stepWeights": [1, "two"]}), CANARY_LIKE)
    assert [e.path for e in errors] == ["spec.analysis.stepWeights[1]"]


def test_additional_properties_schema_applies_to_every_value() -> None:
    obj = canary(analysis={"webhooks": [{"metadata": {"cmd": "hey", "count": 3}}]})
    assert [e.path for e in validate(obj, CANARY_LIKE)] == [
        "spec.analysis.webhooks[0].metadata.count"
    ]


def test_int_or_string_accepts_both_and_nothing_else() -> None:
    assert validate(canary(service={"port": 80, "targetPort": "http"}), CANARY_LIKE) == []
    assert validate(canary(service={"port": 80, "targetPort": 8080}), CANARY_LIKE) == []
    errors = validate(canary(service={"port": 80, "targetPort": 1.5}), CANARY_LIKE)
    assert [e.cause for e in errors][:1] == ["FieldValueTypeInvalid"]


def test_list_map_keys_and_sets_reject_duplicates() -> None:
    obj = canary(
        analysis={"metrics": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}, tags=["x", "y", "x"]
    )
    assert sorted(messages(validate(obj, CANARY_LIKE))) == [
        'spec.analysis.metrics[2]: Duplicate value: {"name":"a"}',
        'spec.tags[2]: Duplicate value: "x"',
    ]


def test_embedded_resource_needs_api_version_and_kind() -> None:
    errors = validate(canary(template={"metadata": {"name": "x"}}), CANARY_LIKE)
    assert sorted(e.path for e in errors) == ["spec.template.apiVersion", "spec.template.kind"]


def test_nullable_and_format() -> None:
    assert validate(canary(nullableNote=None), CANARY_LIKE) == []
    assert validate(canary(createdAt="2024-01-02T03:04:05Z"), CANARY_LIKE) == []
    errors = validate(canary(createdAt="yesterday"), CANARY_LIKE)
    assert messages(errors) == [
        'spec.createdAt: Invalid value: "yesterday": spec.createdAt in body must be of type '
        'date-time: "yesterday"'
    ]


def test_junctors() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        "not": {"required": ["c"]},
    }
    assert validate({"a": "x"}, schema) == []
    both = validate({"a": "x", "b": "y"}, schema)
    assert [e.reason.split(": ", 2)[-1] for e in both] == [
        " in body must validate one and only one schema (oneOf)"
    ]
    assert any("anyOf" in e.reason for e in validate(3, {"anyOf": [{"type": "string"}]}))
    assert validate({"c": 1}, {"type": "object", "not": {"required": ["c"]}}) != []


def test_prune_drops_unknown_fields_but_keeps_root_metadata_and_preserved_subtrees() -> None:
    obj = canary(
        junk=1,
        analysis={"interval": "1m", "unknown": {"deep": True}},
        service={"port": 80, "anything": {"goes": [1, 2]}},
        template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}},
    )
    obj["metadata"]["annotations"] = {"a": "b"}
    obj["status"] = {"phase": "Initialized"}
    pruned = prune(obj, CANARY_LIKE)
    assert pruned["metadata"] == obj["metadata"]
    assert "junk" not in pruned["spec"]
    assert pruned["spec"]["analysis"] == {"interval": "1m"}
    assert pruned["spec"]["service"] == {"port": 80, "anything": {"goes": [1, 2]}}
    assert pruned["spec"]["template"]["spec"] == {"x": 1}
    assert "status" not in pruned
    assert "junk" in obj["spec"], "prune must not modify its input"


def test_defaults_fill_missing_fields_inside_lists_and_replace_non_nullable_nulls() -> None:
    obj = canary(analysis={"metrics": [{"name": "a"}, {"name": "b", "interval": "5m"}]})
    defaulted = apply_defaults(obj, CANARY_LIKE)
    assert defaulted["spec"]["progressDeadlineSeconds"] == 600
    assert [m["interval"] for m in defaulted["spec"]["analysis"]["metrics"]] == ["1m", "5m"]
    assert "progressDeadlineSeconds" not in obj["spec"], "apply_defaults must not modify its input"
    nulls = apply_defaults(
        canary(progressDeadlineSeconds=None, nullableNote=None, createdAt=None), CANARY_LIKE
    )
    assert nulls["spec"]["progressDeadlineSeconds"] == 600
    assert nulls["spec"]["nullableNote"] is None
    assert "createdAt" not in nulls["spec"]


# --- real CRDs ----------------------------------------------------------------------------------


def http_route(**rule: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "istio-ingress"}],
            "hostnames": ["app.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "podinfo-primary", "port": 9898, "weight": 90},
                        {"name": "podinfo-canary", "port": 9898, "weight": 10},
                    ],
                    **rule,
                }
            ],
        },
    }


def test_gateway_api_httproute_valid_and_defaulted() -> None:
    schema = crd_schema("gateway-api/gateway.networking.k8s.io_httproutes.yaml")
    route = http_route()
    assert validate(route, schema) == []
    defaulted = apply_defaults(prune(route, schema), schema)
    assert defaulted["spec"]["parentRefs"][0]["kind"] == "Gateway"
    assert defaulted["spec"]["rules"][0]["backendRefs"][0]["kind"] == "Service"
    assert validate(defaulted, schema) == []


def test_gateway_api_httproute_invalid_fields_are_named() -> None:
    schema = crd_schema("gateway-api/gateway.networking.k8s.io_httproutes.yaml")
    route = http_route(
        backendRefs=[{"name": "podinfo", "port": "http", "weight": -1}],
        matches=[{"path": {"type": "Glob", "value": "/"}}],
    )
    assert sorted(e.path for e in validate(route, schema)) == [
        "spec.rules[0].backendRefs[0].port",
        "spec.rules[0].backendRefs[0].weight",
        "spec.rules[0].matches[0].path.type",
    ]


def test_istio_virtualservice_validation_and_pruning() -> None:
    schema = crd_schema("istio/networking.istio.io_virtualservices.yaml")
    service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo"},
        "spec": {
            "hosts": ["podinfo"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "podinfo-primary"}, "weight": 100},
                        {"destination": {"host": "podinfo-canary"}, "weight": 0},
                    ]
                }
            ],
            "notAField": True,
        },
    }
    assert validate(service, schema) == []
    assert "notAField" not in prune(service, schema)["spec"]
    service["spec"]["http"][0]["route"][1]["weight"] = "zero"
    assert [e.path for e in validate(service, schema)] == ["spec.http[0].route[1].weight"]


def test_validating_a_typical_object_against_a_big_schema_is_fast() -> None:
    # Not a timing assertion on the machine: a generous bound that only a per-call schema walk
    # (instead of the compiled cache) would exceed.
    schema = crd_schema("gateway-api/gateway.networking.k8s.io_httproutes.yaml")
    route = http_route()
    validate(route, schema)
    start = time.perf_counter()
    for _ in range(200):
        validate(route, schema)
    per_call = (time.perf_counter() - start) / 200
    assert per_call < 0.005


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    spec_extra=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4),
    metadata=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3),
)
def test_prune_is_idempotent_and_never_touches_root_metadata(
    spec_extra: dict[str, Any], metadata: dict[str, Any]
) -> None:
    obj = canary(**spec_extra)
    obj["metadata"] = metadata
    original = copy.deepcopy(obj)
    once = prune(obj, CANARY_LIKE)
    assert prune(once, CANARY_LIKE) == once
    assert once["metadata"] == metadata
    assert obj == original
    validate(once, CANARY_LIKE)  # never raises, whatever the input


ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "rules",
                    "matches",
                    "path",
                    "type",
                    "value",
                    "backendRefs",
                    "port",
                    "weight",
                    "name",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@given(ANY_JSON)
def test_arbitrary_json_never_crashes_the_real_crd_schemas(value: Any) -> None:
    for relative in (
        "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
        "istio/networking.istio.io_virtualservices.yaml",
    ):
        schema = crd_schema(relative)
        obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x"}, "spec": value}
        for candidate in (obj, value):
            validate(candidate, schema)
            validate(apply_defaults(prune(candidate, schema), schema), schema)


def test_huge_numbers_do_not_crash_enum_unique_or_multiple_of() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "enum": [1, 2], "multipleOf": 0.5},
            "xs": {"type": "array", "uniqueItems": True, "items": {"type": "number"}},
        },
    }
    errors = validate({"n": 10**400, "xs": [10**400, 1.0, 1]}, schema)
    assert sorted(e.path for e in errors) == ["n", "xs"]


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        (
            {"type": "number", "maximum": 1, "exclusiveMaximum": True},
            1,
            "Invalid value: 1: x in body should be less than 1",
        ),
        (
            {"type": "number", "minimum": 0.5, "exclusiveMinimum": True},
            0.5,
            "Invalid value: 0.5: x in body should be greater than 0.5",
        ),
        (
            {"type": "integer", "multipleOf": 5},
            7,
            "Invalid value: 7: x in body should be a multiple of 5",
        ),
        ({"type": "integer", "format": "int32"}, 2**31, "x in body must be of type int32"),
        (
            {"type": "array", "minItems": 2},
            [1],
            "Invalid value: 1: x in body should have at least 2 items",
        ),
        (
            {"type": "array", "uniqueItems": True},
            [1, 1.0],
            "Invalid value: [1,1.0]: x in body shouldn't contain duplicates",
        ),
        (
            {"type": "object", "minProperties": 1},
            {},
            "Invalid value: 0: x in body should have at least 1 properties",
        ),
        (
            {"type": "object", "maxProperties": 1},
            {"a": 1, "b": 2},
            "Too many: 2: must have at most 1 items",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
            },
            {"b": 1},
            "Forbidden: x.b in body is a forbidden property",
        ),
        (
            {"type": "string"},
            None,
            'Invalid value: "null": x in body must be of type string: "null"',
        ),
        (
            {"type": "string", "format": "byte"},
            "not base64!",
            'must be of type byte: "not base64!"',
        ),
        ({"type": "string", "format": "uuid"}, "nope", 'must be of type uuid: "nope"'),
        ({"type": "string", "format": "ipv4"}, "10.0.0.256", 'must be of type ipv4: "10.0.0.256"'),
        (
            {"type": "boolean", "enum": [True]},
            False,
            "Unsupported value: false: supported values: true",
        ),
    ],
)
def test_value_validations_are_worded_like_kubernetes(
    schema: dict[str, Any], value: Any, message: str
) -> None:
    reasons = [e.reason for e in validate(value, schema, "x")]
    assert any(message in reason for reason in reasons), reasons


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string", "format": "date-time"}, "2024-02-29T23:59:59.123+02:00"),
        ({"type": "string", "format": "date"}, "2024-02-29"),
        ({"type": "string", "format": "byte"}, "aGVsbG8="),
        ({"type": "string", "format": "cidr"}, "10.0.0.0/8"),
        ({"type": "string", "format": "ipv6"}, "::1"),
        ({"type": "string", "format": "hostname"}, "podinfo.test.svc.cluster.local"),
        ({"type": "string", "format": "url"}, "not checked: unknown formats are ignored"),
        ({"type": "string", "pattern": r"^\pL+$"}, "RE2-only syntax is skipped"),
        ({"type": "integer", "format": "int64"}, 2**40),
    ],
)
def test_lenient_formats_accept_valid_values(schema: dict[str, Any], value: Any) -> None:
    assert validate(value, schema, "x") == []
