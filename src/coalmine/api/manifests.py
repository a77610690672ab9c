"""Reading YAML manifest streams the way `kubectl apply -f` does, with positions for every field.

Timestamps stay strings (Kubernetes fields such as `creationTimestamp` are strings on the wire,
while PyYAML would turn an unquoted `2024-01-01T00:00:00Z` into a datetime).

Whatever the input, reading raises nothing but `YamlSyntaxError` (with a line and column): a value
that its tag cannot hold (`!!float x`), alias bombs, recursive aliases, nesting deeper than
`MAX_DEPTH` and bytes that are not UTF-8 included. Each document keeps its composed YAML nodes, so
a problem's path (`spec.analysis.stepWeights[2]`) maps back to the line and column it was written
at (`Document.position`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Kubernetes manifests nest about 15 levels deep; PyYAML itself overflows the stack near 300.
MAX_DEPTH = 100
# Nodes one document may expand to through aliases (go-yaml refuses "excessive aliasing" too).
MAX_EXPANDED_NODES = 1_000_000


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver, whose constructors only raise YAML errors."""

    def construct_object(self, node: Node, deep: bool = False) -> object:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError):
            tag = node.tag.rsplit(":", 1)[-1]
            value = node.value if isinstance(node, ScalarNode) else type(node).__name__
            raise yaml.constructor.ConstructorError(
                None, None, f"{_clip(str(value))!r} is not a valid !!{tag}", node.start_mark
            ) from None

    def reset_construction(self) -> None:
        """Forgets a failed document's half-built objects so the next document reads cleanly."""
        self.constructed_objects = {}
        self.recursive_objects = {}
        self.state_generators = []
        self.deep_construct = False


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class YamlSyntaxError(ValueError):
    """A YAML stream that cannot be read; `line`/`column` are 1-based (0 when unknown).

    `fatal` is True when the rest of the stream cannot be read either (a syntax error), False when
    only the document at `line` is lost (a value its tag cannot hold, aliasing, nesting).
    """

    def __init__(self, line: int, column: int, message: str, *, fatal: bool = True) -> None:
        super().__init__(line, column, message)
        self.line = line
        self.column = column
        self.message = message
        self.fatal = fatal

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the text a document was read from."""

    line: int
    column: int


def _position(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


_PATH_PART = re.compile(r'\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def _path_parts(path: str) -> list[str | int]:
    """`spec.match[0].headers["x y"]` → `["spec", "match", 0, "headers", "x y"]` (stops where unparsable)."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if match is None:
            break
        name, index, quoted = match.groups()
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(str(json.loads(quoted)))
        else:
            parts.append(name)
        position = match.end()
    return parts


@dataclass(frozen=True)
class Document:
    """One decoded document of a stream and the YAML nodes it was read from."""

    data: object
    node: Node

    @property
    def start(self) -> Position:
        return _position(self.node.start_mark)

    def position(self, path: str) -> Position:
        """Where the field at `path` is written: its key (or list item), else its nearest parent's."""
        node: Node = self.node
        mark = node.start_mark
        for part in _path_parts(path):
            child = _child(node, part)
            if child is None:
                break
            mark, node = child
        return _position(mark)


def _child(node: Node, part: str | int) -> tuple[yaml.Mark, Node] | None:
    if isinstance(node, SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item: Node = node.value[part]
            return item.start_mark, item
        return None
    if isinstance(node, MappingNode):
        # The last of duplicate keys wins, as when the mapping was constructed.
        for key, value in reversed(node.value):
            if isinstance(key, ScalarNode) and key.value == str(part):
                return key.start_mark, value
    return None


def _expanded_size(node: Node, depth: int, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes `node` stands for once every alias is expanded; raises on cycles and deep nesting."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if depth > MAX_DEPTH:
        raise YamlSyntaxError(
            *_mark_pair(node), f"nested more than {MAX_DEPTH} levels deep", fatal=False
        )
    if id(node) in open_nodes:
        raise YamlSyntaxError(*_mark_pair(node), "an alias refers to itself", fatal=False)
    open_nodes.add(id(node))
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    total = 1
    for child in children:
        total += _expanded_size(child, depth + 1, sizes, open_nodes)
        if total > MAX_EXPANDED_NODES:
            raise YamlSyntaxError(
                *_mark_pair(node),
                f"excessive aliasing: the document expands to more than {MAX_EXPANDED_NODES} nodes",
                fatal=False,
            )
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


def _mark_pair(node: Node) -> tuple[int, int]:
    position = _position(node.start_mark)
    return position.line, position.column


def decode(data: bytes) -> str:
    """The text of a manifest file: UTF-8 (UTF-16 with a byte-order mark), else YamlSyntaxError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise YamlSyntaxError(0, 0, f"invalid UTF-16: {exc.reason}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8", "replace")) + 1
        shown = data[exc.start : exc.end].hex(" ")
        raise YamlSyntaxError(line, column, f"not UTF-8 (byte {shown})") from None


def iter_located_documents(text: str) -> Iterator[Document | YamlSyntaxError]:
    """Each document of a YAML stream in order, or the error that loses it.

    A non-fatal error (one document lost) is yielded and reading goes on; a fatal one (the stream
    breaks) is yielded last.
    """
    try:
        loader = _ManifestLoader(text)
    except Exception as exc:  # the reader checks the whole text at once
        yield _syntax_error(exc, text, None)
        return
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                if node is None:
                    return
            except Exception as exc:  # every failure becomes a positioned error
                yield _syntax_error(exc, text, loader)
                return
            try:
                _expanded_size(node, 0, {}, set())
                data = loader.construct_document(node)
            except Exception as exc:
                loader.reset_construction()
                error = _syntax_error(exc, text, loader, fallback=node.start_mark)
                error.fatal = False
                yield error
                continue
            yield Document(data, node)
    finally:
        loader.dispose()


def iter_documents(text: str) -> Iterator[object]:
    """Each document of a YAML stream in order; raises YamlSyntaxError at the first unreadable one."""
    for item in iter_located_documents(text):
        if isinstance(item, YamlSyntaxError):
            raise item
        yield item.data


def _syntax_error(
    exc: BaseException,
    text: str,
    loader: _ManifestLoader | None,
    fallback: yaml.Mark | None = None,
) -> YamlSyntaxError:
    if isinstance(exc, YamlSyntaxError):
        return exc
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        return YamlSyntaxError(*_line_column(mark), message)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = exc.character
        shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
        return YamlSyntaxError(line, column, f"{exc.reason} ({shown})")
    where = _line_column(fallback or (loader.get_mark() if loader is not None else None))
    if isinstance(exc, RecursionError):
        return YamlSyntaxError(*where, "nested too deeply")
    return YamlSyntaxError(*where, _clip(" ".join(str(exc).split()) or type(exc).__name__, 200))


def _line_column(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
