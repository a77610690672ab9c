"""The one way tests wait for a state: poll a check until it holds, fail with what was awaited.

Tests drive real servers, controllers and threads, so there is often no event to await; a short
poll with a deadline is the tool. The deadline only bounds a broken run: no test asserts timing.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    limit: float = 30.0,
    what: str = "",
    *,
    interval: float = 0.05,
    detail: Callable[[], str] | None = None,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` (sync or async) until it returns something truthy, and return that.

    After `limit` seconds fail with an AssertionError naming `what` (or the check) and, when given,
    `detail()` (e.g. the history seen so far). Exceptions of the `tolerate` types count as "not
    yet" (a server still coming up).
    """
    try:
        async with asyncio.timeout(limit):
            while True:
                try:
                    result = check()
                    if inspect.isawaitable(result):
                        result = await result
                except tolerate:
                    result = None  # type: ignore[assignment]
                if result:
                    return result  # type: ignore[return-value]
                await asyncio.sleep(interval)
    except TimeoutError:
        extra = f"; {detail()}" if detail is not None else ""
        raise AssertionError(
            f"timed out after {limit:g} s waiting for {what or check}{extra}"
        ) from None
