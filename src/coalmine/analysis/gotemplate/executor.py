"""Executes a parsed template as Go's text/template does, with `missingkey=error`.

Variables live on one stack (`$` at the bottom); a control structure pops what it pushed,
so a variable's scope ends at the `{{ end }}` of the structure that declared it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from coalmine.analysis.gotemplate.errors import TemplateError, position
from coalmine.analysis.gotemplate.fmt import go_string
from coalmine.analysis.gotemplate.functions import BUILTINS, LAZY, FunctionError, truth
from coalmine.analysis.gotemplate.nodes import (
    Action,
    Break,
    Chain,
    Command,
    Continue,
    Control,
    Dot,
    Field,
    Identifier,
    Literal,
    Nil,
    Node,
    Pipe,
    TemplateCall,
    Text,
    Tree,
    Variable,
    describe,
)

MAX_DEPTH = 200
_MISSING = object()
"""No piped value (Go's `missingVal`)."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    def __init__(self, tree: Tree, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.tree = tree
        self.functions = {**BUILTINS, **functions}
        self.variables: list[tuple[str, Any]] = [("$", None)]
        self.out: list[str] = []
        self.node: Node | None = None
        self.depth = 0

    def run(self, dot: Any) -> str:
        self.variables = [("$", dot)]
        self.walk_list(dot, self.tree.root)
        return "".join(self.out)

    def fail(self, reason: str) -> NoReturn:
        """Go's `executing "NAME" at <NODE>: REASON`, positioned at the node being run."""
        if self.node is None:
            raise TemplateError(self.tree.name, reason)
        line, column = position(self.tree.source, self.node.offset)
        reason = f'executing "{self.tree.name}" at <{describe(self.node)}>: {reason}'
        raise TemplateError(self.tree.name, reason, line, column)

    # --- walking

    def walk_list(self, dot: Any, nodes: list[Node]) -> None:
        for node in nodes:
            self.walk(dot, node)

    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.pipeline(dot, node.pipe)
            if not node.pipe.decls:
                self.out.append("<no value>" if value is None else go_string(value))
        elif isinstance(node, Control):
            self.control(dot, node)
        elif isinstance(node, Break):
            raise _Break
        elif isinstance(node, Continue):
            raise _Continue
        elif isinstance(node, TemplateCall):
            self.template(dot, node)

    def control(self, dot: Any, node: Control) -> None:
        mark = len(self.variables)
        try:
            value = self.pipeline(dot, node.pipe)
            if node.kind == "range":
                self.range(node, value, mark)
            elif truth(value):
                self.walk_list(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk_list(dot, node.else_body)
        finally:
            del self.variables[mark:]

    def range(self, node: Control, value: Any, mark: int) -> None:
        self.node = node
        items = self.range_items(value, len(node.pipe.decls))
        base = len(self.variables)
        ran = False
        for key, element in items:
            ran = True
            self.set_range_variables(node.pipe, key, element, base)
            try:
                self.walk_list(element, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.variables[base:]
                self.node = node
        if not ran and node.else_body is not None:
            self.walk_list(value, node.else_body)

    def range_items(self, value: Any, declared: int) -> list[tuple[Any, Any]]:
        if value is None:
            return []
        if isinstance(value, bool | float | str):
            self.fail(f"range can't iterate over {go_string(value)}")
        if isinstance(value, int):
            if declared > 1:
                self.fail(f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        if isinstance(value, Mapping):
            return [(key, value[key]) for key in sorted(value)]
        if isinstance(value, Sequence):
            return list(enumerate(value))
        return self.fail(f"range can't iterate over {go_string(value)}")

    def set_range_variables(self, pipe: Pipe, key: Any, element: Any, base: int) -> None:
        decls = pipe.decls
        if not decls:
            return
        values = [element] if len(decls) == 1 else [key, element]
        for name, item in zip(decls, values, strict=True):
            if pipe.assign:
                self.set_variable(name, item)
            else:
                self.set_top_variable(name, item, base)

    def template(self, dot: Any, node: TemplateCall) -> None:
        body = self.tree.defined.get(node.name)
        if body is None:
            self.fail(f'no such template "{node.name}"')
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"exceeded maximum template depth ({MAX_DEPTH})")
        value = None if node.pipe is None else self.pipeline(dot, node.pipe)
        saved, self.variables = self.variables, [("$", value)]
        try:
            self.walk_list(value, body)
        finally:
            self.variables = saved
            self.depth -= 1

    # --- variables

    def variable(self, name: str) -> Any:
        for known, value in reversed(self.variables):
            if known == name:
                return value
        return self.fail(f"undefined variable: {name}")

    def set_variable(self, name: str, value: Any) -> None:
        for position_, (known, _) in reversed(list(enumerate(self.variables))):
            if known == name:
                self.variables[position_] = (name, value)
                return
        self.fail(f"undefined variable: {name}")

    def set_top_variable(self, name: str, value: Any, base: int) -> None:
        self.variables[base:] = [*self.variables[base:], (name, value)]

    # --- pipelines and commands

    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        value: Any = _MISSING
        for command in pipe.commands:
            value = self.command(dot, command, value)
        for name in pipe.decls:
            if pipe.assign:
                self.set_variable(name, value)
            else:
                self.variables.append((name, value))
        return value

    def command(self, dot: Any, command: Command, final: Any) -> Any:
        first = command.args[0]
        self.node = first
        if isinstance(first, Identifier):
            return self.call(dot, first, command.args[1:], final)
        if isinstance(first, Field):
            self.not_a_function(command.args, final)
            return self.fields(dot, first.names, None, dot)
        if isinstance(first, Variable):
            self.not_a_function(command.args, final)
            value = self.variable(first.names[0])
            return self.fields(dot, first.names[1:], None, value)
        if isinstance(first, Chain):
            self.not_a_function(command.args, final)
            base = self.argument(dot, first.node)
            return self.fields(dot, first.names, first, base)
        self.not_a_function(command.args, final)
        if isinstance(first, Nil):
            self.fail("nil is not a command")
        return self.argument(dot, first)

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.fail(f"can't give argument to non-function {describe(args[0])}")

    def argument(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Identifier):
            return self.call(dot, node, [], _MISSING)
        if isinstance(node, Pipe):
            mark = len(self.variables)
            try:
                return self.pipeline(dot, node)
            finally:
                del self.variables[mark:]
        if isinstance(node, Field):
            return self.fields(dot, node.names, node, dot)
        if isinstance(node, Variable):
            return self.fields(dot, node.names[1:], node, self.variable(node.names[0]))
        if isinstance(node, Chain):
            base = self.argument(dot, node.node)
            self.node = node
            return self.fields(dot, node.names, node, base)
        return self.fail(f"can't handle {describe(node)} as an argument")

    def fields(self, dot: Any, names: Sequence[str], node: Node | None, receiver: Any) -> Any:
        if node is not None:
            self.node = node
        value = receiver
        for name in names:
            if value is None:
                self.fail(f'nil data; no entry for key "{name}"')
            if not isinstance(value, Mapping):
                self.fail(f"can't evaluate field {name} in type {_type(value)}")
            if name not in value:
                self.fail(f'map has no entry for key "{name}"')
            value = value[name]
        return value

    def call(self, dot: Any, node: Identifier, arg_nodes: list[Node], final: Any) -> Any:
        name = node.name
        if name in LAZY:
            return self.lazy(dot, node, arg_nodes, final)
        function = self.functions[name]
        count = len(arg_nodes) + (final is not _MISSING)
        self.check_arity(name, function, count)
        args = [self.argument(dot, arg) for arg in arg_nodes]
        if final is not _MISSING:
            args.append(final)
        self.node = node
        try:
            return function(*args)
        except FunctionError as error:
            self.fail(f"error calling {name}: {error}")
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as error:
            self.fail(f"error calling {name}: {error}")

    def lazy(self, dot: Any, node: Identifier, arg_nodes: list[Node], final: Any) -> Any:
        """`and`/`or`: the first argument that decides, else the last one (Go 1.18)."""
        count = len(arg_nodes) + (final is not _MISSING)
        if count == 0:
            self.fail(f"wrong number of args for {node.name}: want at least 1 got 0")
        value: Any = None
        stop_when = node.name == "or"
        for arg in arg_nodes:
            value = self.argument(dot, arg)
            if truth(value) == stop_when:
                return value
        if final is not _MISSING:
            value = final
        return value

    def check_arity(self, name: str, function: Callable[..., Any], count: int) -> None:
        arity = _arity(function)
        if arity is None:
            return
        required, most = arity
        if most is None and count < required:
            self.fail(f"wrong number of args for {name}: want at least {required} got {count}")
        if most is not None and count != most:
            self.fail(f"wrong number of args for {name}: want {most} got {count}")


def _arity(function: Callable[..., Any]) -> tuple[int, int | None] | None:
    """(required, positional or None when variadic); from the code object when there is one
    (cheap: model functions are fresh closures per render), else from the signature."""
    code = getattr(function, "__code__", None)
    if code is not None and not inspect.ismethod(function):
        defaults = len(getattr(function, "__defaults__", None) or ())
        positional = code.co_argcount
        variadic = bool(code.co_flags & inspect.CO_VARARGS)
        return positional - defaults, None if variadic else positional
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    positional_parameters = [
        p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(1 for p in positional_parameters if p.default is p.empty)
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return required, None
    return required, len(positional_parameters)


def _type(value: Any) -> str:
    from coalmine.analysis.gotemplate.fmt import type_name

    return type_name(value)


def execute(tree: Tree, functions: Mapping[str, Callable[..., Any]], dot: Any = None) -> str:
    return Executor(tree, functions).run(dot)
