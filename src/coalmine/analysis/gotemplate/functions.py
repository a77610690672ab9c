"""text/template's predefined functions, with Go's rules and messages.

`and` and `or` are not here: they evaluate their arguments lazily, so the executor runs them.
A function signals a Go error by raising `FunctionError`; the executor reports it as
`error calling NAME: …`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from coalmine.analysis.gotemplate.fmt import go_sprintf, sprint, sprintln, type_name


class FunctionError(Exception):
    """A Go function's error result."""


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, maps and lists are false."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | complex):
        return bool(value)
    if isinstance(value, str | bytes | Mapping | Sequence):
        return len(value) > 0
    return True


def _kind(value: Any) -> str:
    """Go's basicKind; `invalid` for nil, `other` for maps and lists."""
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def eq(first: Any, *others: Any) -> bool:
    if not others:
        raise FunctionError("missing argument for comparison")
    for other in others:
        kinds = (_kind(first), _kind(other))
        if kinds[0] != kinds[1]:
            if "invalid" not in kinds:
                raise FunctionError("incompatible types for comparison")
            continue
        if kinds[0] == "other":
            raise FunctionError(f"non-comparable type {sprint(first)}: {type_name(first)}")
        if first == other:
            return True
    return False


def ne(first: Any, second: Any) -> bool:
    return not eq(first, second)


def lt(first: Any, second: Any) -> bool:
    kinds = (_kind(first), _kind(second))
    if any(kind in ("invalid", "other", "bool") for kind in kinds):
        raise FunctionError("invalid type for comparison")
    if kinds[0] != kinds[1]:
        raise FunctionError("incompatible types for comparison")
    return bool(first < second)


def le(first: Any, second: Any) -> bool:
    return lt(first, second) or eq(first, second)


def gt(first: Any, second: Any) -> bool:
    return not le(first, second)


def ge(first: Any, second: Any) -> bool:
    return not lt(first, second)


def not_(value: Any) -> bool:
    return not truth(value)


def length(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, Mapping | Sequence):
        return len(item)
    raise FunctionError(f"len of type {type_name(item)}")


def _zero(container: Mapping[Any, Any]) -> Any:
    kinds = {type(value) for value in container.values()}
    if kinds == {str}:
        return ""
    if kinds == {int}:
        return 0
    return None


def index(item: Any, *keys: Any) -> Any:
    """index x 1 2: x[1][2]; a missing map key gives the map's zero value, as in Go."""
    value = item
    for key in keys:
        if value is None:
            raise FunctionError("index of untyped nil")
        if isinstance(value, Mapping):
            if value and isinstance(next(iter(value)), str) and not isinstance(key, str):
                raise FunctionError(f"value has type {type_name(key)}; should be string")
            value = value[key] if key in value else _zero(value)
        elif isinstance(value, str | Sequence):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FunctionError(f"cannot index slice/array with type {type_name(key)}")
            sequence: Any = value.encode() if isinstance(value, str) else value
            if not 0 <= key < len(sequence):
                raise FunctionError(f"index out of range: {key}")
            value = sequence[key]
        else:
            raise FunctionError(f"can't index item of type {type_name(value)}")
    return value


def slice_(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, str | Sequence) or isinstance(item, Mapping):
        raise FunctionError(f"can't slice item of type {type_name(item)}")
    if len(bounds) > (2 if isinstance(item, str) else 3):
        raise FunctionError(f"too many slice indexes: {len(bounds)}")
    sequence: Any = item.encode() if isinstance(item, str) else item
    numbers = [int(b) for b in bounds]
    start = numbers[0] if numbers else 0
    end = numbers[1] if len(numbers) > 1 else len(sequence)
    if not 0 <= start <= end <= len(sequence):
        raise FunctionError(f"index out of range: {end if end > len(sequence) else start}")
    result = sequence[start:end]
    return result.decode(errors="replace") if isinstance(item, str) else result


def _joined(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*args)


def html(*args: Any) -> str:
    text = _joined(args)
    for char, escaped in (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;"),
                          ('"', "&#34;"), ("\0", "\ufffd")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


def js(*args: Any) -> str:
    out = []
    for char in _joined(args):
        if char in "\\'\"":
            out.append("\\" + char)
        elif char in "<>&=`":
            out.append(f"\\u{ord(char):04X}")
        elif ord(char) < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04X}"))
        else:
            out.append(char)
    return "".join(out)


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_joined(args), safe="")


BUILTINS: dict[str, Callable[..., Any]] = {
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "not": not_,
    "len": length,
    "index": index,
    "slice": slice_,
    "print": sprint,
    "println": sprintln,
    "printf": go_sprintf,
    "html": html,
    "js": js,
    "urlquery": urlquery,
}
LAZY = ("and", "or")
"""Evaluated by the executor: they stop at the first argument that decides."""
