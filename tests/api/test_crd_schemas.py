"""The CRDs: generated from the models, committed as generated, structural, and Flagger-shaped."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from coalmine.api import crds
from coalmine.api.models import AlertProvider, Canary, MetricTemplate, Model, ObjectMeta

REPOSITORY = Path(__file__).resolve().parents[2]
CRD_DIRECTORY = REPOSITORY / "deploy" / "crds"
Node = dict[str, Any]


def documents_by_kind() -> dict[str, Node]:
    return {doc["spec"]["names"]["kind"]: doc for doc in crds.crd_documents()}


def test_committed_crd_files_are_exactly_the_generators_output() -> None:
    assert crds.stale_files(CRD_DIRECTORY) == [], "run: python -m coalmine.api.crds --write"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    crds.write(tmp_path)
    assert crds.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "canaries.yaml").write_text("# edited by hand\n", encoding="utf-8")
    assert crds.main(["--check", "--dir", str(tmp_path)]) == 1


def test_the_files_hold_one_crd_each_and_a_kustomization_listing_them() -> None:
    kustomization = yaml.safe_load((CRD_DIRECTORY / "Kustomization").read_text())
    assert kustomization["resources"] == [
        "canaries.yaml",
        "metrictemplates.yaml",
        "alertproviders.yaml",
    ]
    for name in kustomization["resources"]:
        (document,) = list(yaml.safe_load_all((CRD_DIRECTORY / name).read_text()))
        assert document["kind"] == "CustomResourceDefinition"


# --- models ⇔ schemas, walked independently of the generator -------------------------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _members(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [arg for arg in get_args(annotation) if arg is not type(None)]
    return [annotation]


def assert_annotation_matches(annotation: Any, node: Node, path: str) -> None:
    members = _members(annotation)
    if len(members) == 2:
        assert set(members) == {int, str}, path
        assert node.get("x-kubernetes-int-or-string") is True, path
        assert "type" not in node, path
        return
    (annotation,) = members
    origin = get_origin(annotation)
    if annotation is Any:
        assert node.get("x-kubernetes-preserve-unknown-fields") is True, path
    elif origin is Literal:
        assert node["type"] == "string", path
        assert node["enum"] == list(get_args(annotation)), path
    elif annotation in _SCALARS:
        assert node["type"] == _SCALARS[annotation], path
    elif origin is list:
        assert node["type"] == "array", path
        assert_annotation_matches(get_args(annotation)[0], node["items"], f"{path}[]")
    elif origin is dict:
        assert node["type"] == "object", path
        value = get_args(annotation)[1]
        if value is Any:
            assert node.get("x-kubernetes-preserve-unknown-fields") is True, path
        else:
            assert_annotation_matches(value, node["additionalProperties"], f"{path}{{}}")
    elif isinstance(annotation, type) and issubclass(annotation, ObjectMeta):
        assert node == {"type": "object"}, path
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert_model_matches(annotation, node, path)
    else:
        pytest.fail(f"{path}: no expectation for {annotation!r}")


def assert_model_matches(model: type[BaseModel], node: Node, path: str) -> None:
    assert node["type"] == "object", path
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert set(node["properties"]) == set(fields), path
    required = {name for name, info in fields.items() if info.is_required()}
    assert set(node.get("required", [])) == required, path
    is_open = model.model_config.get("extra") == "allow"
    assert bool(node.get("x-kubernetes-preserve-unknown-fields")) == is_open, path
    for name, info in fields.items():
        if path == "" and name in ("apiVersion", "kind"):
            assert node["properties"][name]["type"] == "string"
            continue
        assert_annotation_matches(info.annotation, node["properties"][name], f"{path}.{name}")


@pytest.mark.parametrize("model", [Canary, MetricTemplate, AlertProvider])
def test_models_and_crd_schemas_agree_field_by_field(model: type[Model]) -> None:
    document = documents_by_kind()[str(model.model_fields["kind"].default)]
    for version in document["spec"]["versions"]:
        assert_model_matches(model, version["schema"]["openAPIV3Schema"], "")


def test_a_model_field_missing_from_the_schema_would_be_caught() -> None:
    schema = documents_by_kind()["AlertProvider"]["spec"]["versions"][0]["schema"]
    del schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["proxy"]
    with pytest.raises(AssertionError):
        assert_model_matches(AlertProvider, schema["openAPIV3Schema"], "")


# --- structural schemas ---------------------------------------------------------------------------


def structural_violations(node: Node, path: str) -> list[str]:
    """Kubernetes' structural-schema rules that a generator could break."""
    found: list[str] = []
    untyped_ok = node.get("x-kubernetes-int-or-string") or node.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "type" not in node and not untyped_ok:
        found.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        found.append(f"{path}: properties and additionalProperties together")
    for keyword in ("oneOf", "anyOf", "allOf", "not"):
        branches = node.get(keyword, [])
        for branch in branches if isinstance(branches, list) else [branches]:
            if set(branch) - {"required", "not", "anyOf"}:
                found.append(f"{path}.{keyword}: only required/not/anyOf allowed in branches")
    for name, child in node.get("properties", {}).items():
        found.extend(structural_violations(child, f"{path}.{name}"))
    if "items" in node:
        found.extend(structural_violations(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        found.extend(structural_violations(node["additionalProperties"], f"{path}{{}}"))
    return found


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_crd_schemas_are_structural(kind: str) -> None:
    for version in documents_by_kind()[kind]["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert structural_violations(schema, kind) == []
        assert schema["properties"]["metadata"] == {"type": "object"}


def test_the_structural_check_finds_an_untyped_node() -> None:
    assert structural_violations({"type": "object", "properties": {"a": {}}}, "x") == [
        "x.a: no type"
    ]


# --- Flagger's CRD shape --------------------------------------------------------------------------


def resolve(schema: Node, json_path: str) -> Node:
    node = schema
    # A filter on a list (`[?(@.type=="Valid")]`): the field after it is on the items.
    for part in re.sub(r"\[\?\(.*?\)\]", "[*]", json_path).strip(".").split("."):
        name, _, items = part.partition("[*]")
        node = node["properties"][name]
        if items == "" and part.endswith("[*]"):
            node = node["items"]
    return node


@pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
def test_crds_carry_flaggers_names_categories_status_and_keep_annotation(kind: str) -> None:
    document = documents_by_kind()[kind]
    assert document["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    names = document["spec"]["names"]
    assert names["listKind"] == f"{kind}List"
    assert names["singular"] == kind.lower()
    assert names["categories"] == ["all"]
    assert document["spec"]["scope"] == "Namespaced"
    assert document["metadata"]["name"] == f"{names['plural']}.flagger.app"
    for version in document["spec"]["versions"]:
        assert version["subresources"] == {"status": {}}
        schema = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            resolve(schema, column["jsonPath"])


def test_canary_printer_columns_are_flaggers_and_the_refusal_reason() -> None:
    columns = documents_by_kind()["Canary"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("Status", ".status.phase", 0),
        ("Weight", ".status.canaryWeight", 0),
        ("Refused", '.status.conditions[?(@.type=="Valid")].reason', 0),
        ("Suspended", ".spec.suspend", 1),
        ("FailedChecks", ".status.failedChecks", 1),
        ("Interval", ".spec.analysis.interval", 1),
        ("Mirror", ".spec.analysis.mirror", 1),
        ("StepWeight", ".spec.analysis.stepWeight", 1),
        ("StepWeights", ".spec.analysis.stepWeights", 1),
        ("MaxWeight", ".spec.analysis.maxWeight", 1),
        ("LastTransitionTime", ".status.lastTransitionTime", 0),
    ]


def test_canary_serves_v1beta1_as_storage_and_v1alpha3_with_canary_analysis() -> None:
    spec = documents_by_kind()["Canary"]["spec"]
    assert spec["conversion"] == {"strategy": "None"}
    storage, legacy = spec["versions"]
    assert (storage["name"], storage["served"], storage["storage"]) == ("v1beta1", True, True)
    assert (legacy["name"], legacy["served"], legacy["storage"]) == ("v1alpha3", True, False)
    assert legacy["deprecated"] is True
    legacy_spec = legacy["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "canaryAnalysis" in legacy_spec
    assert legacy["schema"] == storage["schema"]


def test_schema_keeps_flaggers_constraints() -> None:
    schema = documents_by_kind()["Canary"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["targetRef"]
    assert spec["properties"]["provider"]["enum"][0] == "apisix"
    analysis = spec["properties"]["analysis"]
    assert analysis["oneOf"] == [
        {"required": ["interval", "threshold", "iterations"]},
        {"required": ["interval", "threshold", "stepWeight"]},
        {"required": ["interval", "threshold", "stepWeights"]},
    ]
    assert analysis["properties"]["interval"]["pattern"] == "^[0-9]+(m|s)"
    affinity = analysis["properties"]["sessionAffinity"]
    assert affinity["properties"]["maxAge"]["default"] == 86400
    assert affinity["required"] == ["cookieName"]
    service = spec["properties"]["service"]
    assert service["properties"]["targetPort"] == {
        "description": "Container target port name",
        "x-kubernetes-int-or-string": True,
    }
    gateway_refs = service["properties"]["gatewayRefs"]
    assert gateway_refs["maxItems"] == 32
    assert gateway_refs["items"]["properties"]["group"]["default"] == "gateway.networking.k8s.io"
    assert service["properties"]["trafficPolicy"]["x-kubernetes-preserve-unknown-fields"] is True
    alert_spec = documents_by_kind()["AlertProvider"]["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]["properties"]["spec"]
    assert alert_spec["oneOf"] == [
        {"required": ["type", "address"]},
        {"required": ["type", "secretRef"]},
    ]


def test_render_all_is_a_multi_document_stream_of_the_three_crds() -> None:
    documents = list(yaml.safe_load_all(crds.render_all()))
    assert [doc["metadata"]["name"] for doc in documents] == [
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
        "alertproviders.flagger.app",
    ]
