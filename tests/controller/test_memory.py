"""The collector housekeeping: survivors frozen each period, everything thawed and collected rarely."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from coalmine.controller.memory import Refreezer, collector_pauses, track_collector_pauses


class Node:
    partner: object = None


def reference_cycle() -> tuple[Node, weakref.ref[Node]]:
    """An object in a reference cycle with itself, and a weak reference telling when it is freed."""
    node = Node()
    node.partner = node
    return node, weakref.ref(node)


@pytest.fixture(autouse=True)
def collector_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_survivors_are_frozen_once_a_period_is_over() -> None:
    now = 0.0
    refreezer = Refreezer(every=60, thaw_every=1800, clock=lambda: now)
    refreezer.tick()
    assert gc.get_freeze_count() == 0
    now = 61.0
    refreezer.tick()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    survivors = [[index] for index in range(1000)]
    now = 122.0
    refreezer.tick()
    assert gc.get_freeze_count() >= frozen + len(survivors)


def test_a_frozen_reference_cycle_is_collected_at_the_next_thaw() -> None:
    now = 0.0
    refreezer = Refreezer(every=60, thaw_every=1800, clock=lambda: now)
    node, alive = reference_cycle()
    now = 61.0
    refreezer.tick()  # the cycle is alive now: frozen
    del node
    gc.collect()
    assert alive() is not None  # garbage, but out of the collector's sight
    now = 1801.0
    refreezer.tick()
    assert alive() is None


def test_collector_pauses_are_counted_by_generation() -> None:
    track_collector_pauses()
    full = collector_pauses()[2]
    before_count, before_total = full.cumulative()[-1][1], full.total
    gc.collect()
    assert len(collector_pauses()) == 3
    assert full.cumulative()[-1][1] == before_count + 1
    assert full.total > before_total
    bounds = [bound for bound, _ in full.cumulative()]
    assert bounds == sorted(bounds)
    assert bounds[-1] == float("inf")


def test_young_garbage_is_collected_before_the_survivors_are_frozen() -> None:
    now = 0.0
    refreezer = Refreezer(every=10, thaw_every=1800, clock=lambda: now)
    node, alive = reference_cycle()
    del node  # a garbage reference cycle not yet collected
    now = 11.0
    refreezer.tick()
    assert alive() is None
