"""Structural openAPIV3Schema validation, pruning and defaulting, as the API server does for CRDs.

The API server handles a custom resource in this order: decode, prune unknown fields, drop nulls of
non-nullable fields without a default, apply defaults, validate. The three public functions here are
those steps; the caller owns apiVersion/kind/metadata of the root object.

Over ~600 lines: one recursive walk per step over the same schema keywords, kept together so
the three stay in agreement.

Error paths and messages are worded like Kubernetes' (`spec.x: Invalid value: "string": spec.x in
body must be of type integer: "string"`), so tests written against devcluster read the same as
against a real cluster.

Known differences from a real API server:
- `x-kubernetes-validations` (CEL rules) are not evaluated; objects that break a CEL rule are accepted.
- Patterns use Python's `re` with `re.search` semantics (as Kubernetes' RE2 does); RE2-only syntax
  that Python cannot compile (`\\pL`...) makes that pattern check a no-op instead of an error.
- `format` is checked leniently for the common formats (date-time, date, byte, uuid, ipv4, ipv6,
  cidr, hostname, int32, int64); unknown formats are ignored, as Kubernetes does.
- Embedded resources' `metadata` is only checked to be an object, not validated as ObjectMeta.
- The schema itself is trusted: a non-structural schema is not rejected.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = ["FieldError", "apply_defaults", "prune", "validate"]

_ROOT_OBJECT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@dataclass(frozen=True)
class FieldError:
    """One invalid field, shaped like a Kubernetes `StatusCause` (field, message, reason)."""

    path: str
    reason: str
    cause: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


# --- message formatting, as Go's field.Error.ErrorBody does -------------------------------------


def _go_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_error(path: str, expected: str, actual: str) -> FieldError:
    return FieldError(
        path,
        f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"',
        "FieldValueTypeInvalid",
    )


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, f"Invalid value: {_go_value(value)}: {detail}", "FieldValueInvalid")


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON value; much faster than copy.deepcopy for dicts, lists and scalars."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON value where 1 == 1.0 but True != 1, as JSON equality wants."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)  # 1 == 1.0 and hash(1) == hash(1.0); no float() so huge ints work
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list):
        return ("a", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("o", frozenset((k, _canonical(v)) for k, v in value.items()))
    return ("?", repr(value))


# --- formats ------------------------------------------------------------------------------------

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_HOSTNAME = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$"
)


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt == "date-time":
            if not _DATE_TIME.match(value):
                return False
            datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
        elif fmt == "date":
            date.fromisoformat(value)
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        elif fmt == "uuid":
            return bool(_UUID.match(value))
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif fmt == "hostname":
            return len(value) <= 253 and bool(_HOSTNAME.match(value))
    except (ValueError, binascii.Error):
        return False
    return True


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    # RE2's \z (end of text) is Python's \Z; everything else Flagger and the router CRDs use is
    # common syntax.
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error:
        return None


# --- compiled schema nodes ----------------------------------------------------------------------


class _Node:
    """One schema node with every keyword looked up once, so validation is attribute reads."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "default",
        "embedded",
        "enum",
        "enum_keys",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "has_default",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "max_items",
        "max_length",
        "max_properties",
        "maximum",
        "min_items",
        "min_length",
        "min_properties",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_text",
        "preserve_unknown",
        "properties",
        "required",
        "type",
        "unique_items",
    )

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.type: str | None = schema.get("type")
        self.nullable = bool(schema.get("nullable", False))
        props = schema.get("properties")
        self.properties: dict[str, _Node] | None = (
            {name: _Node(sub) for name, sub in props.items()} if props else None
        )
        self.required: tuple[str, ...] = tuple(schema.get("required") or ())
        additional = schema.get("additionalProperties")
        self.additional: _Node | bool | None
        if isinstance(additional, Mapping):
            self.additional = _Node(additional)
        elif isinstance(additional, bool):
            self.additional = additional
        else:
            self.additional = None
        items = schema.get("items")
        self.items: _Node | None = _Node(items) if isinstance(items, Mapping) else None
        enum = schema.get("enum")
        self.enum: list[Any] | None = list(enum) if enum is not None else None
        self.enum_keys = frozenset(_canonical(v) for v in enum) if enum is not None else None
        self.pattern_text: str | None = schema.get("pattern")
        self.pattern = _compile_pattern(self.pattern_text) if self.pattern_text else None
        self.format: str | None = schema.get("format")
        self.minimum: float | None = schema.get("minimum")
        self.maximum: float | None = schema.get("maximum")
        self.exclusive_minimum = bool(schema.get("exclusiveMinimum", False))
        self.exclusive_maximum = bool(schema.get("exclusiveMaximum", False))
        self.multiple_of: float | None = schema.get("multipleOf")
        self.min_length: int | None = schema.get("minLength")
        self.max_length: int | None = schema.get("maxLength")
        self.min_items: int | None = schema.get("minItems")
        self.max_items: int | None = schema.get("maxItems")
        self.unique_items = bool(schema.get("uniqueItems", False))
        self.min_properties: int | None = schema.get("minProperties")
        self.max_properties: int | None = schema.get("maxProperties")
        self.all_of = [_Node(s) for s in schema.get("allOf") or ()]
        self.any_of = [_Node(s) for s in schema.get("anyOf") or ()]
        self.one_of = [_Node(s) for s in schema.get("oneOf") or ()]
        not_ = schema.get("not")
        self.not_: _Node | None = _Node(not_) if isinstance(not_, Mapping) else None
        self.int_or_string = bool(schema.get("x-kubernetes-int-or-string", False))
        self.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields", False))
        self.embedded = bool(schema.get("x-kubernetes-embedded-resource", False))
        self.list_type: str | None = schema.get("x-kubernetes-list-type")
        self.list_map_keys: tuple[str, ...] = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        self.has_default = "default" in schema
        self.default: Any = schema.get("default")

    # validation ---------------------------------------------------------------------------------

    def validate(self, value: Any, path: str, errors: list[FieldError]) -> None:
        if value is None:
            if self.nullable or (self.type is None and not self.int_or_string):
                return
            errors.append(_type_error(path, self.type or "integer,string", "null"))
            return
        kind = _json_type(value)
        if self.type is not None:
            if not (
                kind == self.type
                or (self.type == "number" and kind == "integer")
                or (self.int_or_string and kind in ("integer", "string"))
            ):
                errors.append(_type_error(path, self.type, kind))
                return
        elif self.int_or_string and kind not in ("integer", "string"):
            errors.append(_type_error(path, "integer,string", kind))
            return

        if self.enum_keys is not None and _canonical(value) not in self.enum_keys:
            supported = ", ".join(
                json.dumps(v) if isinstance(v, str) else _go_value(v) for v in self.enum or ()
            )
            errors.append(
                FieldError(
                    path,
                    f"Unsupported value: {_go_value(value)}: supported values: {supported}",
                    "FieldValueNotSupported",
                )
            )

        if kind == "string":
            self._validate_string(value, path, errors)
        elif kind == "integer" or kind == "number":
            self._validate_number(value, path, errors)
        elif kind == "object":
            self._validate_object(value, path, errors)
        elif kind == "array":
            self._validate_array(value, path, errors)

        if self.all_of or self.any_of or self.one_of or self.not_ is not None:
            self._validate_junctors(value, path, errors)

    def _validate_string(self, value: str, path: str, errors: list[FieldError]) -> None:
        if self.max_length is not None and len(value) > self.max_length:
            errors.append(
                FieldError(
                    path,
                    f"Too long: may not be more than {self.max_length} byte{'' if self.max_length == 1 else 's'}",
                    "FieldValueTooLong",
                )
            )
        if self.min_length is not None and len(value) < self.min_length:
            errors.append(
                _invalid(
                    path, value, f"{path} in body should be at least {self.min_length} chars long"
                )
            )
        if self.pattern is not None and self.pattern.search(value) is None:
            errors.append(
                _invalid(path, value, f"{path} in body should match '{self.pattern_text}'")
            )
        if (
            self.format is not None
            and self.format not in _INT_RANGES
            and not _format_ok(self.format, value)
        ):
            errors.append(
                FieldError(
                    path,
                    f"Invalid value: {_go_value(value)}: {path} in body must be of type {self.format}: {_go_value(value)}",
                    "FieldValueTypeInvalid",
                )
            )

    def _validate_number(self, value: float, path: str, errors: list[FieldError]) -> None:
        if self.maximum is not None:
            if self.exclusive_maximum and value >= self.maximum:
                errors.append(
                    _invalid(
                        path,
                        value,
                        f"{path} in body should be less than {_go_number(self.maximum)}",
                    )
                )
            elif value > self.maximum:
                errors.append(
                    _invalid(
                        path,
                        value,
                        f"{path} in body should be less than or equal to {_go_number(self.maximum)}",
                    )
                )
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                errors.append(
                    _invalid(
                        path,
                        value,
                        f"{path} in body should be greater than {_go_number(self.minimum)}",
                    )
                )
            elif value < self.minimum:
                errors.append(
                    _invalid(
                        path,
                        value,
                        f"{path} in body should be greater than or equal to {_go_number(self.minimum)}",
                    )
                )
        if self.multiple_of:
            try:
                quotient = value / self.multiple_of
                multiple = math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9)
            except (OverflowError, ZeroDivisionError):
                multiple = True  # beyond float range: Kubernetes would not decide this either
            if not multiple:
                errors.append(
                    _invalid(
                        path,
                        value,
                        f"{path} in body should be a multiple of {_go_number(self.multiple_of)}",
                    )
                )
        if isinstance(value, int) and self.format in _INT_RANGES:
            low, high = _INT_RANGES[self.format]
            if not low <= value <= high:
                errors.append(
                    _invalid(path, value, f"{path} in body must be of type {self.format}")
                )

    def _validate_object(self, value: dict[str, Any], path: str, errors: list[FieldError]) -> None:
        properties = self.properties
        for name in self.required:
            if name not in value:
                errors.append(
                    FieldError(_child(path, name), "Required value", "FieldValueRequired")
                )
        if self.embedded:
            for name in ("apiVersion", "kind"):
                if not value.get(name):
                    errors.append(
                        FieldError(
                            _child(path, name),
                            "Required value: must not be empty",
                            "FieldValueRequired",
                        )
                    )
            metadata = value.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                errors.append(_type_error(_child(path, "metadata"), "object", _json_type(metadata)))
        additional = self.additional
        for name, sub_value in value.items():
            node = properties.get(name) if properties is not None else None
            if node is not None:
                node.validate(sub_value, _child(path, name), errors)
            elif isinstance(additional, _Node):
                additional.validate(sub_value, _child(path, name), errors)
            elif additional is False and not (self.embedded and name in _ROOT_OBJECT_FIELDS):
                errors.append(
                    FieldError(
                        _child(path, name),
                        f"Forbidden: {_child(path, name)} in body is a forbidden property",
                        "FieldValueForbidden",
                    )
                )
        count = len(value)
        if self.max_properties is not None and count > self.max_properties:
            errors.append(
                FieldError(
                    path,
                    f"Too many: {count}: must have at most {self.max_properties} items",
                    "FieldValueTooMany",
                )
            )
        if self.min_properties is not None and count < self.min_properties:
            errors.append(
                _invalid(
                    path,
                    count,
                    f"{path} in body should have at least {self.min_properties} properties",
                )
            )

    def _validate_array(self, value: list[Any], path: str, errors: list[FieldError]) -> None:
        count = len(value)
        if self.max_items is not None and count > self.max_items:
            errors.append(
                FieldError(
                    path,
                    f"Too many: {count}: must have at most {self.max_items} items",
                    "FieldValueTooMany",
                )
            )
        if self.min_items is not None and count < self.min_items:
            errors.append(
                _invalid(path, count, f"{path} in body should have at least {self.min_items} items")
            )
        items = self.items
        if items is not None:
            for index, item in enumerate(value):
                items.validate(item, f"{path}[{index}]", errors)
        if self.unique_items and count > 1:
            keys = [_canonical(v) for v in value]
            if len(set(keys)) != count:
                errors.append(_invalid(path, value, f"{path} in body shouldn't contain duplicates"))
        if self.list_type == "set" and count > 1:
            seen: set[Any] = set()
            for index, item in enumerate(value):
                key = _canonical(item)
                if key in seen:
                    errors.append(
                        FieldError(
                            f"{path}[{index}]",
                            f"Duplicate value: {_go_value(item)}",
                            "FieldValueDuplicate",
                        )
                    )
                seen.add(key)
        elif self.list_type == "map" and self.list_map_keys and count > 1:
            seen_maps: set[Any] = set()
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key_values = {k: item.get(k) for k in self.list_map_keys if k in item}
                key = _canonical(key_values)
                if key in seen_maps:
                    errors.append(
                        FieldError(
                            f"{path}[{index}]",
                            f"Duplicate value: {_go_value(key_values)}",
                            "FieldValueDuplicate",
                        )
                    )
                seen_maps.add(key)

    def _validate_junctors(self, value: Any, path: str, errors: list[FieldError]) -> None:
        for node in self.all_of:
            node.validate(value, path, errors)
        if self.any_of:
            alternatives: list[list[FieldError]] = []
            for node in self.any_of:
                found: list[FieldError] = []
                node.validate(value, path, found)
                if not found:
                    break
                alternatives.append(found)
            else:
                errors.append(
                    _invalid(
                        path, value, f"{path} in body must validate at least one schema (anyOf)"
                    )
                )
                for found in alternatives:
                    errors.extend(e for e in found if e not in errors)
        if self.one_of:
            valid = 0
            first_errors: list[FieldError] = []
            for node in self.one_of:
                found = []
                node.validate(value, path, found)
                if not found:
                    valid += 1
                elif not first_errors:
                    first_errors = found
            if valid != 1:
                errors.append(
                    _invalid(
                        path, value, f"{path} in body must validate one and only one schema (oneOf)"
                    )
                )
                if valid == 0:
                    errors.extend(first_errors)
        if self.not_ is not None:
            found = []
            self.not_.validate(value, path, found)
            if not found:
                errors.append(
                    _invalid(path, value, f"{path} in body must not validate the schema (not)")
                )

    # pruning ------------------------------------------------------------------------------------

    def prune(self, value: Any, root: bool = False) -> Any:
        if isinstance(value, dict):
            return self._prune_object(value, root)
        if isinstance(value, list):
            items = self.items
            if items is None:
                return _copy_json(value)
            return [items.prune(item) for item in value]
        return value

    def _prune_object(self, value: dict[str, Any], root: bool) -> dict[str, Any]:
        properties = self.properties or {}
        additional = self.additional
        keep_meta = root or self.embedded
        result: dict[str, Any] = {}
        for name, sub_value in value.items():
            node = properties.get(name)
            if node is not None and not (root and name == "metadata"):
                result[name] = node.prune(sub_value)
            elif keep_meta and name in _ROOT_OBJECT_FIELDS:
                result[name] = _copy_json(sub_value)
            elif isinstance(additional, _Node):
                result[name] = additional.prune(sub_value)
            elif additional is True or self.preserve_unknown or self.int_or_string:
                result[name] = _copy_json(sub_value)
            elif self.type is None and not self.properties and additional is None:
                # An untyped node (value validations only) has no structure to prune against.
                result[name] = _copy_json(sub_value)
        return result

    # defaulting ---------------------------------------------------------------------------------

    def default_in_place(self, value: Any) -> None:
        if isinstance(value, dict):
            properties = self.properties
            if properties:
                for name, node in properties.items():
                    present = name in value
                    if present and value[name] is None and not node.nullable:
                        if node.has_default:
                            value[name] = _copy_json(node.default)
                        else:
                            del value[name]
                    elif not present and node.has_default:
                        value[name] = _copy_json(node.default)
            additional = self.additional
            for name in list(value):
                sub_value = value[name]
                target = properties.get(name) if properties else None
                if target is None and isinstance(additional, _Node):
                    target = additional
                    if sub_value is None and not target.nullable:
                        del value[name]
                        continue
                if target is not None and isinstance(sub_value, dict | list):
                    target.default_in_place(sub_value)
        elif isinstance(value, list) and self.items is not None:
            for item in value:
                if isinstance(item, dict | list):
                    self.items.default_in_place(item)


_COMPILED: dict[int, tuple[Mapping[str, Any], _Node]] = {}
_COMPILED_LIMIT = 256


def _compiled(schema: Mapping[str, Any]) -> _Node:
    """The compiled form of `schema`, cached by identity (CRD schemas live as long as the CRD)."""
    entry = _COMPILED.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    node = _Node(schema)
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.pop(next(iter(_COMPILED)))
    # Holding the schema keeps its id from being reused by another object while cached.
    _COMPILED[id(schema)] = (schema, node)
    return node


def validate(obj: object, schema: Mapping[str, Any], path: str = "") -> list[FieldError]:
    """Every violation of `schema` by `obj`, in Kubernetes' wording; empty when valid."""
    errors: list[FieldError] = []
    _compiled(schema).validate(obj, path, errors)
    return errors


def prune(obj: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of `obj` without the fields `schema` does not know (root apiVersion/kind/metadata kept)."""
    return _compiled(schema).prune(obj, root=True)


def apply_defaults(obj: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of `obj` with schema defaults filled in, and nulls of non-nullable fields dropped."""
    result = _copy_json(obj)
    _compiled(schema).default_in_place(result)
    return result
