"""What the generated CRD schemas admit: every Flagger documentation example, and not Flagger's
schema violations. A JSON Schema validator stands in for the API server's OpenAPI validation
(the `x-kubernetes-*` extensions are ignored by it; the API server honours them)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from coalmine.api.crds import crd_documents
from coalmine.api.manifests import iter_documents

EXAMPLES = Path(__file__).parent / "flagger_examples"


def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    version = api_version.split("/")[1]
    for document in crd_documents():
        if document["spec"]["names"]["kind"] != kind:
            continue
        for served in document["spec"]["versions"]:
            if served["name"] == version:
                schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
                return schema
    raise LookupError(f"{api_version} {kind} is not served")


def admission_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft4Validator(schema_for(document["apiVersion"], document["kind"]))
    return sorted(
        "/".join(str(part) for part in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(document)
    )


EXAMPLE_DOCUMENTS = [
    pytest.param(document, id=f"{path.stem}-{index}")
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for index, document in enumerate(iter_documents(path.read_text()), start=1)
    if isinstance(document, dict) and str(document.get("apiVersion", "")).startswith("flagger.app/")
]


@pytest.mark.parametrize("document", EXAMPLE_DOCUMENTS)
def test_the_crd_admits_every_flagger_documentation_example(document: dict[str, Any]) -> None:
    assert admission_errors(document) == []


def example(name: str, position: int) -> dict[str, Any]:
    documents = list(iter_documents((EXAMPLES / name).read_text()))
    found = documents[position]
    assert isinstance(found, dict)
    return copy.deepcopy(found)


def test_the_crd_refuses_an_alert_provider_with_address_and_secret_ref() -> None:
    provider = example("alerting.yaml", 0)
    provider["spec"]["secretRef"] = {"name": "on-call-url"}
    assert len(admission_errors(provider)) == 1


def test_the_crd_refuses_analysis_without_threshold_or_with_two_strategies() -> None:
    canary = example("istio-canary.yaml", 1)
    del canary["spec"]["analysis"]["threshold"]
    assert len(admission_errors(canary)) == 1
    canary = example("istio-canary.yaml", 1)
    canary["spec"]["analysis"]["iterations"] = 10
    assert len(admission_errors(canary)) == 1


def test_the_crd_refuses_unknown_providers_and_bad_durations() -> None:
    canary = example("istio-canary.yaml", 1)
    canary["spec"]["provider"] = "consul"
    canary["spec"]["analysis"]["interval"] = "soon"
    errors = admission_errors(canary)
    assert len(errors) == 2
    assert errors[0].startswith("spec/analysis/interval: 'soon' does not match")
    assert errors[1].startswith("spec/provider: 'consul' is not one of")
