"""CustomResourceDefinitions: which resource types a CRD serves, its defaults and its status.

A CRD is accepted and established at once (there is no naming controller delay). Differences from
a real server: no conversion webhooks (all versions share storage and differ only in apiVersion),
no check that names clash with another CRD, and `x-kubernetes-validations` (CEL rules) are not
evaluated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from coalmine.devcluster.errors import Cause, invalid
from coalmine.devcluster.resources import PrinterColumn, ResourceType, ScalePaths

Obj = dict[str, Any]

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first; others last."""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -int(major), -int(minor or 0), version)


def crd_resource_types(crd: Obj) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    types: list[ResourceType] = []
    versions = sorted(
        (v for v in spec.get("versions") or [] if v.get("served", True)),
        key=lambda v: version_priority(v["name"]),
    )
    for version in versions:
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        columns = tuple(
            PrinterColumn(
                name=column["name"],
                type=column.get("type", "string"),
                json_path=column.get("jsonPath", ""),
                description=column.get("description", ""),
                priority=int(column.get("priority", 0)),
                format=column.get("format", ""),
            )
            for column in version.get("additionalPrinterColumns") or []
        )
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in subresources,
                scale=(
                    ScalePaths(
                        spec_replicas=scale.get("specReplicasPath", ".spec.replicas"),
                        status_replicas=scale.get("statusReplicasPath", ".status.replicas"),
                        label_selector=scale.get("labelSelectorPath"),
                    )
                    if scale is not None
                    else None
                ),
                storage=f"{names['plural']}.{group}",
                builtin=False,
                schema=schema,
                preserve_unknown=schema is None
                or bool(schema.get("x-kubernetes-preserve-unknown-fields")),
                printer_columns=columns,
                crd_name=crd["metadata"]["name"],
            )
        )
    return types


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare_crd(crd: Obj, old: Obj | None) -> Obj:
    """Default and validate a CRD (422 on a wrong one) and set its accepted/established status."""
    name = crd.get("metadata", {}).get("name", "")
    spec = crd.get("spec")
    causes: list[Cause] = []
    if not isinstance(spec, dict):
        raise invalid(
            "CustomResourceDefinition", "apiextensions.k8s.io", name, [Cause.required("spec")]
        )
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    if not group:
        causes.append(Cause.required("spec.group"))
    if not names.get("plural"):
        causes.append(Cause.required("spec.names.plural"))
    if not names.get("kind"):
        causes.append(Cause.required("spec.names.kind"))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        causes.append(
            Cause.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            Cause.not_supported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"])
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            Cause.invalid(
                "spec.versions", [], "must have exactly one version marked as storage version"
            )
        )
        causes.append(
            Cause.invalid("status.storedVersions", [], "must have at least one stored version")
        )
    for index, version in enumerate(versions):
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(
                Cause.required(
                    f"spec.versions[{index}].schema.openAPIV3Schema",
                    "schemas are required",
                )
            )
    storage = [v.get("name") for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        causes.append(
            Cause.invalid(
                "spec.versions",
                [v.get("name") for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    spec.setdefault("conversion", {"strategy": "None"})
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    stored = list((old or {}).get("status", {}).get("storedVersions") or [])
    if storage[0] not in stored:
        stored.append(storage[0])
    timestamp = now()
    crd["status"] = {
        "acceptedNames": dict(names),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": timestamp,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": timestamp,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    }
    old_status = (old or {}).get("status")
    if old_status and old_status.get("conditions"):
        # keep transition times stable on updates that change nothing in the conditions
        crd["status"]["conditions"] = old_status["conditions"]
    return crd
