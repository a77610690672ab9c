"""MetricTemplate query rendering: the subset of Go's text/template that Flagger's queries use.

Flagger renders queries with Go templates (`missingkey=error`, no dot data) and the functions
`name`, `namespace`, `target`, `service`, `ingress`, `route`, `interval` and `variables`. Existing
templates must render to the same text here, so this is a small, strict re-implementation:
actions with `{{-`/`-}}` trimming and comments, pipelines with `|`, parenthesised calls, `$var :=`
assignment, field access on maps (`variables.key`), string/raw/number literals, and Go's `printf`,
`print`, `index` and `len`. Anything else is a `TemplateError` that names the template and the
place, never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from coalmine.api.models import Canary

__all__ = ["TemplateError", "TemplateModel", "go_sprintf", "render", "render_query"]


class TemplateError(Exception):
    """A query template that cannot be parsed or executed."""

    def __init__(self, template: str, reason: str, line: int | None = None) -> None:
        where = f"template {template}" + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")
        self.template = template
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class TemplateModel:
    """Flagger's MetricTemplateModel: what a query may refer to."""

    name: str
    namespace: str
    target: str
    service: str
    ingress: str
    route: str
    interval: str
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_canary(
        cls,
        canary: Canary,
        interval: str,
        variables: Mapping[str, str] | None = None,
        *,
        route: str | None = None,
    ) -> TemplateModel:
        """The model Flagger builds for a canary; `route` is the Knative latest created revision
        (the caller reads it from the Knative Service status) and otherwise `routeRef` or target."""
        spec = canary.spec
        target = spec.target_ref.name
        return cls(
            name=canary.name,
            namespace=canary.namespace,
            target=target,
            service=spec.apex_name,
            ingress=spec.ingress_ref.name if spec.ingress_ref else target,
            route=route or (spec.route_ref.name if spec.route_ref else target),
            interval=interval,
            variables=dict(variables or {}),
        )

    def functions(self) -> dict[str, Callable[..., Any]]:
        def constant(value: Any) -> Callable[[], Any]:
            return lambda: value

        return {
            "name": constant(self.name),
            "namespace": constant(self.namespace),
            "target": constant(self.target),
            "service": constant(self.service),
            "ingress": constant(self.ingress),
            "route": constant(self.route),
            "interval": constant(self.interval),
            "variables": constant(dict(self.variables)),
        }


# --- lexing ------------------------------------------------------------------------------------

_SPACE = " \t\r\n"
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*)?\.?[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?))
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Action:
    tokens: tuple[_Token, ...]
    line: int
    source: str


def _parse(template: str, name: str) -> list[_Text | _Action]:
    """Split the template into text and actions, applying the trim markers."""
    nodes: list[_Text | _Action] = []
    position = 0
    trim_next = False
    while True:
        start = template.find("{{", position)
        text = template[position:] if start < 0 else template[position:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            if text:
                nodes.append(_Text(text))
            return nodes
        line = template.count("\n", 0, start) + 1
        inner_start = start + 2
        if template.startswith("-", inner_start) and template[
            inner_start + 1 : inner_start + 2
        ] in tuple(_SPACE):
            text = text.rstrip(_SPACE)
            inner_start += 1
        if text:
            nodes.append(_Text(text))
        tokens, end, trim_next = _lex_action(template, inner_start, name, line)
        source = template[start:end]
        if tokens is not None:
            nodes.append(_Action(tuple(tokens), line, source))
        position = end


def _lex_action(
    template: str, position: int, name: str, line: int
) -> tuple[list[_Token] | None, int, bool]:
    """Tokens of one action up to its `}}`; None for a comment. Returns the end offset and
    whether the action asked to trim the text after it."""
    stripped = template[position:].lstrip(_SPACE)
    if stripped.startswith("/*"):
        comment_start = len(template) - len(stripped)
        close = template.find("*/", comment_start + 2)
        if close < 0:
            raise TemplateError(name, "unclosed comment", line)
        rest = close + 2
        trim = False
        if template.startswith(" -}}", rest) or template.startswith("\t-}}", rest):
            return None, rest + 4, True
        if not template.startswith("}}", rest):
            raise TemplateError(name, "comment ends before closing delimiter", line)
        return None, rest + 2, trim
    tokens: list[_Token] = []
    while True:
        if position >= len(template):
            raise TemplateError(name, "unclosed action", line)
        if template.startswith("}}", position):
            return tokens, position + 2, False
        if template[position] in _SPACE and template.startswith("-}}", position + 1):
            return tokens, position + 4, True
        match = _TOKEN.match(template, position)
        if match is None or match.end() == position:
            raise TemplateError(name, f"unexpected {template[position]!r} in action", line)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group()))
        position = match.end()


# --- evaluation --------------------------------------------------------------------------------


def _go_string(value: Any) -> str:
    """How Go's fmt prints a value with %v."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_string(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_string(v) for v in value) + "]"
    return str(value)


def _go_float(value: float) -> str:
    """Go's shortest %v/%g: exponent form below 1e-4 and from 1e+06 up (`1e+06`, `1.5e-05`)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    decimal = Decimal(repr(value))
    sign, digits, exponent = decimal.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exponent += len(digits) - len(text)  # account for stripped zeros
    point = len(text) + exponent  # digits before the decimal point
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


_VERB = re.compile(r"%([-+# 0]*)(\*|[0-9]+)?(?:\.([0-9]+))?([a-zA-Z%])")


def go_sprintf(template: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use (%s %v %d %q %f %g %e %x %t %%)."""
    out: list[str] = []
    position = 0
    index = 0
    for match in _VERB.finditer(template):
        out.append(template[position : match.start()])
        position = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[index]
        index += 1
        spec = f"{flags or ''}{width or ''}" + (f".{precision}" if precision is not None else "")
        try:
            if verb in "sv":
                rendered = _go_string(value)
                if precision is not None:
                    rendered = rendered[: int(precision)]
                out.append(format(rendered, f"{'<' if '-' in (flags or '') else '>'}{width or ''}"))
            elif verb == "d":
                out.append(format(int(value), spec.replace("-", "<")))
            elif verb == "q":
                out.append(json.dumps(_go_string(value)))
            elif verb in "fFeEgG":
                out.append(format(float(value), spec.replace("-", "<") + verb))
            elif verb in "xX":
                out.append(format(int(value), spec + verb))
            elif verb == "t":
                out.append(_go_string(bool(value)))
            else:
                out.append(f"%!{verb}({_go_string(value)})")
        except (TypeError, ValueError):
            out.append(f"%!{verb}({type(value).__name__}={_go_string(value)})")
    out.append(template[position:])
    if index < len(args):
        extra = ", ".join(f"{type(a).__name__}={_go_string(a)}" for a in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _index(container: Any, *keys: Any) -> Any:
    value = container
    for key in keys:
        if isinstance(value, Mapping):
            if key not in value:
                return None
            value = value[key]
        elif isinstance(value, list | tuple | str):
            value = value[int(key)]
        else:
            raise TypeError(f"can't index item of type {type(value).__name__}")
    return value


_BUILTINS: dict[str, Callable[..., Any]] = {
    "printf": go_sprintf,
    "print": lambda *args: "".join(_go_string(a) for a in args),
    "index": _index,
    "len": len,
}


class _Evaluator:
    def __init__(self, name: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.name = name
        self.functions = {**_BUILTINS, **functions}
        self.variables: dict[str, Any] = {"$": None}

    def action(self, node: _Action) -> str | None:
        tokens = list(node.tokens)
        if not tokens:
            raise TemplateError(self.name, "missing value for command", node.line)
        if tokens[0].kind == "identifier" and tokens[0].text in {
            "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
        }:  # fmt: skip
            raise TemplateError(
                self.name,
                f"{{{{ {tokens[0].text} }}}} is not supported in metric queries",
                node.line,
            )
        if (
            len(tokens) >= 2
            and tokens[0].kind == "variable"
            and tokens[1].kind in ("declare", "assign")
        ):
            variable = tokens[0].text
            if tokens[1].kind == "assign" and variable not in self.variables:
                raise TemplateError(self.name, f"undefined variable: {variable}", node.line)
            self.variables[variable] = self.pipeline(tokens[2:], node.line)
            return None
        return _go_string(self.pipeline(tokens, node.line))

    def pipeline(self, tokens: list[_Token], line: int) -> Any:
        commands: list[list[_Token]] = [[]]
        depth = 0
        for token in tokens:
            if token.kind == "lparen":
                depth += 1
            elif token.kind == "rparen":
                depth -= 1
                if depth < 0:
                    raise TemplateError(self.name, "unexpected right paren", line)
            if token.kind == "pipe" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(token)
        if depth != 0:
            raise TemplateError(self.name, "unclosed left paren", line)
        value: Any = None
        for position, command in enumerate(commands):
            if not command:
                raise TemplateError(self.name, "missing command in pipeline", line)
            extra = [value] if position > 0 else []
            value = self.command(command, line, extra)
        return value

    def command(self, tokens: list[_Token], line: int, piped: list[Any]) -> Any:
        operands = self.split_operands(tokens, line)
        head = operands[0]
        if len(head) == 1 and head[0].kind == "identifier":
            function = self.function(head[0].text, line)
            args = [self.operand(o, line) for o in operands[1:]] + piped
            return self.call(head[0].text, function, args, line)
        if len(operands) > 1 or piped:
            raise TemplateError(
                self.name, f"can't give argument to non-function {self.text(head)}", line
            )
        return self.operand(head, line)

    def split_operands(self, tokens: list[_Token], line: int) -> list[list[_Token]]:
        """Group tokens into operands: a parenthesised pipeline or a term with its field chain."""
        operands: list[list[_Token]] = []
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token.kind == "lparen":
                depth = 0
                end = position
                for end in range(position, len(tokens)):
                    depth += {"lparen": 1, "rparen": -1}.get(tokens[end].kind, 0)
                    if depth == 0:
                        break
                group = tokens[position : end + 1]
                position = end + 1
            elif token.kind in ("rparen", "declare", "assign", "comma"):
                raise TemplateError(self.name, f"unexpected {token.text!r} in command", line)
            else:
                group = [token]
                position += 1
            while position < len(tokens) and tokens[position].kind == "field":
                group.append(tokens[position])
                position += 1
            operands.append(group)
        return operands

    def operand(self, group: list[_Token], line: int) -> Any:
        first = group[0]
        fields = group[1:]
        if first.kind == "lparen":
            end = max(i for i, t in enumerate(group) if t.kind == "rparen")
            value = self.pipeline(group[1:end], line)
            fields = group[end + 1 :]
        elif first.kind == "identifier":
            if first.text in ("true", "false"):
                value = first.text == "true"
            elif first.text == "nil":
                raise TemplateError(self.name, "nil is not a command", line)
            else:
                value = self.call(first.text, self.function(first.text, line), [], line)
        elif first.kind == "variable":
            if first.text not in self.variables:
                raise TemplateError(self.name, f"undefined variable: {first.text}", line)
            value = self.variables[first.text]
        elif first.kind == "string":
            value = json.loads(first.text)
        elif first.kind == "raw":
            value = first.text[1:-1]
        elif first.kind == "char":
            value = ord(json.loads('"' + first.text[1:-1].replace('"', '\\"') + '"'))
        elif first.kind == "number":
            text = first.text.replace("_", "")
            value = (
                int(text, 0)
                if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)", text)
                else float(text)
            )
        elif first.kind in ("field", "dot"):
            raise TemplateError(
                self.name,
                f"can't evaluate {first.text}: metric queries have no data, use functions like "
                "{{ namespace }} or {{ variables.key }}",
                line,
            )
        else:
            raise TemplateError(self.name, f"unexpected {first.text!r}", line)
        for token in fields:
            for key in token.text.split(".")[1:]:
                value = self.field(value, key, line)
        return value

    def field(self, value: Any, key: str, line: int) -> Any:
        if isinstance(value, Mapping):
            if key not in value:
                raise TemplateError(self.name, f'map has no entry for key "{key}"', line)
            return value[key]
        raise TemplateError(
            self.name, f"can't evaluate field {key} in type {type(value).__name__}", line
        )

    def function(self, name: str, line: int) -> Callable[..., Any]:
        function = self.functions.get(name)
        if function is None:
            raise TemplateError(self.name, f'function "{name}" not defined', line)
        return function

    def call(self, name: str, function: Callable[..., Any], args: list[Any], line: int) -> Any:
        try:
            return function(*args)
        except TypeError as error:
            raise TemplateError(self.name, f"error calling {name}: {error}", line) from error
        except (ValueError, IndexError, KeyError) as error:
            raise TemplateError(self.name, f"error calling {name}: {error}", line) from error

    @staticmethod
    def text(tokens: list[_Token]) -> str:
        return " ".join(t.text for t in tokens)


def render(template: str, functions: Mapping[str, Callable[..., Any]], name: str = "query") -> str:
    """Render a Go-template string with the given functions (no dot data, missing keys fail)."""
    nodes = _parse(template, name)
    evaluator = _Evaluator(name, functions)
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        else:
            rendered = evaluator.action(node)
            if rendered is not None:
                out.append(rendered)
    return "".join(out)


def render_query(template: str, model: TemplateModel, name: str = "query") -> str:
    """A MetricTemplate or builtin query rendered for a canary."""
    return render(template, model.functions(), name)
