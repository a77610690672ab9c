"""Problems: where a manifest is wrong and why, and how a user's value is shown in one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from coalmine.api.models import AlertProvider, Canary, MetricTemplate

#: How bad a problem in a manifest is: an error stops the Canary, a warning is reported.
ProblemSeverity = Literal["error", "warning"]
FlaggerObject = Canary | MetricTemplate | AlertProvider


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (a dotted path into the object) and why."""

    path: str
    reason: str
    severity: ProblemSeverity = "error"

    def __str__(self) -> str:
        if self.severity == "warning":
            return f"{self.path}: warning: {self.reason}"
        return f"{self.path}: {self.reason}"


class ManifestError(ValueError):
    """A manifest that cannot be used; `problems` lists every problem found (warnings included)."""

    def __init__(self, problems: Sequence[Problem], *, subject: str = "manifest") -> None:
        self.problems: list[Problem] = list(problems)
        self.subject = subject
        super().__init__(str(self))

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    def __str__(self) -> str:
        # A subject built from a user's kind or name may hold a newline: quoted and escaped
        # (as the problems quote values), so that the message stays one line per problem.
        subject = self.subject if self.subject.isprintable() else json.dumps(self.subject)
        lines = [f"{subject} is invalid:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def summarize_problems(problems: Sequence[Problem], *, limit: int = 1024) -> str:
    """One line for a status condition or an event: errors first, `(and N more)` past `limit`.

    Kubernetes truncates long event messages; this keeps whole problems and says what is left out.
    """
    ordered = [p for p in problems if p.severity == "error"] + [
        p for p in problems if p.severity == "warning"
    ]
    shown: list[str] = []
    for position, problem in enumerate(ordered):
        rest = len(ordered) - position
        candidate = "; ".join([*shown, str(problem)])
        suffix = f" (and {rest - 1} more)" if rest > 1 else ""
        if shown and len(candidate) + len(suffix) > limit:
            return "; ".join(shown) + f" (and {rest} more)"
        shown.append(str(problem))
    return "; ".join(shown)


@dataclass(frozen=True)
class Inspection:
    """What `inspect_object` found: the model (None when it has errors or is not ours) and problems."""

    kind: str | None
    obj: FlaggerObject | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "warning"]


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(loc: Iterable[str | int]) -> str:
    """`("spec", "analysis", "stepWeights", 2)` → `spec.analysis.stepWeights[2]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SAFE_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "document"


def show(value: object, limit: int = 60) -> str:
    """A short JSON-like rendering of a user's value, bounded however large or deep it is."""
    text = _render(value, limit + 1, 0)
    # One problem is one line: characters such as U+2028 would split it.
    text = "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: object, budget: int, depth: int) -> str:
    if isinstance(value, Mapping | list | tuple):
        if depth >= 4:
            return "…"
        is_map = isinstance(value, Mapping)
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        parts: list[str] = []
        used = 2
        for key, item in items:
            part = _render(item, budget - used, depth + 1)
            if is_map:
                part = f"{_render(str(key), budget - used, depth + 1)}: {part}"
            parts.append(part)
            used += len(part) + 2
            if used > budget:
                break
        joined = ", ".join(parts)
        return f"{{{joined}}}" if is_map else f"[{joined}]"
    if isinstance(value, str) and len(value) > budget:
        value = value[:budget]
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)[:budget]


def key_path(name: str) -> str:
    return f".{name}" if _SAFE_KEY.match(name) else f"[{json.dumps(name)}]"


def is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
