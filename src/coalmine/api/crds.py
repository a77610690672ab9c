"""The CustomResourceDefinitions, generated from the models so the two cannot drift.

`python -m coalmine.api.crds --write` rewrites `deploy/crds/`; `--check` fails when the committed
files differ from what the models say (CI and a test run it). `coalmine crds` prints the same text.

The schemas are structural: every node has a type, except where a model is open (`OpenModel`,
`dict[str, Any]`: `x-kubernetes-preserve-unknown-fields`) or a field is `int | str`
(`x-kubernetes-int-or-string`). Both served Canary versions share one schema: with conversion
strategy `None` the API server only relabels `apiVersion`, so a v1alpha3 object must also be a
valid v1beta1 object (hence `canaryAnalysis` is in both; the controller reads it when `analysis`
is absent).
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from coalmine.api import naming
from coalmine.api.models import AlertProvider, Canary, MetricTemplate, Model, ObjectMeta

DEFAULT_DIRECTORY = Path("deploy/crds")
# The Helm chart ships the same CRDs (without the kustomization); `--write` keeps both in step.
CHART_CRD_DIRECTORY = Path("deploy/chart/coalmine/crds")
HEADER = (
    "# Generated from coalmine.api.models by `python -m coalmine.api.crds --write`; do not edit.\n"
)

_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object."
)
_KIND_DESCRIPTION = "Kind is a string value representing the REST resource this object represents."

CANARY_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Weight", "type": "string", "jsonPath": ".status.canaryWeight"},
    # coalmine: why the controller refuses the canary (its `Valid=False` condition's reason).
    {
        "name": "Refused",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Valid")].reason',
        "description": "Why the controller does not run this canary (coalmine status NAME says more)",
    },
    {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend", "priority": 1},
    {"name": "FailedChecks", "type": "string", "jsonPath": ".status.failedChecks", "priority": 1},
    {"name": "Interval", "type": "string", "jsonPath": ".spec.analysis.interval", "priority": 1},
    {"name": "Mirror", "type": "boolean", "jsonPath": ".spec.analysis.mirror", "priority": 1},
    {
        "name": "StepWeight",
        "type": "string",
        "jsonPath": ".spec.analysis.stepWeight",
        "priority": 1,
    },
    {
        "name": "StepWeights",
        "type": "string",
        "jsonPath": ".spec.analysis.stepWeights",
        "priority": 1,
    },
    {"name": "MaxWeight", "type": "string", "jsonPath": ".spec.analysis.maxWeight", "priority": 1},
    {"name": "LastTransitionTime", "type": "string", "jsonPath": ".status.lastTransitionTime"},
]


def _unwrap_optional(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return [arg for arg in get_args(annotation) if arg is not type(None)]
    return [annotation]


def _docstring(model: type[BaseModel]) -> str | None:
    doc = model.__dict__.get("__doc__")
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split())


def schema_for_model(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of one model class (properties, required, open or closed)."""
    if issubclass(model, ObjectMeta):
        return {"type": "object"}
    schema: dict[str, Any] = {"type": "object"}
    description = _docstring(model)
    if description:
        schema["description"] = description
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        wire_name = info.alias or name
        properties[wire_name] = schema_for_field(info)
        if info.is_required():
            required.append(wire_name)
    if required:
        schema["required"] = required
    schema["properties"] = properties
    if model.model_config.get("extra") == "allow":
        schema["x-kubernetes-preserve-unknown-fields"] = True
    extra = model.model_config.get("json_schema_extra")
    crd_extra = extra.get("crd") if isinstance(extra, dict) else None
    if isinstance(crd_extra, dict):
        schema.update(crd_extra)
    return schema


def schema_for_field(info: FieldInfo) -> dict[str, Any]:
    schema = schema_for_annotation(info.annotation)
    nested_description = schema.pop("description", None)
    description = info.description or nested_description
    for constraint in info.metadata:
        _apply_constraint(schema, constraint)
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "crd_default" in extra:
        schema["default"] = extra["crd_default"]
    return {"description": description, **schema} if description else schema


def _apply_constraint(schema: dict[str, Any], constraint: Any) -> None:
    """pydantic's field constraints (annotated-types objects) in their OpenAPI form."""
    is_array = schema.get("type") == "array"
    kind = type(constraint).__name__
    if kind == "Ge":
        schema["minimum"] = constraint.ge
    elif kind == "Le":
        schema["maximum"] = constraint.le
    elif kind == "MinLen":
        schema["minItems" if is_array else "minLength"] = constraint.min_length
    elif kind == "MaxLen":
        schema["maxItems" if is_array else "maxLength"] = constraint.max_length
    elif getattr(constraint, "pattern", None) is not None:
        schema["pattern"] = constraint.pattern
    else:
        raise TypeError(f"no CRD form for the constraint {constraint!r}")


def schema_for_annotation(annotation: Any) -> dict[str, Any]:
    """JSON schema (Kubernetes flavour) of a field type used by the models."""
    members = _unwrap_optional(annotation)
    if len(members) > 1:
        if set(members) == {int, str}:
            return {"x-kubernetes-int-or-string": True}
        raise TypeError(f"no CRD form for the union {annotation!r}")
    annotation = members[0]
    origin = get_origin(annotation)
    if annotation is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if origin is Literal:
        values = list(get_args(annotation))
        if not all(isinstance(value, str) for value in values):
            raise TypeError(f"only string literals have a CRD form: {annotation!r}")
        return {"type": "string", "enum": values}
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if origin is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": schema_for_annotation(item)}
    if origin is dict:
        key, value = get_args(annotation)
        if key is not str:
            raise TypeError(f"map keys must be strings: {annotation!r}")
        if value is Any:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {"type": "object", "additionalProperties": schema_for_annotation(value)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return schema_for_model(annotation)
    raise TypeError(f"no CRD form for {annotation!r}")


def object_schema(model: type[Model]) -> dict[str, Any]:
    """The openAPIV3Schema of a top-level kind (apiVersion/kind/metadata as Kubernetes has them)."""
    schema = schema_for_model(model)
    properties = schema["properties"]
    properties["apiVersion"] = {"description": _API_VERSION_DESCRIPTION, "type": "string"}
    properties["kind"] = {"description": _KIND_DESCRIPTION, "type": "string"}
    properties["metadata"] = {"type": "object"}
    return schema


def _crd(
    model: type[Model],
    *,
    plural: str,
    printer_columns: list[dict[str, Any]],
    legacy_version: bool = False,
) -> dict[str, Any]:
    kind = str(model.model_fields["kind"].default)
    schema = object_schema(model)
    versions: list[dict[str, Any]] = [
        {
            "name": naming.VERSION,
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": printer_columns,
            "schema": {"openAPIV3Schema": schema},
        }
    ]
    if legacy_version:
        versions.append(
            {
                "name": naming.LEGACY_VERSION,
                "served": True,
                "storage": False,
                "deprecated": True,
                "deprecationWarning": (
                    f"{naming.GROUP}/{naming.LEGACY_VERSION} {kind} is deprecated; "
                    f"use {naming.API_VERSION} with spec.analysis"
                ),
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns,
                "schema": {"openAPIV3Schema": schema},
            }
        )
    spec: dict[str, Any] = {
        "group": naming.GROUP,
        "names": {
            "kind": kind,
            "listKind": f"{kind}List",
            "plural": plural,
            "singular": kind.lower(),
            "categories": ["all"],
        },
        "scope": "Namespaced",
        "versions": versions,
    }
    if legacy_version:
        spec["conversion"] = {"strategy": "None"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{naming.GROUP}",
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": spec,
    }


def crd_documents() -> list[dict[str, Any]]:
    """The three CRDs as API objects (Canary, MetricTemplate, AlertProvider)."""
    return [
        _crd(
            Canary,
            plural="canaries",
            printer_columns=CANARY_PRINTER_COLUMNS,
            legacy_version=True,
        ),
        _crd(
            MetricTemplate,
            plural="metrictemplates",
            printer_columns=[
                {"name": "Provider", "type": "string", "jsonPath": ".spec.provider.type"}
            ],
        ),
        _crd(
            AlertProvider,
            plural="alertproviders",
            printer_columns=[{"name": "Type", "type": "string", "jsonPath": ".spec.type"}],
        ),
    ]


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared sub-trees out in full: anchors would confuse readers and some tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(document: Any) -> str:
    return yaml.dump(
        document, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=100
    )


KUSTOMIZATION = "Kustomization"


def rendered_files() -> dict[str, str]:
    """File name → content of `deploy/crds/` (one CRD per file, plus a kustomization).

    The kustomization is named `Kustomization` (a name kustomize accepts), not
    `kustomization.yaml`: `kubectl apply -f deploy/crds` reads every `*.yaml` and would fail on it.
    """
    files: dict[str, str] = {}
    for document in crd_documents():
        plural = document["spec"]["names"]["plural"]
        files[f"{plural}.yaml"] = HEADER + _dump(document)
    files[KUSTOMIZATION] = HEADER + _dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": list(files),
        }
    )
    return files


def render_all() -> str:
    """All CRDs as one multi-document YAML stream (what `coalmine crds` prints)."""
    return HEADER + "---\n".join(_dump(document) for document in crd_documents())


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered_files().items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_files(directory: Path) -> list[str]:
    """Names of files in `directory` that differ from (or are missing against) the generator."""
    stale = []
    for name, content in rendered_files().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coalmine.api.crds", description="Generate the CRDs from the API models."
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, help="output directory")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the files in --dir")
    action.add_argument("--check", action="store_true", help="exit 1 when --dir is out of date")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.dir):
            print(path)
        if args.dir == DEFAULT_DIRECTORY and CHART_CRD_DIRECTORY.is_dir():
            for path in write(CHART_CRD_DIRECTORY):
                if path.name == KUSTOMIZATION:
                    path.unlink()
                else:
                    print(path)
        return 0
    if args.check:
        stale = stale_files(args.dir)
        for name in stale:
            print(f"{args.dir / name} is out of date; run python -m coalmine.api.crds --write")
        return 1 if stale else 0
    sys.stdout.write(render_all())
    return 0


if __name__ == "__main__":
    sys.exit(main())
