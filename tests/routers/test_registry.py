"""Provider strings → routers, as Flagger's factory maps them (`pkg/router/factory.go`)."""

from __future__ import annotations

import pytest

from coalmine.routers import contour, gatewayapi, gloo, istio, knative, kuma, nginx, smi, traefik
from coalmine.routers.common import ProviderSpec, parse_provider
from coalmine.routers.registry import ROUTERS, router_for


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("istio", ProviderSpec("istio")),
        ("smi:v1alpha1:istio", ProviderSpec("smi", "v1alpha1", "istio")),
        ("gatewayapi:v1beta1", ProviderSpec("gatewayapi", "v1beta1")),
        ("appmesh:v1beta2", ProviderSpec("appmesh", "v1beta2")),
        (" linkerd ", ProviderSpec("linkerd")),
    ],
)
def test_parse_provider(value: str, expected: ProviderSpec) -> None:
    assert parse_provider(value) == expected


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("istio", istio.ROUTER),
        ("linkerd", smi.LINKERD),
        ("osm", smi.OSM),
        ("smi:v1alpha1", smi.ROUTER_V1ALPHA1),
        ("smi:v1alpha2", smi.ROUTER_V1ALPHA2),
        ("smi:v1alpha3", smi.ROUTER_V1ALPHA3),
        ("gatewayapi:v1", gatewayapi.ROUTER_V1),
        ("gatewayapi:v1beta1", gatewayapi.ROUTER_V1BETA1),
        ("contour", contour.ROUTER),
        ("nginx", nginx.ROUTER),
        ("traefik", traefik.ROUTER),
        ("gloo", gloo.ROUTER),
        ("kuma", kuma.ROUTER),
        ("knative", knative.ROUTER),
    ],
)
def test_provider_selects_its_router(provider: str, expected: object) -> None:
    selection = router_for(provider)
    assert selection.router is expected
    assert selection.warning is None
    assert ROUTERS[provider] is expected


def test_smi_mesh_suffix_builds_a_router_for_that_mesh() -> None:
    router = router_for("smi:v1alpha2:osm").router
    assert isinstance(router, smi.SMIRouter)
    assert (router.version, router.mesh, router.provider) == ("v1alpha2", "osm", "smi:v1alpha2:osm")


def test_unknown_provider_falls_back_to_istio_with_a_warning() -> None:
    selection = router_for("consul")
    assert selection.router is istio.ROUTER
    assert selection.warning == "Unknown provider consul, defaulting to istio"


def test_kubernetes_provider_has_no_mesh_router() -> None:
    assert router_for("kubernetes").router is None


def test_gloo_prefix_forms_select_the_gloo_router() -> None:
    """Flagger's factory matches `gloo` by prefix (`--mesh-provider=gloo:edge`)."""
    assert router_for("gloo:edge").router is gloo.ROUTER


def test_controller_flags_configure_contour_and_nginx() -> None:
    proxy = router_for("contour", ingress_class="contour-internal").router
    assert isinstance(proxy, contour.ContourRouter)
    assert proxy.ingress_class == "contour-internal"
    ingress = router_for("nginx", ingress_annotations_prefix="custom.io").router
    assert isinstance(ingress, nginx.NginxRouter)
    assert ingress.prefix == "custom.io"
