"""Whatever document comes in, the parser answers with a model, None, or ManifestError."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from coalmine.api.manifests import iter_documents
from coalmine.api.models import AlertProvider, Canary, MetricTemplate
from coalmine.api.validation import ManifestError, parse_object
from coalmine.cli.check import check_text

EXAMPLES = Path(__file__).parent / "flagger_examples"


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]], names: set[str]) -> None:
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for candidate in _nested_models(info.annotation):
            _field_names(candidate, seen, names)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_nested_models(arg))
    return found


FIELD_NAMES: set[str] = set()
for _model in (Canary, MetricTemplate, AlertProvider):
    _field_names(_model, set(), FIELD_NAMES)
KEYS = st.sampled_from(sorted(FIELD_NAMES)) | st.text(max_size=8)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1m", "10s", "istio", "kubernetes", "Service", "apps/v1", "http://x/"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)
TOP_LEVEL = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(
            ["flagger.app/v1beta1", "flagger.app/v1alpha3", "flagger.app/v1", "v1"]
        )
        | JSON,
        "kind": st.sampled_from(["Canary", "MetricTemplate", "AlertProvider", "Service"]) | JSON,
    },
    optional={"metadata": JSON, "spec": JSON, "status": JSON},
)

VALID_DOCUMENTS = [
    document
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for document in iter_documents(path.read_text())
    if isinstance(document, dict) and str(document.get("apiVersion", "")).startswith("flagger.app/")
]


def assert_parser_contract(document: object) -> None:
    error: ManifestError | None = None
    try:
        result = parse_object(document)
    except ManifestError as exc:
        error = exc
        result = None
    if error is None:
        assert result is None or isinstance(result, Canary | MetricTemplate | AlertProvider)
        return
    assert any(problem.severity == "error" for problem in error.problems)
    for problem in error.problems:
        assert problem.path
        assert problem.reason
        assert "Input should" not in problem.reason  # pydantic's wording never leaks
    assert str(error).count("\n") == len(error.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_values_only_give_a_model_none_or_manifest_error(document: object) -> None:
    assert_parser_contract(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOP_LEVEL)
@example({"apiVersion": "flagger.app/v1beta1", "kind": "\n"})  # a kind that is a line break
def test_arbitrary_flagger_shaped_objects_only_give_a_model_none_or_manifest_error(
    document: dict[str, Any],
) -> None:
    assert_parser_contract(document)


def _containers(node: Any, found: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> object:
    document = copy.deepcopy(draw(st.sampled_from(VALID_DOCUMENTS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        containers = _containers(document, [])
        target = draw(st.sampled_from(containers))
        action = draw(st.sampled_from(["drop", "replace", "extra"]))
        if isinstance(target, dict):
            if action == "extra" or not target:
                target[draw(KEYS)] = draw(JSON)
            else:
                key = draw(st.sampled_from(sorted(target, key=str)))
                if action == "drop":
                    del target[key]
                else:
                    target[key] = draw(JSON)
        elif target:
            index = draw(st.integers(min_value=0, max_value=len(target) - 1))
            if action == "drop":
                del target[index]
            else:
                target[index] = draw(JSON)
        else:
            target.append(draw(JSON))
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_valid_manifests_only_give_a_model_none_or_manifest_error(document: object) -> None:
    assert_parser_contract(document)


SMALL_JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | SMALL_JSON.map(lambda value: yaml.safe_dump(value)))
def test_check_never_crashes_on_any_text(text: str) -> None:
    out = io.StringIO()
    failed = check_text(text, "input.yaml", out)
    assert isinstance(failed, bool)
    for line in out.getvalue().splitlines():
        assert line.startswith("input.yaml:")


def test_the_valid_examples_are_many_and_all_parse() -> None:
    assert len(VALID_DOCUMENTS) > 40
    for document in VALID_DOCUMENTS:
        assert parse_object(document) is not None


def test_the_wire_form_of_every_parsed_example_parses_back_to_the_same_model() -> None:
    for document in VALID_DOCUMENTS:
        model = parse_object(document)
        assert model is not None
        assert parse_object(model.to_wire()) == model
