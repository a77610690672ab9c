"""Weights as routers write and read them: checked before a write, parsed back from the live
object (integers, or SMI v1alpha1's resource quantities)."""

from __future__ import annotations

from typing import Any

from coalmine.routers.base import Routes
from coalmine.routers.objects import RouterError

INITIAL_WEIGHTS = Routes(100, 0, False)


def check_weights(primary: int, canary: int, baseline: int = 0) -> None:
    if primary < 0 or canary < 0 or baseline < 0:
        extra = f", baseline {baseline}" if baseline else ""
        raise RouterError(
            f"weights must not be negative (primary {primary}, canary {canary}{extra})"
        )


def refuse_baseline(router: str, baseline_weight: int) -> None:
    """A two-way router asked to route a baseline (the verdict refuses such a Canary first)."""
    if baseline_weight:
        raise RouterError(
            f"the {router} router cannot split traffic three ways "
            f"(baseline weight {baseline_weight} asked)"
        )


def weight_from(value: Any) -> int:
    """A backend weight as written: integer, or (SMI v1alpha1) a resource quantity like `500m`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value or "0").strip()
    try:
        if text.endswith("m"):
            return int(float(text[:-1]) / 1000)
        return int(float(text))
    except ValueError as error:
        raise RouterError(f"weight {text!r} is not a number") from error


def split_from_primary(value: Any) -> Routes:
    """The split of routers that write only the primary's weight: the canary gets the rest."""
    weight = weight_from(value)
    return Routes(weight, 100 - weight, False)
