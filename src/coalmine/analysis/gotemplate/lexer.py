"""Go text/template's lexer: text, delimiters with trim markers, comments and action tokens.

Spaces inside actions are kept as a flag on the next token (`space_before`) because Go's grammar
depends on them: `(x).F` chains a field, `(x) .F` passes a second argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coalmine.analysis.gotemplate.errors import TemplateError, position

LEFT, RIGHT = "{{", "}}"
SPACES = " \t\r\n"
KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}
)

_ACTION_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.[^'\n]*?)')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*(?:[pP][+-]?[0-9]+)?
                    |0[bB][01_]+|0[oO][0-7_]+
                    |(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?)i?)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # text | left | right | keyword | bool | nil | one of _ACTION_TOKEN's groups | eof
    text: str
    offset: int
    space_before: bool = False


class Lexer:
    """Turns a template into tokens; raises TemplateError naming the template and position."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.tokens: list[Token] = []

    def error(self, reason: str, offset: int) -> TemplateError:
        line, column = position(self.source, offset)
        return TemplateError(self.name, reason, line, column)

    def run(self) -> list[Token]:
        at = 0
        trim_next = False
        source = self.source
        while True:
            start = source.find(LEFT, at)
            text_end = len(source) if start < 0 else start
            text = source[at:text_end]
            if trim_next:
                text = text.lstrip(SPACES)
            inner = start + len(LEFT)
            trim_left = start >= 0 and source.startswith("-", inner) and _space(source, inner + 1)
            if trim_left:
                text = text.rstrip(SPACES)
                inner += 2
            if text:
                self.tokens.append(Token("text", text, text_end - len(text)))
            if start < 0:
                self.tokens.append(Token("eof", "", len(source)))
                return self.tokens
            comment = self._comment(inner, start)
            if comment is not None:
                at, trim_next = comment
                continue
            self.tokens.append(Token("left", LEFT, start))
            at, trim_next = self._action(inner, start)

    def _comment(self, inner: int, start: int) -> tuple[int, bool] | None:
        """`{{/* … */}}` (with optional trim markers): the end offset and the right trim."""
        if not self.source.startswith("/*", inner):
            return None
        close = self.source.find("*/", inner + 2)
        if close < 0:
            raise self.error("unclosed comment", start)
        after = close + 2
        right = self._right_delimiter(after)
        if right is None:
            raise self.error("comment ends before closing delimiter", start)
        return right

    def _right_delimiter(self, at: int) -> tuple[int, bool] | None:
        if self.source.startswith(RIGHT, at):
            return at + len(RIGHT), False
        if _space(self.source, at) and self.source.startswith("-" + RIGHT, at + 1):
            return at + 2 + len(RIGHT), True
        return None

    def _action(self, at: int, start: int) -> tuple[int, bool]:
        source = self.source
        space = False
        while True:
            if at >= len(source):
                raise self.error("unclosed action", start)
            right = self._right_delimiter(at)
            if right is not None:
                self.tokens.append(Token("right", RIGHT, at))
                return right
            if source[at] in SPACES:  # newlines too: allowed inside actions since Go 1.16
                space = True
                at += 1
                continue
            match = _ACTION_TOKEN.match(source, at)
            if match is None or match.end() == at:
                raise self.error(f"unexpected {source[at]!r} in command", at)
            kind = match.lastgroup or ""
            text = match.group()
            if kind == "word":
                kind = _word_kind(text)
            self.tokens.append(Token(kind, text, at, space))
            space = False
            at = match.end()


def _space(source: str, at: int) -> bool:
    return at < len(source) and source[at] in SPACES


def _word_kind(word: str) -> str:
    if word in KEYWORDS:
        return "keyword"
    if word in ("true", "false"):
        return "bool"
    if word == "nil":
        return "nil"
    return "identifier"


def lex(name: str, source: str) -> list[Token]:
    return Lexer(name, source).run()
