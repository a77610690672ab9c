"""Go's text/template for MetricTemplate queries: lexer, parser, executor and fmt.

Flagger renders queries with Go's text/template (functions `name`, `namespace`, `target`, …,
`missingkey=error`, nil data), so a query must render here to the same text. No maintained
Python implementation exists on PyPI, hence this one, split as Go's is: `lexer`, `parser`
(with `nodes`), `executor` (with `functions` and `fmt`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from coalmine.analysis.gotemplate.errors import TemplateError
from coalmine.analysis.gotemplate.executor import execute
from coalmine.analysis.gotemplate.fmt import go_sprintf
from coalmine.analysis.gotemplate.functions import BUILTINS, LAZY
from coalmine.analysis.gotemplate.nodes import Tree
from coalmine.analysis.gotemplate.parser import parse

__all__ = ["TemplateError", "go_sprintf", "render"]


def render(
    source: str,
    functions: Mapping[str, Callable[..., Any]],
    name: str = "query",
    dot: Any = None,
) -> str:
    """Parse and execute `source` with `functions` added to Go's builtins."""
    return execute(_parsed(name, source, frozenset(functions)), functions, dot)


@functools.lru_cache(maxsize=4096)
def _parsed(name: str, source: str, functions: frozenset[str]) -> Tree:
    """Parse trees are never changed by execution, so each query is parsed once per process."""
    return parse(name, source, {*BUILTINS, *LAZY, *functions})
