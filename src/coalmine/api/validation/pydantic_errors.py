"""pydantic's errors in our path/reason form (union alternatives folded into one problem)."""

from __future__ import annotations

import re
from typing import Any, cast

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from coalmine.api.models import DURATION_PATTERN
from coalmine.api.validation.problems import Problem, format_path, show

_UNION_TAGS = {"int": "an integer", "str": "a string", "float": "a number", "bool": "a boolean"}
_TYPE_NOUNS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "mapping_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
    "iterable_type": "a list",
}


def translate_validation_error(exc: ValidationError) -> list[Problem]:
    """Our path/reason form of pydantic's errors (union alternatives folded into one problem)."""
    problems: list[Problem] = []
    union_nouns: dict[str, list[str]] = {}
    union_inputs: dict[str, object] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        if len(loc) >= 2 and isinstance(loc[-1], str) and loc[-1] in _UNION_TAGS:
            tag = cast(str, loc.pop())
            path = format_path(loc)
            union_nouns.setdefault(path, []).append(_UNION_TAGS[tag])
            union_inputs[path] = error["input"]
            continue
        if loc and loc[-1] == "[key]":
            loc.pop()
            problems.append(
                Problem(format_path(loc[:-1]), f"keys must be strings, got {show(loc[-1])}")
            )
            continue
        problems.append(Problem(format_path(loc), _reason(error)))
    for path, nouns in union_nouns.items():
        problems.append(
            Problem(path, f"must be {' or '.join(nouns)}, got {show(union_inputs[path])}")
        )
    return problems


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error["input"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _TYPE_NOUNS:
        return f"must be {_TYPE_NOUNS[kind]}, got {show(value)}"
    if kind == "literal_error":
        expected = re.sub(r"'([^']*)'", r'"\1"', str(ctx.get("expected", "")))
        return f"must be one of {expected}, got {show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {show(value)}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, got {show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {show(value)}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {show(value)}"
    if kind == "too_long":
        unit = "characters" if isinstance(value, str) else "items"
        return f"must have at most {ctx.get('max_length')} {unit}"
    if kind == "too_short":
        unit = "characters" if isinstance(value, str) else "items"
        minimum = ctx.get("min_length")
        return "must not be empty" if minimum == 1 else f"must have at least {minimum} {unit}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == DURATION_PATTERN:
            return f"must be a duration such as 30s or 1m, got {show(value)}"
        return f"must match {ctx.get('pattern')}, got {show(value)}"
    message = str(error.get("msg", "is invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return f"is invalid ({message})"
