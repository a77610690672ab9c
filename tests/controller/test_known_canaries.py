"""The runtime's index of canaries by target: what duplicate checks and target events look up."""

from __future__ import annotations

from coalmine.api.validation import parse_canary
from coalmine.controller.known import _Known, _KnownCanaries


def known(name: str, target: str) -> _Known:
    canary = parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "v1", "kind": "Service", "name": target},
                "service": {"port": 80},
            },
        }
    )
    return _Known(canary, ("Service", "test", target))


def test_a_retargeted_canary_no_longer_releases_its_old_target() -> None:
    canaries = _KnownCanaries()
    canaries["a.test"] = known("a", "podinfo")
    canaries["b.test"] = known("b", "podinfo")
    canaries["a.test"] = known("a", "backend")
    assert [key for key, _ in canaries.releasing(("Service", "test", "podinfo"))] == ["b.test"]
    assert [key for key, _ in canaries.releasing(("Service", "test", "backend"))] == ["a.test"]


def test_a_forgotten_canary_releases_nothing() -> None:
    canaries = _KnownCanaries()
    canaries["a.test"] = known("a", "podinfo")
    assert canaries.pop("a.test") is not None
    assert canaries.pop("a.test") is None
    assert "a.test" not in canaries
    assert canaries.releasing(("Service", "test", "podinfo")) == []
