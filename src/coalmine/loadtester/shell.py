"""Flagger's `cmd`/`bash` hook strings, parsed by tree-sitter's bash grammar into a small script.

Flagger runs hook commands with `sh -c`; coalmine parses them instead and runs the result itself
(`coalmine.loadtester.pipeline`), so the string never reaches a shell. Supported: simple commands,
quoting (single, double, backslash), variables (`$X`, `${X}`, assignments), pipelines, `!`, lists
(`&&`, `||`, `;`, newlines) and the redirections that touch no file (`2>&1`, `>&2`, `>/dev/null`).
Everything else is refused with a `ShellError` naming the construct. No pathname or tilde
expansion: `*`, `?` and `~` are literal, as in a quoted word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import tree_sitter
import tree_sitter_bash

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))

UNSUPPORTED = {
    "command_substitution": "command substitution $(…) or `…`",
    "process_substitution": "process substitution <(…)",
    "arithmetic_expansion": "arithmetic expansion $((…))",
    "ansi_c_string": "ANSI-C quoting $'…'",
    "translated_string": 'translated string $"…"',
    "brace_expression": "brace expansion {a..b}",
    "heredoc_redirect": "here-document <<",
    "herestring_redirect": "here-string <<<",
    "subshell": "subshell ( … )",
    "compound_statement": "command group { …; }",
    "if_statement": "if statement",
    "while_statement": "while loop",
    "for_statement": "for loop",
    "c_style_for_statement": "for loop",
    "case_statement": "case statement",
    "function_definition": "function definition",
    "test_command": "test brackets [ … ] / [[ … ]]",
    "declaration_command": "declaration (export, declare, local, readonly)",
    "unset_command": "unset",
    "&": "background job &",
    "|&": "pipe of stderr |&",
}


class ShellError(ValueError):
    """The command uses a construct the load tester does not run (or is not valid shell)."""


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, or a variable (`quoted` decides field splitting)."""

    text: str
    quoted: bool
    variable: bool = False


Word = tuple[Part, ...]
Stream = Literal["stdout", "stderr", "devnull"]


@dataclass(frozen=True)
class Redirect:
    fd: int  # 1 or 2
    to: Stream


@dataclass(frozen=True)
class Command:
    """`A=1 prog arg… 2>&1`; no words means assignments to shell variables."""

    assignments: tuple[tuple[str, Word], ...]
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...] = ()

    @property
    def program(self) -> str | None:
        """The program as written, when it is a plain literal (variables are never programs)."""
        if not self.words or any(part.variable for part in self.words[0]):
            return None
        return "".join(part.text for part in self.words[0])


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    negated: bool = False


@dataclass(frozen=True)
class AndOr:
    first: Node
    operator: Literal["&&", "||"]
    second: Node


@dataclass(frozen=True)
class Sequence:
    items: tuple[Node, ...]


Node = Pipeline | AndOr | Sequence


def commands_of(node: Node) -> list[Command]:
    """Every command of a script, in order (for allow-lists and argument policies)."""
    if isinstance(node, Pipeline):
        return list(node.commands)
    if isinstance(node, AndOr):
        return commands_of(node.first) + commands_of(node.second)
    return [command for item in node.items for command in commands_of(item)]


def uses_variables(node: Node) -> bool:
    return any(
        command.assignments or any(part.variable for word in command.words for part in word)
        for command in commands_of(node)
    )


def parse(source: str) -> Sequence:
    """The script of `source`, or `ShellError` naming what is not supported or not valid."""
    if "\x00" in source:
        raise ShellError("cmd contains a NUL byte")
    tree = _PARSER.parse(source.encode())
    _check_syntax(tree.root_node)
    items = tuple(_statement(child) for child in _statements(tree.root_node))
    if not items:
        raise ShellError("cmd has no command")
    return Sequence(items)


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode()


def _refuse(node: tree_sitter.Node) -> ShellError:
    name = UNSUPPORTED.get(node.type, f"{node.type.replace('_', ' ')} ({_text(node)[:40]!r})")
    return ShellError(f"{name} is not supported by the coalmine load tester")


def _check_syntax(root: tree_sitter.Node) -> None:
    if not root.has_error:
        return
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            near = _text(node)[:40] or node.type
            raise ShellError(f"cannot parse cmd: syntax error near {near!r}")
        stack.extend(node.children)
    raise ShellError("cannot parse cmd: syntax error")


def _statements(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    statements = []
    for child in node.children:
        if child.type in (";", "\n", "comment") or child.type.isspace():
            continue
        if child.type in UNSUPPORTED:
            raise _refuse(child)
        statements.append(child)
    return statements


def _statement(node: tree_sitter.Node) -> Node:
    if node.type == "redirected_statement" and node.children[0].type in _COMPOUND:
        # bash binds `a && b 2>&1` to `b`; tree-sitter hangs the redirect on the whole list.
        body, *redirect_nodes = node.children
        extra = tuple(item for redirect in redirect_nodes for item in _redirects(redirect))
        return _redirect_last(_statement(body), extra)
    if node.type == "list":
        first, operator, second = node.children
        if operator.type not in ("&&", "||"):
            raise _refuse(operator)
        op: Literal["&&", "||"] = "&&" if operator.type == "&&" else "||"
        return AndOr(_statement(first), op, _statement(second))
    if node.type == "negated_command":
        return _negated(_statement(node.children[-1]))
    return _pipeline(node)


def _pipeline(node: tree_sitter.Node) -> Pipeline:
    leading = node.children[0] if node.type == "pipeline" else None
    if leading is not None and leading.type == "negated_command":
        # `! a | b` negates the whole pipeline; tree-sitter attaches the `!` to `a`.
        head = _statement(leading.children[-1])
        rest = _pipeline_commands_after(node)
        if not isinstance(head, Pipeline):
            raise ShellError("! is supported before a command or a pipeline only")
        return Pipeline((*head.commands, *rest), negated=not head.negated)
    return Pipeline(tuple(_pipeline_commands(node)))


def _pipeline_commands_after(node: tree_sitter.Node) -> list[Command]:
    commands: list[Command] = []
    for child in node.children[1:]:
        if child.type != "|":
            commands.extend(_pipeline_commands(child))
    return commands


_COMPOUND = ("list", "pipeline", "negated_command")


def _redirect_last(node: Node, extra: tuple[Redirect, ...]) -> Node:
    if isinstance(node, Pipeline):
        *head, last = node.commands
        redirected = Command(last.assignments, last.words, last.redirects + extra)
        return Pipeline((*head, redirected), node.negated)
    if isinstance(node, AndOr):
        return AndOr(node.first, node.operator, _redirect_last(node.second, extra))
    raise ShellError("redirection of a command list is not supported by the coalmine load tester")


def _negated(node: Node) -> Node:
    """`! a && b` is `(! a) && b` in bash; tree-sitter puts the whole list under the `!`."""
    if isinstance(node, Pipeline):
        return Pipeline(node.commands, negated=not node.negated)
    if isinstance(node, AndOr):
        return AndOr(_negated(node.first), node.operator, node.second)
    raise ShellError("! is supported before a command or a pipeline only")


def _pipeline_commands(node: tree_sitter.Node) -> list[Command]:
    """The commands of a pipeline; tree-sitter hangs `a | b 2>&1` on the pipeline, bash on `b`."""
    if node.type == "redirected_statement" and node.children[0].type == "pipeline":
        body, *redirects = node.children
        *head, last = _pipeline_commands(body)
        extra = tuple(item for redirect in redirects for item in _redirects(redirect))
        return [*head, Command(last.assignments, last.words, last.redirects + extra)]
    if node.type != "pipeline":
        return [_command(node)]
    commands: list[Command] = []
    for child in node.children:
        if child.type == "|":
            continue
        if child.type in UNSUPPORTED:
            raise _refuse(child)
        if child.type == "negated_command":
            raise ShellError("! is supported only at the start of a pipeline")
        commands.extend(_pipeline_commands(child))
    return commands


def _command(node: tree_sitter.Node) -> Command:
    if node.type == "redirected_statement":
        body, *redirect_nodes = node.children
        inner = _command(body)
        extra = tuple(item for redirect in redirect_nodes for item in _redirects(redirect))
        return Command(inner.assignments, inner.words, inner.redirects + extra)
    if node.type == "variable_assignment":
        return Command((_assignment(node),), ())
    if node.type == "variable_assignments":
        return Command(tuple(_assignment(child) for child in node.named_children), ())
    if node.type != "command":
        raise _refuse(node)
    assignments: list[tuple[str, Word]] = []
    words: list[Word] = []
    redirects: list[Redirect] = []
    for child in node.children:
        if child.type == "variable_assignment":
            assignments.append(_assignment(child))
        elif child.type == "command_name":
            words.append(_word(child.children[0]))
        elif child.type == "file_redirect":
            redirects.extend(_redirects(child))
        else:
            words.append(_word(child))
    return Command(tuple(assignments), tuple(words), tuple(redirects))


def _assignment(node: tree_sitter.Node) -> tuple[str, Word]:
    if node.type != "variable_assignment":
        raise _refuse(node)
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if name is None or name.type != "variable_name":
        raise ShellError(f"assignment {_text(node)!r} is not supported by the coalmine load tester")
    return _text(name), (_word(value) if value is not None else ())


def _redirects(node: tree_sitter.Node) -> tuple[Redirect, ...]:
    """`2>&1`, `>&2`, `>/dev/null`, `2>/dev/null`, `&>/dev/null`: no file is opened."""
    if node.type != "file_redirect":
        raise _refuse(node)
    fd_node = node.child_by_field_name("descriptor")
    operator = next((child.type for child in node.children if not child.is_named), "")
    destination = node.child_by_field_name("destination")
    target = _text(destination) if destination is not None else ""
    fds = (1, 2) if operator in ("&>", "&>>") else (int(_text(fd_node)) if fd_node else 1,)
    to_null = operator in (">", ">>", "&>", "&>>") and target == "/dev/null"
    if to_null and all(fd in (1, 2) for fd in fds):
        return tuple(Redirect(fd, "devnull") for fd in fds)
    if operator == ">&" and target in ("1", "2") and fds[0] in (1, 2):
        return (Redirect(fds[0], "stdout" if target == "1" else "stderr"),)
    raise ShellError(
        f"redirection {_text(node)!r} is not supported by the coalmine load tester "
        "(only 2>&1, >&2 and >/dev/null: tasks read and write no files)"
    )


def _word(node: tree_sitter.Node) -> Word:
    kind = node.type
    if kind == "word":
        return (Part(_unescape_unquoted(_text(node)), quoted=False),)
    if kind == "number":
        return (Part(_text(node), quoted=False),)
    if kind == "raw_string":
        return (Part(_text(node)[1:-1], quoted=True),)
    if kind == "string":
        return _double_quoted(node)
    if kind in ("simple_expansion", "expansion"):
        return (_variable(node, quoted=False),)
    if kind == "concatenation":
        return tuple(part for child in node.children for part in _word(child))
    raise _refuse(node)


def _double_quoted(node: tree_sitter.Node) -> Word:
    parts: list[Part] = []
    for child in node.children:
        if child.type == '"':
            continue
        if child.type == "string_content":
            parts.append(Part(_unescape_double_quoted(_text(child)), quoted=True))
        elif child.type in ("simple_expansion", "expansion"):
            parts.append(_variable(child, quoted=True))
        else:
            raise _refuse(child)
    return tuple(parts) or (Part("", quoted=True),)


def _variable(node: tree_sitter.Node, *, quoted: bool) -> Part:
    named = node.named_children
    if len(named) != 1 or named[0].type != "variable_name" or len(node.children) > 4:
        raise ShellError(
            f"parameter expansion {_text(node)!r} is not supported by the coalmine load tester "
            "(only $NAME and ${NAME})"
        )
    return Part(_text(named[0]), quoted=quoted, variable=True)


def _unescape_unquoted(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            out.append("" if following == "\n" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _unescape_double_quoted(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in '"\\$`\n':
            following = text[index + 1]
            out.append("" if following == "\n" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
