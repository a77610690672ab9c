"""The parse tree of a Go template (text/template/parse's nodes, the ones templates can hold)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    offset: int


@dataclass
class Text(Node):
    text: str


@dataclass
class Identifier(Node):
    """A function name, called with the command's other operands."""

    name: str


@dataclass
class Variable(Node):
    """`$x` or `$x.a.b`: the variable's name first, then field names."""

    names: tuple[str, ...]


@dataclass
class Field(Node):
    """`.a.b`: fields of dot."""

    names: tuple[str, ...]


@dataclass
class Chain(Node):
    """`(pipeline).a.b` or `function.a.b`: fields of another operand's value."""

    node: Node
    names: tuple[str, ...]


@dataclass
class Dot(Node):
    pass


@dataclass
class Nil(Node):
    pass


@dataclass
class Literal(Node):
    """A bool, number or string constant; `source` is its text, as Go prints it in errors."""

    value: Any
    source: str


@dataclass
class Command(Node):
    args: list[Node]


@dataclass
class Pipe(Node):
    """`$x := a | b c`; `assign` for `$x = …`."""

    decls: list[str]
    commands: list[Command]
    assign: bool = False


@dataclass
class Action(Node):
    pipe: Pipe


@dataclass
class Control(Node):
    """`if`, `with` or `range` with its body and `else` body."""

    kind: str
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None = None


@dataclass
class Break(Node):
    pass


@dataclass
class Continue(Node):
    pass


@dataclass
class TemplateCall(Node):
    """`{{ template "name" pipeline }}`."""

    name: str
    pipe: Pipe | None


@dataclass
class Tree:
    """A parsed template and the templates it defines (`define`, `block`)."""

    name: str
    source: str
    root: list[Node]
    defined: dict[str, list[Node]] = field(default_factory=dict)


def describe(node: Node) -> str:
    """The node as Go's `Node.String()` prints it, for `executing … at <NODE>`."""
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Variable | Field):
        prefix = "" if isinstance(node, Variable) else "."
        return prefix + ".".join(node.names)
    if isinstance(node, Chain):
        inner = describe(node.node)
        if isinstance(node.node, Pipe):
            inner = f"({inner})"
        return inner + "".join("." + name for name in node.names)
    if isinstance(node, Dot):
        return "."
    if isinstance(node, Nil):
        return "nil"
    if isinstance(node, Literal):
        return node.source
    if isinstance(node, Command):
        return " ".join(
            f"({describe(arg)})" if isinstance(arg, Pipe) else describe(arg) for arg in node.args
        )
    if isinstance(node, Pipe):
        decl = ""
        if node.decls:
            decl = ", ".join(node.decls) + (" = " if node.assign else " := ")
        return decl + " | ".join(describe(command) for command in node.commands)
    if isinstance(node, Action):
        return "{{" + describe(node.pipe) + "}}"
    if isinstance(node, Control):
        return "{{" + node.kind + " " + describe(node.pipe) + "}}"
    if isinstance(node, TemplateCall):
        return f'{{{{template "{node.name}"}}}}'
    return type(node).__name__.lower()
