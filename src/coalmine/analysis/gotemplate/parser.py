"""Go text/template's parser: the same grammar and the same parse-time checks (functions and
variables must be defined, `{{ else }}`/`{{ end }}` must close something, `break`/`continue`
only inside `range`), with Go's messages."""

from __future__ import annotations

import ast
from collections.abc import Collection

from coalmine.analysis.gotemplate.errors import TemplateError, position
from coalmine.analysis.gotemplate.lexer import Token, lex
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
)


class _End(Node):
    """`{{ end }}`: closes a control; never in a finished tree."""


class _Else(Node):
    """`{{ else }}`; `chained` is `if`/`with` for `{{ else if … }}` (left for the next parse)."""

    def __init__(self, offset: int, chained: str | None) -> None:
        super().__init__(offset)
        self.chained = chained


class Parser:
    def __init__(self, name: str, source: str, functions: Collection[str]) -> None:
        self.name = name
        self.source = source
        self.functions = functions
        self.tokens = lex(name, source)
        self.at = 0
        self.variables = ["$"]
        self.range_depth = 0
        self.defined: dict[str, list[Node]] = {}

    # --- tokens

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, kind: str, context: str) -> Token:
        token = self.next()
        if token.kind != kind:
            raise self.unexpected(token, context)
        return token

    def error(self, reason: str, offset: int) -> TemplateError:
        line, column = position(self.source, offset)
        return TemplateError(self.name, reason, line, column)

    def unexpected(self, token: Token, context: str) -> TemplateError:
        shown = {"eof": "EOF", "right": '"}}"', "left": '"{{"'}.get(token.kind, repr(token.text))
        if token.kind == "keyword":
            shown = f"<{token.text}>"
        return self.error(f"unexpected {shown} in {context}", token.offset)

    # --- structure

    def parse(self) -> Tree:
        root: list[Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "left" and self.peek(1).text == "define":
                self.at += 2
                self.define()
                continue
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                raise self.error(f"unexpected {{{{{_name(node)}}}}}", node.offset)
            root.append(node)
        return Tree(self.name, self.source, root, self.defined)

    def item_list(self, context: str) -> tuple[list[Node], _End | _Else]:
        nodes: list[Node] = []
        while True:
            if self.peek().kind == "eof":
                raise self.error(f"unexpected EOF in {context}", self.peek().offset)
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                return nodes, node
            nodes.append(node)

    def text_or_action(self) -> Node:
        token = self.next()
        if token.kind == "text":
            return Text(token.offset, token.text)
        if token.kind != "left":
            raise self.unexpected(token, "input")
        return self.action()

    def action(self) -> Node:
        token = self.peek()
        if token.kind == "keyword":
            self.at += 1
            handler = {
                "if": self.if_control,
                "with": self.with_control,
                "range": self.range_control,
                "end": self.end,
                "else": self.else_,
                "break": self.break_,
                "continue": self.continue_,
                "template": self.template,
                "block": self.block,
            }.get(token.text)
            if handler is None:
                raise self.unexpected(token, "command")
            return handler(token)
        return Action(token.offset, self.pipeline("command", "right"))

    def end(self, token: Token) -> Node:
        self.expect("right", "end")
        return _End(token.offset)

    def else_(self, token: Token) -> Node:
        following = self.peek()
        if following.kind == "keyword" and following.text in ("if", "with"):
            return _Else(token.offset, following.text)  # `{{ else if … }}`: left to the caller
        self.expect("right", "else")
        return _Else(token.offset, None)

    def break_(self, token: Token) -> Node:
        if self.range_depth == 0:
            raise self.error("{{break}} outside {{range}}", token.offset)
        self.expect("right", "{{break}}")
        return Break(token.offset)

    def continue_(self, token: Token) -> Node:
        if self.range_depth == 0:
            raise self.error("{{continue}} outside {{range}}", token.offset)
        self.expect("right", "{{continue}}")
        return Continue(token.offset)

    def if_control(self, token: Token) -> Node:
        return self.control("if", token)

    def with_control(self, token: Token) -> Node:
        return self.control("with", token)

    def range_control(self, token: Token) -> Node:
        self.range_depth += 1
        try:
            return self.control("range", token)
        finally:
            self.range_depth -= 1

    def control(self, kind: str, token: Token) -> Control:
        mark = len(self.variables)
        try:
            pipe = self.pipeline(kind, "right")
            body, closing = self.item_list(kind)
            else_body: list[Node] | None = None
            if isinstance(closing, _Else):
                if closing.chained is not None and kind != "range":
                    chained = self.next()  # the `if`/`with` of `{{ else if … }}`
                    if chained.text != kind:
                        raise self.unexpected(chained, kind)
                    else_body = [self.control(kind, chained)]  # it consumes the shared {{end}}
                    return Control(token.offset, kind, pipe, body, else_body)
                if closing.chained is not None:
                    raise self.unexpected(self.peek(), "range")
                else_body, closing = self.item_list(kind)
                if not isinstance(closing, _End):
                    raise self.error(f"expected end; found {{{{else}}}} in {kind}", closing.offset)
            return Control(token.offset, kind, pipe, body, else_body)
        finally:
            del self.variables[mark:]

    def template(self, token: Token) -> Node:
        name = self.expect_string("template clause")
        pipe = None if self.peek().kind == "right" else self.pipeline("template clause", "right")
        if pipe is None:
            self.expect("right", "template clause")
        return TemplateCall(token.offset, name, pipe)

    def block(self, token: Token) -> Node:
        name = self.expect_string("block clause")
        pipe = self.pipeline("block clause", "right")
        body, closing = self.item_list("block")
        if not isinstance(closing, _End):
            raise self.error("unexpected {{else}} in block clause", closing.offset)
        self.defined[name] = body
        return TemplateCall(token.offset, name, pipe)

    def define(self) -> None:
        name = self.expect_string("define clause")
        self.expect("right", "define clause")
        saved, self.variables = self.variables, ["$"]
        try:
            body, closing = self.item_list("define")
        finally:
            self.variables = saved
        if not isinstance(closing, _End):
            raise self.error("unexpected {{else}} in define clause", closing.offset)
        self.defined[name] = body

    def expect_string(self, context: str) -> str:
        token = self.next()
        if token.kind not in ("string", "raw"):
            raise self.unexpected(token, context)
        return _unquote(token, self)

    # --- pipelines

    def pipeline(self, context: str, end: str) -> Pipe:
        start = self.peek()
        decls, assign = self.declarations(context)
        commands: list[Command] = []
        while True:
            token = self.peek()
            if token.kind == end:
                self.at += 1
                break
            if token.kind in ("right", "rparen", "eof"):
                if end == "rparen":
                    raise self.error("unclosed left paren", start.offset)
                raise self.unexpected(token, f"operand of {context}")
            commands.append(self.command(context))
            if self.peek().kind == "pipe":
                self.at += 1
                if self.peek().kind in ("right", "rparen"):
                    raise self.error("missing command after |", self.peek().offset)
        if not commands:
            raise self.error(f"missing value for {context}", start.offset)
        for stage, command in enumerate(commands[1:], start=2):
            if isinstance(command.args[0], Literal | Nil | Dot):
                raise self.error(f"non executable command in pipeline stage {stage}", start.offset)
        return Pipe(start.offset, decls, commands, assign)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        first, second = self.peek(), self.peek(1)
        if first.kind != "variable":
            return [], False
        if second.kind in ("declare", "assign"):
            self.at += 2
            self.variables.append(first.text)
            return [first.text], second.kind == "assign"
        if second.kind == "comma":
            third, fourth = self.peek(2), self.peek(3)
            if context != "range":
                raise self.error(f"too many declarations in {context}", second.offset)
            if third.kind != "variable" or fourth.kind not in ("declare", "assign"):
                raise self.error("range can only initialize variables", third.offset)
            self.at += 4
            self.variables += [first.text, third.text]
            return [first.text, third.text], fourth.kind == "assign"
        return [], False

    def command(self, context: str) -> Command:
        start = self.peek()
        args: list[Node] = []
        while self.peek().kind not in ("right", "rparen", "pipe", "eof"):
            token = self.peek()
            if args and not token.space_before and token.kind != "lparen":
                raise self.error(f"missing space? unexpected {token.text!r}", token.offset)
            args.append(self.operand(context))
        if not args:
            raise self.error("empty command", start.offset)
        return Command(start.offset, args)

    def operand(self, context: str) -> Node:
        node = self.term(context)
        names: list[str] = []
        while self.peek().kind == "field" and not self.peek().space_before:
            names.append(self.next().text[1:])
        if not names:
            return node
        if isinstance(node, Field):
            return Field(node.offset, node.names + tuple(names))
        if isinstance(node, Variable):
            return Variable(node.offset, node.names + tuple(names))
        if isinstance(node, Literal | Nil | Dot):
            raise self.error(
                f"unexpected . after term {self.source[node.offset :][:20]!r}", node.offset
            )
        return Chain(node.offset, node, tuple(names))

    def term(self, context: str) -> Node:
        token = self.next()
        kind = token.kind
        if kind == "identifier":
            if token.text not in self.functions:
                raise self.error(f'function "{token.text}" not defined', token.offset)
            return Identifier(token.offset, token.text)
        if kind == "variable":
            if token.text not in self.variables:
                raise self.error(f'undefined variable "{token.text}"', token.offset)
            return Variable(token.offset, (token.text,))
        if kind == "field":
            return Field(token.offset, (token.text[1:],))
        if kind == "dot":
            return Dot(token.offset)
        if kind == "nil":
            return Nil(token.offset)
        if kind == "bool":
            return Literal(token.offset, token.text == "true", token.text)
        if kind in ("string", "raw"):
            return Literal(token.offset, _unquote(token, self), token.text)
        if kind in ("number", "char"):
            return Literal(token.offset, _number(token, self), token.text)
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        raise self.unexpected(token, f"operand of {context}")


def _name(node: Node) -> str:
    return "end" if isinstance(node, _End) else "else"


def _unquote(token: Token, parser: Parser) -> str:
    if token.kind == "raw":
        return token.text[1:-1]
    try:
        value = ast.literal_eval(token.text)
    except (ValueError, SyntaxError):
        raise parser.error(f"bad string syntax: {token.text}", token.offset) from None
    return str(value)


def _number(token: Token, parser: Parser) -> int | float:
    """Go's ideal constants as a template argument: an integer unless written as a float."""
    text = token.text
    if token.kind == "char":
        body = ast.literal_eval('"' + text[1:-1].replace('"', '\\"') + '"')
        if len(body) != 1:
            raise parser.error(f"malformed character constant: {text}", token.offset)
        return ord(body)
    if text.endswith("i"):
        raise parser.error(f"complex numbers are not supported: {text}", token.offset)
    clean = text.replace("_", "")
    try:
        lowered = clean.lower().lstrip("+-")
        if lowered.startswith("0x") and "p" in lowered:
            return float.fromhex(clean)
        if lowered.startswith(("0x", "0b", "0o")):
            return int(clean, 0)
        if any(c in lowered for c in ".e"):
            return float(clean)
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(clean.replace("0", "0o", 1) if clean[0] == "0" else clean, 8)
        return int(clean)
    except ValueError:
        raise parser.error(f"bad number syntax: {text!r}", token.offset) from None


def parse(name: str, source: str, functions: Collection[str]) -> Tree:
    """Parse `source`; `functions` are the names callable in it (Go checks them at parse time)."""
    return Parser(name, source, functions).parse()
