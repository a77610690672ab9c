"""Decoded documents into models: kinds, served versions, v1alpha3 conversion, metadata."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar, cast, get_args

from pydantic import BaseModel, ValidationError

from coalmine.api import naming
from coalmine.api.models import (
    AlertProvider,
    Canary,
    CanaryAlert,
    CanaryMetric,
    CanaryWebhook,
    MetricTemplate,
    Model,
)
from coalmine.api.validation.canary import validate_canary
from coalmine.api.validation.problems import (
    FlaggerObject,
    Inspection,
    ManifestError,
    Problem,
    key_path,
    show,
)
from coalmine.api.validation.pydantic_errors import (
    options_of,
    suggest_field,
    translate_validation_error,
)
from coalmine.api.validation.templates import validate_alert_provider, validate_metric_template

_M = TypeVar("_M", bound=Model)

FLAGGER_KINDS: tuple[str, ...] = (
    naming.CANARY_KIND,
    naming.METRIC_TEMPLATE_KIND,
    naming.ALERT_PROVIDER_KIND,
)
_MODELS: dict[str, type[Model]] = {
    naming.CANARY_KIND: Canary,
    naming.METRIC_TEMPLATE_KIND: MetricTemplate,
    naming.ALERT_PROVIDER_KIND: AlertProvider,
}
_SERVED_VERSIONS: dict[str, tuple[str, ...]] = {
    naming.CANARY_KIND: (naming.VERSION, naming.LEGACY_VERSION),
    naming.METRIC_TEMPLATE_KIND: (naming.VERSION,),
    naming.ALERT_PROVIDER_KIND: (naming.VERSION,),
}


# --- entry points -------------------------------------------------------------------------------


def inspect_object(
    doc: object,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> Inspection:
    """Every problem of one decoded YAML/JSON document; `kind` is None for objects that are not ours.

    `mesh_provider` is the controller's `--mesh-provider` (used for canaries without
    `spec.provider`); when None, provider-specific rules only apply to canaries that name one.
    """
    if doc is None:
        return Inspection(kind=None, obj=None)
    if not isinstance(doc, Mapping):
        return Inspection(
            kind=None,
            obj=None,
            problems=(Problem("document", f"must be an object, got {show(doc)}"),),
        )
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    group, _, version = api_version.partition("/") if isinstance(api_version, str) else ("", "", "")
    if kind not in FLAGGER_KINDS:
        if group == naming.GROUP:
            expected = ", ".join(FLAGGER_KINDS)
            return Inspection(
                kind=str(kind),
                obj=None,
                problems=(
                    Problem(
                        "kind",
                        f"must be one of {expected} for {naming.GROUP}, got {show(kind)}"
                        + _did_you_mean(kind, list(FLAGGER_KINDS)),
                    ),
                ),
            )
        return Inspection(kind=None, obj=None)
    kind = cast(str, kind)
    if not isinstance(api_version, str):
        return Inspection(kind=kind, obj=None, problems=(Problem("apiVersion", "required"),))
    if group != naming.GROUP:
        # A Canary of another project (e.g. a different CRD group): not ours to judge.
        return Inspection(kind=None, obj=None)
    if version not in _SERVED_VERSIONS[kind]:
        return Inspection(
            kind=kind,
            obj=None,
            problems=(
                Problem(
                    "apiVersion",
                    f"{api_version} is not served for {kind}; use {naming.API_VERSION}",
                ),
            ),
        )

    problems: list[Problem] = []
    data = dict(doc)
    data["apiVersion"] = naming.API_VERSION
    renamed_analysis = False
    if kind == naming.CANARY_KIND:
        data, renamed_analysis = _convert_canary_analysis(data, version, problems)

    model_class = _MODELS[kind]
    obj: Model | None
    try:
        obj = model_class.model_validate(data)
    except ValidationError as exc:
        problems.extend(translate_validation_error(exc, model_class))
        obj = None

    problems.extend(check_metadata(doc))
    if obj is not None:
        problems.extend(empty_name_problems(obj))
    if isinstance(obj, Canary):
        problems.extend(
            validate_canary(
                obj, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
            )
        )
    elif isinstance(obj, MetricTemplate):
        problems.extend(validate_metric_template(obj))
    elif isinstance(obj, AlertProvider):
        problems.extend(validate_alert_provider(obj))

    if renamed_analysis:
        problems = [_rename_analysis_path(problem) for problem in problems]
    has_errors = any(problem.severity == "error" for problem in problems)
    result = None if has_errors else cast(FlaggerObject | None, obj)
    return Inspection(kind=kind, obj=result, problems=tuple(problems))


def _did_you_mean(value: object, candidates: list[str]) -> str:
    suggestion = suggest_field(value, candidates) if isinstance(value, str) else None
    return f'; did you mean "{suggestion}"?' if suggestion else ""


def parse_object(
    doc: object,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> FlaggerObject | None:
    """The Canary, MetricTemplate or AlertProvider in `doc`; None for other kinds.

    Raises ManifestError when the object has an error-level problem.
    """
    inspection = inspect_object(
        doc, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
    )
    if inspection.errors:
        raise ManifestError(inspection.problems, subject=_subject(doc))
    return inspection.obj


def parse_canary(
    doc: Mapping[str, Any],
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> Canary:
    """A Canary (v1beta1, or v1alpha3 converted to v1beta1), or ManifestError."""
    return _parse_kind(
        doc,
        Canary,
        no_cross_namespace_refs=no_cross_namespace_refs,
        mesh_provider=mesh_provider,
    )


def parse_metric_template(doc: Mapping[str, Any]) -> MetricTemplate:
    """A MetricTemplate, or ManifestError."""
    return _parse_kind(doc, MetricTemplate)


def parse_alert_provider(doc: Mapping[str, Any]) -> AlertProvider:
    """An AlertProvider, or ManifestError."""
    return _parse_kind(doc, AlertProvider)


def _parse_kind(
    doc: Mapping[str, Any],
    model_class: type[_M],
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> _M:
    expected_kind = cast(str, model_class.model_fields["kind"].default)
    if not isinstance(doc, Mapping):
        raise ManifestError([Problem("document", f"must be an object, got {show(doc)}")])
    data = dict(doc)
    data.setdefault("apiVersion", naming.API_VERSION)
    data.setdefault("kind", expected_kind)
    if data["kind"] != expected_kind:
        raise ManifestError(
            [Problem("kind", f"must be {expected_kind}, got {show(data['kind'])}")],
            subject=_subject(doc),
        )
    inspection = inspect_object(
        data, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
    )
    if inspection.errors or inspection.obj is None:
        problems = inspection.problems or (
            Problem("apiVersion", f"must be {naming.API_VERSION}, got {show(data['apiVersion'])}"),
        )
        raise ManifestError(problems, subject=_subject(doc))
    return cast(_M, inspection.obj)


def _subject(doc: object) -> str:
    if not isinstance(doc, Mapping):
        return "manifest"
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "object"
    metadata = doc.get("metadata")
    name = namespace = None
    if isinstance(metadata, Mapping):
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
        namespace = (
            metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None
        )
    if name and namespace:
        return f"{kind} {namespace}/{name}"
    if name:
        return f"{kind} {name}"
    return str(kind)


# --- v1alpha3 -----------------------------------------------------------------------------------


def _convert_canary_analysis(
    data: dict[str, Any], version: str, problems: list[Problem]
) -> tuple[dict[str, Any], bool]:
    """Moves the v1alpha3 `canaryAnalysis` to `analysis`, the way Flagger falls back to it.

    Returns the converted document and whether problem paths must name `canaryAnalysis` again.
    """
    spec = data.get("spec")
    if not isinstance(spec, Mapping) or "canaryAnalysis" not in spec:
        return data, False
    spec = dict(spec)
    legacy = spec.pop("canaryAnalysis")
    data["spec"] = spec
    if "analysis" in spec:
        problems.append(
            Problem(
                "spec.canaryAnalysis",
                "ignored because spec.analysis is set (canaryAnalysis is the v1alpha3 name)",
                "warning",
            )
        )
        return data, False
    spec["analysis"] = legacy
    if version != naming.LEGACY_VERSION:
        problems.append(
            Problem(
                "spec.canaryAnalysis",
                "deprecated name of spec.analysis (flagger.app/v1alpha3); read as spec.analysis",
                "warning",
            )
        )
    return data, True


def _rename_analysis_path(problem: Problem) -> Problem:
    if problem.path == "spec.analysis" or problem.path.startswith(
        ("spec.analysis.", "spec.analysis[")
    ):
        path = "spec.canaryAnalysis" + problem.path[len("spec.analysis") :]
        return Problem(path, problem.reason, problem.severity)
    return problem


# --- rules for every kind -------------------------------------------------------------------------


def check_metadata(doc: Mapping[Any, Any]) -> list[Problem]:
    metadata = doc.get("metadata")
    if metadata is None:
        return [Problem("metadata.name", "required")]
    if not isinstance(metadata, Mapping):
        return []  # reported by the model as "must be an object"
    if not metadata.get("name") and not metadata.get("generateName"):
        return [Problem("metadata.name", "required")]
    return []


# Named items of a list: an empty name is odd but works (Flagger keys events by it).
_LIST_ITEMS = (CanaryMetric, CanaryWebhook, CanaryAlert)


@functools.cache
def _name_plan(model_class: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """The fields worth a look: (field, wire name, is a required `name`), others may hold models."""
    plan: list[tuple[str, str, bool]] = []
    for field_name, info in model_class.model_fields.items():
        wire = info.alias or field_name
        if field_name == "name" and info.is_required():
            plan.append((field_name, wire, True))
        elif _may_hold_models(info.annotation):
            plan.append((field_name, wire, False))
    return tuple(plan)


def _may_hold_models(annotation: Any) -> bool:
    for option in options_of(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return True
        if any(_may_hold_models(arg) for arg in get_args(option)):
            return True
    return False


def empty_name_problems(model: BaseModel, path: str = "") -> list[Problem]:
    """Every required `name` left empty: a reference to nothing (`targetRef`, `templateRef`, ...).

    Flagger's schema accepts `name: ""`; the object it names is then never found.
    """
    problems: list[Problem] = []
    for field_name, wire, is_name in _name_plan(type(model)):
        value = getattr(model, field_name)
        if value is None:
            continue
        field_path = f"{path}.{wire}" if path else wire
        if is_name:
            if value == "":
                problems.append(_empty_name(model, field_path))
        elif isinstance(value, BaseModel):
            problems.extend(empty_name_problems(value, field_path))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems.extend(empty_name_problems(item, f"{field_path}[{index}]"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    problems.extend(empty_name_problems(item, f"{field_path}{key_path(key)}"))
    return problems


def _empty_name(model: BaseModel, path: str) -> Problem:
    if isinstance(model, _LIST_ITEMS):
        return Problem(path, "should not be empty", "warning")
    return Problem(path, "must not be empty: it names no object")
