"""`kubectl get` tables (meta.k8s.io/v1 Table): the columns kubectl prints, computed server-side.

Built-in kinds get the familiar columns for the common ones (deployments, pods, services,
configmaps, namespaces, events, CRDs); other built-ins get Name and Age. Custom resources get
their CRD's `additionalPrinterColumns` (JSONPath subset: dotted fields, `[n]` and
`[?(@.field=="value")]` filters), or Name and Age.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coalmine.devcluster.resources import PrinterColumn, ResourceType

Obj = dict[str, Any]

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "CreationTimestamp")


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: `45s`, `3m20s`, `2h5m`, `3d4h`, `400d`."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - moment).total_seconds())


_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]|\[\?\(@\.([\w.]+)\s*==\s*[\"']([^\"']*)[\"']\)\]")


def json_path(obj: Any, path: str) -> Any:
    """Evaluate the JSONPath subset printer columns use; None when the path finds nothing."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    position = 0
    value = obj
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        position = match.end()
        key, index, filter_key, filter_value = match.groups()
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        elif index is not None:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        else:
            if not isinstance(value, list):
                return None
            value = next(
                (item for item in value if str(json_path(item, "." + filter_key)) == filter_value),
                None,
            )
        if value is None:
            return None
    return value


def _cell(column: PrinterColumn, obj: Obj) -> Any:
    value = json_path(obj, column.json_path)
    if column.type == "date":
        return age(value) if value is not None else "<unknown>"
    if value is None:
        return None
    if column.type == "integer" and isinstance(value, int | float):
        return int(value)
    if column.type == "number" and isinstance(value, int | float):
        return value
    if column.type == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value) if not isinstance(value, str) else value


Builtin = tuple[list[Obj], Callable[[Obj], list[Any]]]


def _col(name: str, kind: str = "string", priority: int = 0) -> Obj:
    return {"name": name, "type": kind, "format": "", "description": name, "priority": priority}


def _ports(svc: Obj) -> str:
    parts = []
    for port in svc.get("spec", {}).get("ports") or []:
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _external_ip(svc: Obj) -> str:
    spec = svc.get("spec", {})
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", ""))
    ingress = (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ingress]
    if ips:
        return ",".join(str(ip) for ip in ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _pod_ready(pod: Obj) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _meta_age(obj: Obj) -> str:
    return age(obj.get("metadata", {}).get("creationTimestamp"))


def _event_object(event: Obj) -> str:
    ref = event.get("involvedObject") or event.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


BUILTIN_COLUMNS: dict[tuple[str, str], Builtin] = {
    ("apps", "Deployment"): (
        [_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Age")],
        lambda o: [
            f"{o.get('status', {}).get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 0)}",
            o.get("status", {}).get("updatedReplicas", 0),
            o.get("status", {}).get("availableReplicas", 0),
            _meta_age(o),
        ],
    ),
    ("", "Pod"): (
        [_col("Ready"), _col("Status"), _col("Restarts", "integer"), _col("Age")],
        lambda o: [
            _pod_ready(o),
            o.get("status", {}).get("phase", "Unknown"),
            sum(
                s.get("restartCount", 0) for s in o.get("status", {}).get("containerStatuses") or []
            ),
            _meta_age(o),
        ],
    ),
    ("", "Service"): (
        [_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _col("Age")],
        lambda o: [
            o.get("spec", {}).get("type", "ClusterIP"),
            o.get("spec", {}).get("clusterIP") or "<none>",
            _external_ip(o),
            _ports(o),
            _meta_age(o),
        ],
    ),
    ("", "ConfigMap"): (
        [_col("Data", "integer"), _col("Age")],
        lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}), _meta_age(o)],
    ),
    ("", "Namespace"): (
        [_col("Status"), _col("Age")],
        lambda o: [o.get("status", {}).get("phase", "Active"), _meta_age(o)],
    ),
    ("", "Event"): (
        [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
        lambda o: [
            age(
                o.get("lastTimestamp")
                or o.get("eventTime")
                or o.get("metadata", {}).get("creationTimestamp")
            ),
            o.get("type", ""),
            o.get("reason", ""),
            _event_object(o),
            o.get("message", ""),
        ],
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        [_col("Created At")],
        lambda o: [o.get("metadata", {}).get("creationTimestamp", "")],
    ),
}


def table_columns(rt: ResourceType) -> tuple[list[Obj], Callable[[Obj], list[Any]]]:
    if not rt.builtin and rt.printer_columns:
        columns = list(rt.printer_columns)
        return (
            [
                {
                    "name": c.name,
                    "type": c.type,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                }
                for c in columns
            ],
            lambda o: [_cell(c, o) for c in columns],
        )
    builtin = BUILTIN_COLUMNS.get((rt.group, rt.kind))
    if builtin is not None:
        return builtin
    return [_col("Age")], lambda o: [_meta_age(o)]


def table(rt: ResourceType, objects: list[Obj], resource_version: str, include: str) -> Obj:
    """A Table of `objects`; `include` is the includeObject parameter (None/Metadata/Object)."""
    columns, cells = table_columns(rt)
    rows = []
    for obj in objects:
        row: Obj = {"cells": [obj.get("metadata", {}).get("name", ""), *cells(obj)]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [NAME_COLUMN, *columns],
        "rows": rows,
    }
