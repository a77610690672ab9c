"""One verdict: `coalmine check` and the controller judge every Canary the repository ships alike.

The controller's whole refusal decision is `routers.verdict.judge` (what
`CanaryReconciler._judge` calls on every event and cycle); `coalmine check` reports the spec rules
and `routers.verdict.compatibility`. For every Canary under docs/ (YAML files and the YAML code
blocks of the Markdown pages) and tests/ (YAML files, Flagger's examples among them), with the
controller's default provider and with `kubernetes`, check has an error exactly when the
controller refuses, and every problem of the refusal is one of check's errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine.api.models import Canary
from coalmine.api.providers import PROVIDERS
from coalmine.cli.check import Options as CheckOptions
from coalmine.cli.check import check_stream
from coalmine.routers.verdict import Options, compatibility, judge

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)


def _documents(text: str) -> Iterator[Any]:
    try:
        yield from yaml.safe_load_all(text)
    except yaml.YAMLError:
        return  # a template or a fragment: neither check nor the controller sees a Canary


def _yaml_sources() -> Iterator[tuple[str, str]]:
    for folder in ("docs", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".yaml", ".yml"):
                yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
            elif path.suffix == ".md":
                text = path.read_text(encoding="utf-8")
                for number, block in enumerate(BLOCK.findall(text)):
                    yield f"{path.relative_to(ROOT)}#yaml{number}", block


def canaries() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for source, text in _yaml_sources():
        for position, doc in enumerate(_documents(text)):
            items = (
                doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            )
            for item in items or []:
                if (
                    isinstance(item, dict)
                    and item.get("kind") == "Canary"
                    and str(item.get("apiVersion", "")).startswith("flagger.app/")
                ):
                    found.append((f"{source}[{position}]", item))
    return found


CANARIES = canaries()


def test_the_corpus_has_canaries_that_run_and_canaries_that_are_refused() -> None:
    verdicts = [judge(doc, Options()) for _, doc in CANARIES]
    assert len(CANARIES) > 30
    assert any(v.refusal is None for v in verdicts)
    assert any(v.reason == "UnsupportedRouting" for v in verdicts)


@pytest.mark.parametrize(
    "mesh_provider", ["istio", "kubernetes", "kuma", "nginx", "appmesh", "appmesh:v1beta2"]
)
@pytest.mark.parametrize(("source", "doc"), CANARIES, ids=[s for s, _ in CANARIES])
def test_check_and_the_controller_reach_the_same_verdict(
    source: str, doc: dict[str, Any], mesh_provider: str
) -> None:
    verdict = judge(doc, Options(mesh_provider=mesh_provider))
    result = check_stream(yaml.safe_dump(doc), source, CheckOptions(mesh_provider=mesh_provider))
    errors = {f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"}
    assert bool(errors) == (verdict.refusal is not None), (errors, verdict)
    assert {str(problem) for problem in verdict.problems} <= errors


def canary(provider: str, **analysis: Any) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "test", "uid": "u"},
            "spec": {
                "provider": provider,
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898, "gatewayRefs": [{"name": "gw"}]},
                "ingressRef": {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "name": "i",
                },
                "analysis": {"interval": "1m", "threshold": 5, **analysis},
            },
        }
    )


def severities(canary: Canary) -> dict[str, str]:
    return {p.path: p.severity for p in compatibility(canary, Options())}


@pytest.mark.parametrize(
    "provider",
    ["nginx", "contour", "linkerd", "traefik", "osm", "gloo", "kuma", "apisix", "skipper"],
)
def test_mirroring_a_router_cannot_make_is_a_warning_on_blue_green_and_canary_runs(
    provider: str,
) -> None:
    blue_green = canary(provider, iterations=5, mirror=True)
    assert severities(blue_green)["spec.analysis.mirror"] == "warning"
    stepped = canary(provider, stepWeight=10, mirror=True)
    assert severities(stepped)["spec.analysis.mirror"] == "warning"


@pytest.mark.parametrize(
    "provider", ["linkerd", "traefik", "smi:v1alpha3", "kuma", "apisix", "skipper"]
)
def test_a_leftover_match_is_a_warning_and_an_ab_run_without_header_routing_is_refused(
    provider: str,
) -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    leftover = canary(provider, stepWeight=10, match=match)
    assert severities(leftover)["spec.analysis.match"] == "warning"
    ab_run = canary(provider, iterations=5, match=match)
    assert severities(ab_run)["spec.analysis.match"] == "error"


def crd_provider_enum() -> list[str]:
    crd = yaml.safe_load((ROOT / "deploy" / "crds" / "canaries.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return list(schema["properties"]["spec"]["properties"]["provider"]["enum"])


@pytest.mark.parametrize("name", crd_provider_enum())
def test_every_provider_of_the_crd_enum_has_a_router(name: str) -> None:
    """Every provider Flagger's CRD allows has a row and, but for `kubernetes`, a router: no
    canary is refused for its provider (other fields may still be missing for it)."""
    assert name in PROVIDERS
    assert (PROVIDERS[name].router is None) == (name == "kubernetes")
    problems = compatibility(canary(name, stepWeight=10), Options())
    assert [p for p in problems if p.path == "spec.provider"] == []


GLOO_KUMA_CASES = {
    "gloo-ab-by-uri": ("gloo", {"iterations": 5, "match": [{"uri": {"prefix": "/v2"}}]}, {}),
    "gloo-tcp": ("gloo", {"stepWeight": 10}, {"appProtocol": "tcp"}),
    "kuma-ab": ("kuma", {"iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]}, {}),
    "gloo-ab-by-header": (
        "gloo",
        {"iterations": 5, "match": [{"headers": {"x": {"regex": "1"}}}]},
        {},
    ),
    "kuma-tcp": ("kuma", {"stepWeight": 10}, {"appProtocol": "tcp"}),
}


@pytest.mark.parametrize("case", sorted(GLOO_KUMA_CASES))
def test_check_and_the_controller_agree_on_gloo_and_kuma(case: str) -> None:
    provider, analysis, service = GLOO_KUMA_CASES[case]
    doc = canary(provider, **analysis).model_dump(by_alias=True, exclude_none=True, mode="json")
    doc = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", **doc}
    doc["spec"]["service"].update(service)
    verdict = judge(doc, Options())
    result = check_stream(yaml.safe_dump(doc), case, CheckOptions())
    errors = {f"{f.path}: {f.message}" for f in result.findings if f.severity == "error"}
    assert errors == {str(problem) for problem in verdict.problems}
    refused = case in ("gloo-ab-by-uri", "gloo-tcp", "kuma-ab")
    assert (verdict.reason == "UnsupportedRouting") is refused, verdict
