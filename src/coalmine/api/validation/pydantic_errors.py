"""pydantic's errors in our path/reason form (union alternatives folded into one problem)."""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
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


def translate_validation_error(
    exc: ValidationError, model: type[BaseModel] | None = None
) -> list[Problem]:
    """Our path/reason form of pydantic's errors (union alternatives folded into one problem).

    With the validated `model`, unknown fields get a "did you mean" from the fields of the object
    they are in, and non-string durations a hint at the duration form.
    """
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
        reason = _reason(error)
        if model is not None:
            reason = _with_hint(model, loc, error, reason)
        problems.append(Problem(format_path(loc), reason))
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


# --- hints from the model: "did you mean", durations -------------------------------------------


def _with_hint(
    model: type[BaseModel], loc: list[str | int], error: ErrorDetails, reason: str
) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        owner = _model_at(model, loc[:-1])
        if owner is not None:
            suggestion = suggest_field(loc[-1], field_aliases(owner))
            if suggestion is not None:
                return f'{reason}; did you mean "{suggestion}"?'
    if kind in _TYPE_NOUNS and isinstance(error["input"], int | float | bool):
        info = _field_at(model, loc)
        if info is not None and _is_duration(info):
            return f"must be a duration like 5s or 1m (a number needs a unit), got {show(error['input'])}"
    return reason


def field_aliases(model: type[BaseModel]) -> list[str]:
    """The names a user writes for the fields of `model` (camelCase)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def suggest_field(name: str, candidates: list[str]) -> str | None:
    """The field `name` was probably meant to be: same letters in another case, or a close spelling."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[close[0]] if close else None


def _is_duration(info: FieldInfo) -> bool:
    return any(getattr(meta, "pattern", None) == DURATION_PATTERN for meta in info.metadata)


def options_of(annotation: Any) -> list[Any]:
    """The alternatives of an optional, union or annotated type (the type itself otherwise)."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return [option for arg in get_args(annotation) for option in options_of(arg)]
    if origin is Annotated:
        return options_of(get_args(annotation)[0])
    return [annotation]


def _step(annotation: Any, part: str | int) -> tuple[Any, FieldInfo | None] | None:
    """The type found at `part` inside a value of type `annotation`, and its field when a model's."""
    for option in options_of(annotation):
        origin = get_origin(option)
        if isinstance(part, int) and origin in (list, tuple):
            return get_args(option)[0], None
        if isinstance(part, str) and origin is dict:
            return get_args(option)[1], None
        if isinstance(part, str) and isinstance(option, type) and issubclass(option, BaseModel):
            for name, info in option.model_fields.items():
                if part in (info.alias, name):
                    return info.annotation, info
    return None


def _walk(model: type[BaseModel], loc: list[str | int]) -> tuple[Any, FieldInfo | None] | None:
    annotation: Any = model
    info: FieldInfo | None = None
    for part in loc:
        found = _step(annotation, part)
        if found is None:
            return None
        annotation, info = found
    return annotation, info


def _model_at(model: type[BaseModel], loc: list[str | int]) -> type[BaseModel] | None:
    found = _walk(model, loc)
    if found is None:
        return None
    for option in options_of(found[0]):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _field_at(model: type[BaseModel], loc: list[str | int]) -> FieldInfo | None:
    found = _walk(model, loc)
    return found[1] if found is not None else None
