"""Reading YAML manifest streams the way `kubectl apply -f` does.

Timestamps stay strings (Kubernetes fields such as `creationTimestamp` are strings on the wire,
while PyYAML would turn an unquoted `2024-01-01T00:00:00Z` into a datetime).
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlSyntaxError(ValueError):
    """A YAML stream that stops parsing; `line`/`column` are 1-based (0 when unknown)."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(line, column, message)
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def iter_documents(text: str) -> Iterator[object]:
    """Each document of a YAML stream in order; raises YamlSyntaxError where the stream breaks."""
    try:
        yield from yaml.load_all(text, Loader=_ManifestLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        column = mark.column + 1 if mark is not None else 0
        message = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise YamlSyntaxError(line, column, message) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = exc.character
        shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
        raise YamlSyntaxError(line, column, f"{exc.reason} ({shown})") from None
    except RecursionError:
        raise YamlSyntaxError(0, 0, "nested too deeply") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(0, 0, " ".join(str(exc).split())) from None
