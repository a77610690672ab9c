"""The one error type of the template engine, positioned as Go positions its errors."""

from __future__ import annotations


class TemplateError(Exception):
    """A template that cannot be parsed or executed.

    The text follows Go's: `template: NAME:LINE:COL: REASON` (COL counted from 0, as Go's
    `ErrorContext` does), and for execution errors `executing "NAME" at <NODE>: REASON`.
    """

    def __init__(
        self, template: str, reason: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = template
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"template: {where}: {reason}")
        self.template = template
        self.reason = reason
        self.line = line
        self.column = column


def position(source: str, offset: int) -> tuple[int, int]:
    """Line (from 1) and column (from 0) of `offset` in `source`."""
    line = source.count("\n", 0, offset) + 1
    last_newline = source.rfind("\n", 0, offset)
    return line, offset - (last_newline + 1)
