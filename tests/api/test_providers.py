"""The provider table agrees with the CRD enum, the routers and Flagger's router factory."""

from __future__ import annotations

from typing import get_args

import pytest

from coalmine.api import providers
from coalmine.api.models import Provider
from coalmine.routers.registry import ROUTERS, router_for


def test_the_table_has_one_row_per_value_of_the_crd_enum() -> None:
    assert set(providers.PROVIDERS) == set(get_args(Provider))


@pytest.mark.parametrize("name", sorted(providers.PROVIDERS))
def test_each_row_is_routed_and_the_router_has_the_row_capabilities(name: str) -> None:
    row = providers.PROVIDERS[name]
    router = router_for(name).router
    if row.router is None:
        assert router is None  # kubernetes
        return
    assert router is ROUTERS[row.router]
    assert router.capabilities == row.capabilities


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("smi:v1alpha1:istio", "smi:v1alpha1"),
        ("gatewayapi:v1beta1", "gatewayapi:v1beta1"),
        ("gatewayapi:v1", "gatewayapi:v1"),
        ("appmesh:v1beta2", "appmesh:v1beta2"),
        ("gloo:anything", "gloo"),
        ("appmesh", "appmesh"),
        ("contour:x", None),
        ("crossover", None),
        ("", None),
    ],
)
def test_provider_strings_read_as_flaggers_router_factory(value: str, expected: str | None) -> None:
    assert providers.canonical(value) == expected


def test_an_unknown_provider_routes_with_istio_and_says_so() -> None:
    selection = router_for("crossover")
    assert selection.router is ROUTERS["istio"]
    assert selection.warning == "Unknown provider crossover, defaulting to istio"
    assert providers.resolve("crossover").name == "istio"
