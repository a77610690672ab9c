"""Failures of requests to the API server, described in one line and logged without floods.

During an outage every canary fails every cycle the same way; a traceback per failure (the
chained lightkube, httpx and coalmine exceptions) turned a 30 s outage into 16,000 log lines.
A failure is one line (exception class and message, plus the verb and object when known), its
traceback is logged at debug level only, and repeats of the same failure are folded into a
summary line at most every `SUMMARY_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

SUMMARY_SECONDS = 30.0
"""Repeats of one failure are summarised at most this often (per limiter: per canary, per kind)."""
MAX_DISTINCT = 32
"""Distinct failures remembered per limiter (by default); the oldest is forgotten first."""


class RequestFailed(RuntimeError):
    """A write the controller could not make: which verb on which object, and why.

    Raised `from` the client's exception, so the traceback (debug level) keeps the chain.
    """

    def __init__(self, verb: str, target: str, cause: BaseException) -> None:
        super().__init__(f"{verb} {target}: {describe(cause)}")
        self.verb = verb
        self.target = target
        self.cause = cause


class StaleObject(RuntimeError):
    """A write derived from an object the cache no longer has (deleted, re-created, re-listing)."""


def describe(error: BaseException) -> str:
    """`Class: message` on one line (the message of a client error can span lines)."""
    if isinstance(error, RequestFailed | StaleObject):
        return str(error)
    message = " ".join(str(error).split()) or repr(error)
    return f"{type(error).__name__}: {message}"


@dataclass
class _Seen:
    first: float
    repeats: int = 0


class RepeatLimiter:
    """Logs the first occurrence of each distinct failure, then a summary of its repeats.

    A failure is identified by its one-line description; a different failure is logged at once.
    `clear()` (a success) reports what was folded since the last line and starts afresh.
    """

    def __init__(
        self,
        logger: logging.Logger,
        summary_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_distinct: int = MAX_DISTINCT,
    ) -> None:
        self.logger = logger
        self.summary_seconds = summary_seconds
        self.max_distinct = max_distinct
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def failed(
        self,
        what: str,
        error: BaseException,
        *,
        level: int = logging.WARNING,
        extra: dict[str, str] | None = None,
    ) -> bool:
        """Log `what: <description>` unless it repeats a recent one; True when a line was written."""
        text = f"{what}: {describe(error)}"
        now = self._clock()
        seen = self._seen.get(text)
        if seen is None:
            if len(self._seen) >= self.max_distinct:
                del self._seen[next(iter(self._seen))]
            self._seen[text] = _Seen(now)
            self.logger.log(level, text, extra=extra)
        elif now - seen.first >= self.summary_seconds:
            self.logger.log(
                level,
                "%s (repeated %d times in %.0fs)",
                text,
                seen.repeats + 1,
                now - seen.first,
                extra=extra,
            )
            self._seen[text] = _Seen(now)
        else:
            seen.repeats += 1
            self.logger.debug("%s (repeat)", text, exc_info=error, extra=extra)
            return False
        self.logger.debug("%s", what, exc_info=error, extra=extra)
        return True

    def clear(self, what: str, *, extra: dict[str, str] | None = None) -> None:
        """The operation worked again: summarise folded repeats, forget the failures."""
        folded = sum(seen.repeats for seen in self._seen.values())
        if self._seen:
            self.logger.info(
                "%s works again (%d more failures were not logged)", what, folded, extra=extra
            )
        self._seen.clear()

    @property
    def failing(self) -> bool:
        return bool(self._seen)
