"""What the runtime remembers about each canary between events, indexed by target."""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.api.models import Canary


@dataclass
class _Known:
    """What the runtime remembers about a canary between events (never decisions)."""

    canary: Canary
    target: tuple[str, str, str]
    refused_reason: str = ""


class _KnownCanaries:
    """`_Known` by canary key, indexed by target.

    Duplicate checks (every Canary event) and target events look up the canaries of one target
    instead of scanning all: the scan made each event O(canaries), a tenth of the controller's
    CPU with 1,000 canaries analysing (`bench/scale.py`).
    """

    def __init__(self) -> None:
        self._by_key: dict[str, _Known] = {}
        self._by_target: dict[tuple[str, str, str], set[str]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def get(self, key: str) -> _Known | None:
        return self._by_key.get(key)

    def __setitem__(self, key: str, known: _Known) -> None:
        self.pop(key)
        self._by_key[key] = known
        self._by_target.setdefault(known.target, set()).add(key)

    def pop(self, key: str, default: None = None) -> _Known | None:
        known = self._by_key.pop(key, None)
        if known is not None:
            keys = self._by_target[known.target]
            keys.discard(key)
            if not keys:
                del self._by_target[known.target]
        return known

    def values(self) -> list[_Known]:
        return list(self._by_key.values())

    def releasing(self, target: tuple[str, str, str]) -> list[tuple[str, _Known]]:
        """(key, known) of the canaries whose targetRef is `target`."""
        return [(key, self._by_key[key]) for key in sorted(self._by_target.get(target, ()))]
