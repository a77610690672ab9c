"""Go's fmt for template values: `Sprint`, `Sprintln`, `Sprintf` and `%v` of each value kind.

Template values are Python values standing for Go's: `None` is nil, `int` is int, `float` is
float64, `str` is string, a `Mapping` is a map (Flagger's `variables` is `map[string]string`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


def type_name(value: Any) -> str:
    """Go's `%T` of the value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        values = list(value.values())
        element = "string" if values and all(isinstance(v, str) for v in values) else "interface {}"
        return f"map[string]{element}"
    if isinstance(value, bytes):
        return "[]uint8"
    return "[]interface {}"


def go_float(value: float) -> str:
    """Go's shortest `%v`: exponent form below 1e-4 and from 1e+06 up (`1e+06`, `1.5e-05`)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exponent += len(digits) - len(text)
    point = len(text) + exponent
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_string(value: Any) -> str:
    """`%v` (and Sprint) of one value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for index, arg in enumerate(args):
        if index and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out.append(" ")
        out.append(go_string(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    return " ".join(go_string(arg) for arg in args) + "\n"


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
            "\v": r"\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip


def go_quote(text: str) -> str:
    """strconv.Quote: Go escapes, printable Unicode kept."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


_VERB = re.compile(
    r"%([-+# 0]*)(?:\[(\d+)\])?(\*|\d+)?(?:\.(\*|\d*))?(?:\[(\d+)\])?(.|$)", re.DOTALL
)


class _Bad(Exception):
    """A verb that does not apply to the value: Go prints `%!verb(type=value)`."""


def _pad(text: str, flags: str, width: int | None) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _integer(value: int, verb: str, flags: str, precision: int | None) -> str:
    if verb == "c":
        return chr(value)
    if verb == "q":
        return "'" + go_quote(chr(value))[1:-1].replace('\\"', '"') + "'"
    if verb == "U":
        return f"U+{value:04X}"
    base = {"d": "d", "v": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}.get(verb)
    if base is None:
        raise _Bad
    digits = format(abs(value), base)
    if precision is not None:
        digits = digits.zfill(precision)
    prefix = {"O": "0o"}.get(verb, "")
    if "#" in flags:
        prefix = {"x": "0x", "X": "0X", "o": "0", "b": "0b"}.get(verb, prefix)
    sign = "-" if value < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + prefix + digits


def _float(value: float, verb: str, flags: str, precision: int | None) -> str:
    if verb not in "eEfFgGv":
        raise _Bad
    if value != value or value in (float("inf"), float("-inf")):
        text = go_float(value)
        return "+" + text if "+" in flags and text == "+Inf" else text.lstrip("+")
    sign = "+" if "+" in flags else (" " if " " in flags else "")
    if verb in "gGv" and precision is None:
        text = go_float(value)
        text = text.upper() if verb == "G" else text
    else:
        text = format(value, f".{6 if precision is None else precision}{verb.replace('v', 'g')}")
    return sign + text if not text.startswith("-") else text


def _string(value: str, verb: str, precision: int | None) -> str:
    if verb in "sv":
        return value if precision is None else value[:precision]
    if verb == "q":
        return go_quote(value)
    if verb in "xX":
        hexed = value.encode().hex()
        return hexed.upper() if verb == "X" else hexed
    raise _Bad


def format_value(value: Any, verb: str, flags: str = "", precision: int | None = None) -> str:
    """One operand of Sprintf, before padding."""
    if verb == "T":
        return type_name(value)
    if verb == "v" and "#" in flags and isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        if verb not in "tv":
            raise _Bad
        return "true" if value else "false"
    if isinstance(value, int):
        return _integer(value, verb, flags, precision)
    if isinstance(value, float):
        return _float(value, verb, flags, precision)
    if isinstance(value, str):
        return _string(value, verb, precision)
    if isinstance(value, Mapping):
        items = (f"{format_value(k, verb, flags, precision)}:"
                 f"{format_value(value[k], verb, flags, precision)}" for k in sorted(value))  # fmt: skip
        return "map[" + " ".join(items) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(format_value(v, verb, flags, precision) for v in value) + "]"
    if value is None and verb == "v":
        return "<nil>"
    raise _Bad


def _bad(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={go_string(value)})"


def go_sprintf(template: str, *args: Any) -> str:
    """Go's fmt.Sprintf: verbs, flags, width, precision, `*` and explicit `[n]` indexes."""
    out: list[str] = []
    at = 0
    next_arg = 0
    reordered = False

    def take(index: str | None) -> tuple[bool, Any]:
        nonlocal next_arg, reordered
        if index is not None:
            next_arg = int(index) - 1
            reordered = True
        if 0 <= next_arg < len(args):
            next_arg += 1
            return True, args[next_arg - 1]
        return False, None

    for match in _VERB.finditer(template):
        out.append(template[at : match.start()])
        at = match.end()
        flags, index, width_text, precision_text, late_index, verb = match.groups()
        if verb == "":
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        width = precision = None
        if width_text == "*":
            _, width = take(index)
            index = None
        elif width_text:
            width = int(width_text)
        if precision_text == "*":
            _, precision = take(index)
            index = None
        elif precision_text is not None:
            precision = int(precision_text or 0)
        found, value = take(late_index or index)
        if not found:
            out.append(f"%!{verb}(BADINDEX)" if reordered else f"%!{verb}(MISSING)")
            continue
        try:
            text = format_value(value, verb, flags, precision)
        except _Bad:
            out.append(_bad(verb, value))
            continue
        out.append(_pad(text, flags, width if isinstance(width, int) else None))
    out.append(template[at:])
    if not reordered and next_arg < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{type_name(a)}={go_string(a)}" for a in args[next_arg:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
