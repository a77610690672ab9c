"""Label and field selectors, parsed and matched as apimachinery's `labels` and `fields` do.

Label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a` (exists), `!a`
(does not exist), `a>1`, `a<1` (numeric), joined by commas (AND). Keys and values are validated
with Kubernetes' rules and messages. Field selectors: `path=value`, `path==value`, `path!=value`
on dotted paths, with `\\,`, `\\=` and `\\\\` escapes.

Field selectors are accepted on the paths a real server allows for each kind (`FIELD_LABELS`:
`metadata.name` and `metadata.namespace` everywhere, plus a few per built-in kind such as a Pod's
`status.phase` or a Secret's `type`); CRD `selectableFields` are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_selector_from_object",
    "label_value_problems",
    "parse_field_selector",
    "parse_label_selector",
    "qualified_name_problems",
    "unknown_field_label",
]


class SelectorError(ValueError):
    """A selector that does not parse or names an invalid key or value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- validation of keys and values (apimachinery/pkg/util/validation) ---------------------------

_NAME_FMT = "[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_NAME = re.compile(f"^{_NAME_FMT}$")
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
    f"or '12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
)
_SUBDOMAIN_MSG = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _key_problems(key: str) -> list[str]:
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253:
            return ["prefix part must be no more than 253 characters"]
        if not _DNS1123_SUBDOMAIN.match(prefix):
            return [_SUBDOMAIN_MSG]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    if len(name) > 63:
        return ["name part must be no more than 63 characters"]
    if not _NAME.match(name):
        return [_NAME_MSG]
    return []


def qualified_name_problems(key: str) -> list[str]:
    """Why `key` is not a valid label/annotation key (apimachinery's IsQualifiedName); [] if valid."""
    return _key_problems(key)


def label_value_problems(value: str) -> list[str]:
    """Why `value` is not a valid label value (apimachinery's IsValidLabelValue); [] if valid."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        problems.append(_VALUE_MSG)
    return problems


def _validate_key(key: str) -> None:
    problems = _key_problems(key)
    if problems:
        raise SelectorError(f'key: Invalid value: "{key}": {"; ".join(problems)}')


def _validate_value(value: str, index: int, key: str) -> None:
    problems = label_value_problems(value)
    if problems:
        raise SelectorError(
            f'values[{index}][{key}]: Invalid value: "{value}": {"; ".join(problems)}'
        )


# --- label selectors ----------------------------------------------------------------------------

_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    """One clause: `key` `operator` `values`; operator is one of `_OPERATORS`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if self.key not in labels:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if op == "gt" else actual < bound

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return f"!{self.key}"
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(op, op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement(key: str, operator: str, values: Iterable[str]) -> Requirement:
    _validate_key(key)
    vals = tuple(values)
    if operator in ("in", "notin") and not vals:
        raise SelectorError(
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        )
    if operator in ("=", "==", "!=") and len(vals) != 1:
        raise SelectorError(
            f"values: Invalid value: {list(vals)}: exact-match compatibility requires one single value"
        )
    if operator in ("gt", "lt"):
        if len(vals) != 1:
            raise SelectorError(
                "values: Invalid value: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        try:
            int(vals[0])
        except ValueError:
            raise SelectorError(
                f"values[0]: Invalid value: \"{vals[0]}\": for 'Gt', 'Lt' operators, the value must be an integer"
            ) from None
    for index, value in enumerate(vals):
        _validate_value(value, index, key)
    return Requirement(
        key, operator, tuple(sorted(set(vals))) if operator in ("in", "notin") else vals
    )


_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|>|<|\(|\)|,|!)|(?P<word>[^\s=!<>(),]+))")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise SelectorError(f"unable to parse requirement: unexpected character at {position}")
        position = match.end()
        token = match.group("op") or match.group("word")
        if token is not None:
            tokens.append(token)
    return tokens


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `labelSelector=` query text; raises SelectorError worded like kube-apiserver (the
    HTTP layer prefixes `unable to parse requirement: `)."""
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    i = 0

    def expect_word(what: str) -> str:
        nonlocal i
        if i >= len(tokens):
            raise SelectorError(f"found '', expected: {what}")
        token = tokens[i]
        if token in ("==", "!=", "=", ">", "<", "(", ")", ",", "!"):
            raise SelectorError(f"found '{token}', expected: {what}")
        i += 1
        return token

    while i < len(tokens):
        if tokens[i] == "!":
            i += 1
            key = expect_word("identifier")
            requirements.append(_requirement(key, "!", ()))
        else:
            key = expect_word("identifier")
            if i >= len(tokens) or tokens[i] == ",":
                requirements.append(_requirement(key, "exists", ()))
            else:
                op = tokens[i]
                i += 1
                if op in ("=", "==", "!="):
                    if (i < len(tokens) and tokens[i] in (",",)) or i >= len(tokens):
                        value = ""
                    else:
                        value = expect_word("identifier")
                    requirements.append(_requirement(key, op, (value,)))
                elif op in (">", "<"):
                    value = expect_word("identifier")
                    requirements.append(_requirement(key, "gt" if op == ">" else "lt", (value,)))
                elif op in ("in", "notin"):
                    if i >= len(tokens) or tokens[i] != "(":
                        found = tokens[i] if i < len(tokens) else ""
                        raise SelectorError(f"found '{found}', expected: '('")
                    i += 1
                    values: list[str] = []
                    expecting_value = True
                    while True:
                        if i >= len(tokens):
                            raise SelectorError("found '', expected: ')'")
                        token = tokens[i]
                        if token == ")":
                            if expecting_value and values:
                                values.append("")
                            i += 1
                            break
                        if token == ",":
                            if expecting_value:
                                values.append("")
                            expecting_value = True
                            i += 1
                            continue
                        if not expecting_value:
                            raise SelectorError(f"found '{token}', expected: ',' or ')'")
                        values.append(expect_word("identifier"))
                        expecting_value = False
                    requirements.append(_requirement(key, op, values))
                else:
                    raise SelectorError(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise SelectorError(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
            if i >= len(tokens):
                raise SelectorError("found '', expected: identifier after ','")
    return LabelSelector(tuple(requirements))


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels + matchExpressions); empty or missing matches all."""
    if not sel:
        return LabelSelector()
    if not isinstance(sel, Mapping):
        raise SelectorError(f"selector must be an object, not {type(sel).__name__}")
    requirements: list[Requirement] = []
    match_labels = sel.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be an object")
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise SelectorError(f"matchLabels[{key}]: Invalid value: {value!r}: must be a string")
        requirements.append(_requirement(key, "=", (value,)))
    expressions = sel.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    for index, expression in enumerate(expressions):
        if not isinstance(expression, Mapping):
            raise SelectorError(f"matchExpressions[{index}] must be an object")
        operator = expression.get("operator")
        key = expression.get("key")
        values = expression.get("values") or []
        if not isinstance(key, str):
            raise SelectorError(f"matchExpressions[{index}].key: Required value")
        if operator not in _EXPRESSION_OPERATORS:
            raise SelectorError(f'"{operator}" is not a valid label selector operator')
        op = _EXPRESSION_OPERATORS[operator]
        if op in ("exists", "!") and values:
            raise SelectorError(
                f"values: Invalid value: {list(values)}: values set must be empty for exists and does not exist"
            )
        requirements.append(_requirement(key, op, [str(v) for v in values]))
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


# --- field selectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = _field_string(obj, self.path)
        return (actual == self.value) == (self.operator == "=")


def _field_string(obj: Mapping[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, float) and current.is_integer():
        return str(int(current))
    if isinstance(current, dict | list):
        return ""
    return str(current)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(f"{r.path}{r.operator}{_escape(r.value)}" for r in self.requirements)


META_FIELDS = ("metadata.name", "metadata.namespace")
_EVENT_FIELDS = (
    *(
        f"involvedObject.{f}"
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    ),
    "reason",
    "reportingComponent",
    "source",
    "type",
)
FIELD_LABELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ),
    ("", "Event"): _EVENT_FIELDS,
    ("events.k8s.io", "Event"): _EVENT_FIELDS,
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
    ("", "Node"): ("spec.unschedulable",),
}


def unknown_field_label(group: str, kind: str, selector: FieldSelector) -> str | None:
    """kube-apiserver's refusal of a field selector on a path it does not index, or None."""
    allowed = META_FIELDS + FIELD_LABELS.get((group, kind), ())
    for requirement in selector.requirements:
        if requirement.path not in allowed:
            only = ", ".join(f'"{path}"' for path in allowed)
            return f'"{requirement.path}" is not a known field selector: only {only}'
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str, term: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: '{term}'; invalid escape sequence")
            out.append(value[i + 1])
            i += 2
            continue
        if char in ",=":
            raise SelectorError(f"invalid field selector: '{term}'; unescaped {char!r} in value")
        out.append(char)
        i += 1
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `fieldSelector=` query text (`metadata.name=x,status.phase!=Running`)."""
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue
        found = _find_operator(term)
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        index, symbol = found
        path = term[:index].strip()
        if not path:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        value = _unescape(term[index + len(symbol) :], term)
        requirements.append(FieldRequirement(path, "!=" if symbol == "!=" else "=", value))
    return FieldSelector(tuple(requirements))


def _find_operator(term: str) -> tuple[int, str] | None:
    """The first unescaped operator, scanning left to right as apimachinery's splitTerm does."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for symbol in ("!=", "==", "="):
            if term.startswith(symbol, i):
                return i, symbol
        i += 1
    return None
