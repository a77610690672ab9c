"""Go's text/template for MetricTemplate queries: lexer, parser, executor and fmt.

Flagger renders queries with Go's text/template (functions `name`, `namespace`, `target`, …,
`missingkey=error`, nil data), so a query must render here to the same text. No maintained
Python implementation exists on PyPI, hence this one, split as Go's is: `lexer`, `parser`
(with `nodes`), `executor` (with `functions` and `fmt`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coalmine.analysis.gotemplate.errors import TemplateError
from coalmine.analysis.gotemplate.executor import execute
from coalmine.analysis.gotemplate.fmt import go_sprintf
from coalmine.analysis.gotemplate.functions import BUILTINS, LAZY
from coalmine.analysis.gotemplate.parser import parse

__all__ = ["TemplateError", "go_sprintf", "render"]


def render(
    source: str,
    functions: Mapping[str, Callable[..., Any]],
    name: str = "query",
    dot: Any = None,
) -> str:
    """Parse and execute `source` with `functions` added to Go's builtins."""
    tree = parse(name, source, {*BUILTINS, *LAZY, *functions})
    return execute(tree, functions, dot)
