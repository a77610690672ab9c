"""`coalmine status --watch`: wait until the watched canaries are settled, showing each change.

On a terminal the full view (a tree per canary) is redrawn in place and its clocks tick; off a
terminal (a CI log) each change is one timestamped line, never redrawn, never cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coalmine.cli.status.reading import CliError, View, pending_revision, read_target, settled
from coalmine.cli.status.render import duration, styled, watch_line

if TYPE_CHECKING:
    from rich.console import Console

    from coalmine.kube.api import KubeApi

Describe = Callable[[Sequence[View]], Any]
"""Builds (async) the models of the views: reads events and targets."""
Frame = Callable[[Sequence[dict[str, Any]]], list[tuple[str, str]]]
"""The full view of the models, as (text, style) lines."""

TICK = 1.0


async def watch_until_settled(
    api: KubeApi,
    namespace: str | None,
    name: str | None,
    views: Sequence[View],
    limit: float,
    console: Console,
    describe: Describe,
    frame: Frame,
) -> list[View] | None:
    """Show each change until every watched canary is settled; None on timeout."""
    expected = {view.key: pending_revision(view, await read_target(api, view)) for view in views}
    if all(settled(view, expected[view.key]) for view in views):
        return list(views)
    for view in views:
        if expected[view.key]:
            console.print(f"{view.name}: a target change is waiting for the controller")
    if console.is_terminal:
        return await _live(api, namespace, name, expected, limit, console, describe, frame)
    return await _lines(api, namespace, name, expected, limit, console, describe)


async def _changes(
    api: KubeApi, namespace: str | None, name: str | None
) -> tuple[Any, asyncio.Event]:
    from coalmine.kube.cache import Informer
    from coalmine.kube.kinds import CANARY

    changed = asyncio.Event()
    informer = Informer(api, CANARY, namespace)
    informer.subscribe(lambda _event, _obj: changed.set())
    informer.start()
    await informer.wait_synced()
    return informer, changed


def _current(informer: Any, namespace: str | None, name: str | None) -> list[View]:
    current = [
        View(obj)
        for obj in informer.list(namespace)
        if name is None or obj.get("metadata", {}).get("name") == name
    ]
    if name is not None and not current:
        raise CliError(f"canary {name} was deleted from namespace {namespace}")
    current.sort(key=lambda view: (view.namespace, view.name))
    return current


async def _lines(
    api: KubeApi,
    namespace: str | None,
    name: str | None,
    expected: dict[str, str | None],
    limit: float,
    console: Console,
    describe: Describe,
) -> list[View] | None:
    last_lines: dict[str, str] = {}
    informer = None
    try:
        async with asyncio.timeout(limit):
            informer, changed = await _changes(api, namespace, name)
            while True:
                changed.clear()
                current = _current(informer, namespace, name)
                for view, model in zip(current, await describe(current), strict=True):
                    line = watch_line(model)
                    if namespace is None:
                        line = f"{view.namespace}/{line}"
                    if last_lines.get(view.key) != line:
                        last_lines[view.key] = line
                        console.print(f"{_clock()} {line}", soft_wrap=True)
                if all(settled(view, expected.get(view.key)) for view in current):
                    return current
                await changed.wait()
    except TimeoutError:
        console.print(f"timed out after {duration(limit)} waiting for the release to end")
        return None
    finally:
        if informer is not None:
            await informer.stop()


async def _live(
    api: KubeApi,
    namespace: str | None,
    name: str | None,
    expected: dict[str, str | None],
    limit: float,
    console: Console,
    describe: Describe,
    frame: Frame,
) -> list[View] | None:
    from rich.console import Group
    from rich.live import Live

    informer = None
    try:
        with Live(console=console, auto_refresh=False, transient=True) as live:
            async with asyncio.timeout(limit):
                informer, changed = await _changes(api, namespace, name)
                read_at, models = 0.0, list[dict[str, Any]]()
                while True:
                    if changed.is_set() or not models:
                        changed.clear()
                        current = _current(informer, namespace, name)
                        models, read_at = await describe(current), time.monotonic()
                        if all(settled(view, expected.get(view.key)) for view in current):
                            return current
                    header = (f"{_clock()} watching, up to {duration(limit)}", "dim")
                    shown = [aged(model, time.monotonic() - read_at) for model in models]
                    live.update(Group(*styled([header, *frame(shown)])), refresh=True)
                    # Redraw every TICK so the clocks move; read the API only on a change.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(TICK):
                            await changed.wait()
    except TimeoutError:
        console.print(f"timed out after {duration(limit)} waiting for the release to end")
        return None
    finally:
        if informer is not None:
            await informer.stop()


def aged(model: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The model as it reads `seconds` after it was built: elapsed up, remaining down."""
    timing = dict(model["time"])
    if timing["elapsedSeconds"] is not None:
        timing["elapsedSeconds"] += seconds
    if timing["remainingSeconds"] is not None:
        timing["remainingSeconds"] = max(timing["remainingSeconds"] - seconds, 0.0)
    return {**model, "time": timing}


def _clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")
