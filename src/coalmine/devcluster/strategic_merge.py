"""Strategic merge patch for built-in kinds, as the API server applies `kubectl apply/patch`.

Which lists merge (and by which key) is declared on Kubernetes' Go types with `patchStrategy` and
`patchMergeKey` tags; `_TYPES` below transcribes those tags for the types the built-in kinds we serve
are made of. A field not listed is a map (merged key by key) or an atomic list (replaced whole).

Directives follow apimachinery's `strategicpatch` package: `$patch: replace|delete` in maps,
`$patch: replace|delete` items in merging lists, `$deleteFromPrimitiveList/<field>`,
`$setElementOrder/<field>` and `$retainKeys`. A null deletes a key; nulls inside newly added
values are dropped (the server's IgnoreUnmatchedNulls).

Differences from the real server: fields unknown to the Go types are merged as maps/atomic lists
instead of being rejected; custom resources are not supported here (the server answers 415 for
them, see `SUPPORTED_KINDS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SUPPORTED_KINDS", "StrategicMergeError", "strategic_merge_patch"]


class StrategicMergeError(ValueError):
    """A malformed strategic merge patch; the message names the directive or field at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Field:
    """Patch metadata of one struct field: its type name, and for lists the merge strategy."""

    type: str | None = None
    merge_key: str | None = None
    merge: bool = False  # patchStrategy:"merge" on a list


def _merge_list(type_name: str | None, key: str | None) -> _Field:
    return _Field(type_name, key, True)


_META = _Field("ObjectMeta")
_CONDITIONS = _merge_list(None, "type")
_POD_TEMPLATE = _Field("PodTemplateSpec")

_TYPES: dict[str, dict[str, _Field]] = {
    "ObjectMeta": {
        "finalizers": _merge_list(None, None),
        "ownerReferences": _merge_list(None, "uid"),
    },
    "PodTemplateSpec": {"metadata": _META, "spec": _Field("PodSpec")},
    "PodSpec": {
        "volumes": _merge_list(None, "name"),
        "initContainers": _merge_list("Container", "name"),
        "containers": _merge_list("Container", "name"),
        "ephemeralContainers": _merge_list("Container", "name"),
        "imagePullSecrets": _merge_list(None, "name"),
        "hostAliases": _merge_list(None, "ip"),
        "topologySpreadConstraints": _merge_list(None, "topologyKey"),
        "resourceClaims": _merge_list(None, "name"),
        "schedulingGates": _merge_list(None, "name"),
    },
    "Container": {
        "ports": _merge_list(None, "containerPort"),
        "env": _merge_list(None, "name"),
        "volumeMounts": _merge_list(None, "mountPath"),
        "volumeDevices": _merge_list(None, "devicePath"),
    },
    "Pod": {"metadata": _META, "spec": _Field("PodSpec"), "status": _Field("PodStatus")},
    "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": _merge_list(None, "ip"),
        "hostIPs": _merge_list(None, "ip"),
        "resourceClaimStatuses": _merge_list(None, "name"),
    },
    "PodTemplate": {"metadata": _META, "template": _POD_TEMPLATE},
    "Deployment": {
        "metadata": _META,
        "spec": _Field("WorkloadSpec"),
        "status": _Field("WorkloadStatus"),
    },
    "WorkloadSpec": {"template": _POD_TEMPLATE},
    "WorkloadStatus": {"conditions": _CONDITIONS},
    "Job": {"metadata": _META, "spec": _Field("WorkloadSpec"), "status": _Field("WorkloadStatus")},
    "CronJob": {"metadata": _META, "spec": _Field("CronJobSpec")},
    "CronJobSpec": {"jobTemplate": _Field("JobTemplateSpec")},
    "JobTemplateSpec": {"metadata": _META, "spec": _Field("WorkloadSpec")},
    "Service": {
        "metadata": _META,
        "spec": _Field("ServiceSpec"),
        "status": _Field("ServiceStatus"),
    },
    "ServiceSpec": {"ports": _merge_list(None, "port")},
    "ServiceStatus": {"conditions": _CONDITIONS},
    "ServiceAccount": {"metadata": _META, "secrets": _merge_list(None, "name")},
    "Node": {"metadata": _META, "status": _Field("NodeStatus")},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": _merge_list(None, "type")},
    "Namespace": {"metadata": _META, "status": _Field("WorkloadStatus")},
    "HorizontalPodAutoscaler": {"metadata": _META, "status": _Field("WorkloadStatus")},
    "PodDisruptionBudget": {"metadata": _META, "status": _Field("WorkloadStatus")},
    "PersistentVolumeClaim": {"metadata": _META, "status": _Field("WorkloadStatus")},
    "ObjectOnly": {"metadata": _META},
}

_KIND_TYPES: dict[str, str] = {
    "Pod": "Pod",
    "PodTemplate": "PodTemplate",
    "Deployment": "Deployment",
    "DaemonSet": "Deployment",
    "ReplicaSet": "Deployment",
    "StatefulSet": "Deployment",
    "ReplicationController": "Deployment",
    "Job": "Job",
    "CronJob": "CronJob",
    "Service": "Service",
    "ServiceAccount": "ServiceAccount",
    "Node": "Node",
    "Namespace": "Namespace",
    "HorizontalPodAutoscaler": "HorizontalPodAutoscaler",
    "PodDisruptionBudget": "PodDisruptionBudget",
    "PersistentVolumeClaim": "PersistentVolumeClaim",
}
for _kind in (
    "ConfigMap",
    "Secret",
    "Endpoints",
    "EndpointSlice",
    "Event",
    "Lease",
    "Ingress",
    "IngressClass",
    "NetworkPolicy",
    "LimitRange",
    "ResourceQuota",
    "PersistentVolume",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "CustomResourceDefinition",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
):
    _KIND_TYPES.setdefault(_kind, "ObjectOnly")

SUPPORTED_KINDS: frozenset[str] = frozenset(_KIND_TYPES)
"""Kinds with Go patch metadata; the API server rejects strategic merge patches for others."""

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PREFIX = "$deleteFromPrimitiveList/"
_ORDER_PREFIX = "$setElementOrder/"


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, dict) else "{" + ", ".join(map(str, value)) + "}"


def strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], kind: str
) -> dict[str, Any]:
    """`original` with `patch` applied the way kube-apiserver applies a strategic merge patch."""
    if not isinstance(patch, dict):
        raise StrategicMergeError(
            f"strategic merge patch must be a JSON object, not {type(patch).__name__}"
        )
    type_name = _KIND_TYPES.get(kind, "ObjectOnly")
    return _merge_map(_copy(original) if isinstance(original, dict) else {}, patch, type_name, "")


def _fields(type_name: str | None) -> Mapping[str, _Field]:
    return _TYPES.get(type_name, {}) if type_name else {}


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], type_name: str | None, path: str
) -> dict[str, Any]:
    """Merge `patch` into `original` (which this function owns and may modify)."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            return {k: _strip(v) for k, v in patch.items() if k != _DIRECTIVE}
        if directive == "delete":
            return {}
        raise StrategicMergeError(
            f"{_at(path)}unknown patch type: {directive!r} in map: {_describe(patch)}"
        )
    fields = _fields(type_name)
    patch = dict(patch)

    if _RETAIN_KEYS in patch:
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise StrategicMergeError(
                f"{_at(path)}the value of $retainKeys must be a list of strings"
            )
        retained = set(retain)
        for key in patch:
            if not key.startswith("$") and patch[key] is not None and key not in retained:
                raise StrategicMergeError(
                    f"{_at(path)}$retainKeys must include every field of the patch, missing {key!r}"
                )
        for key in [k for k in original if k not in retained]:
            del original[key]

    for key in [k for k in patch if k.startswith(_DELETE_PREFIX)]:
        field_name = key[len(_DELETE_PREFIX) :]
        to_delete = patch.pop(key)
        if not isinstance(to_delete, list):
            raise StrategicMergeError(f"{_at(path)}{key} must be a list")
        current = original.get(field_name)
        if isinstance(current, list):
            doomed = [_hashable(v) for v in to_delete]
            original[field_name] = [v for v in current if _hashable(v) not in doomed]

    orders = {
        k[len(_ORDER_PREFIX) :]: patch.pop(k)
        for k in [k for k in patch if k.startswith(_ORDER_PREFIX)]
    }

    for key, patch_value in patch.items():
        if key.startswith("$"):
            raise StrategicMergeError(f"{_at(path)}unknown directive {key!r}")
        child_path = f"{path}.{key}" if path else key
        if patch_value is None:
            original.pop(key, None)
            continue
        field = fields.get(key, _Field())
        current = original.get(key)
        if isinstance(patch_value, dict):
            base = current if isinstance(current, dict) else {}
            merged = _merge_map(base, patch_value, field.type, child_path)
            original[key] = merged
        elif isinstance(patch_value, list):
            if field.merge:
                base_list = current if isinstance(current, list) else []
                original[key] = _merge_list_values(
                    base_list, patch_value, field, child_path, orders.get(key)
                )
            else:
                original[key] = [_strip(v) for v in patch_value]
        else:
            original[key] = patch_value

    for key, order in orders.items():
        if key in patch:
            continue
        child_path = f"{path}.{key}" if path else key
        current = original.get(key)
        if not isinstance(order, list):
            raise StrategicMergeError(f"{_at(child_path)}$setElementOrder must be a list")
        if isinstance(current, list):
            field = fields.get(key, _Field())
            original[key] = _apply_order(current, [], order, field.merge_key, child_path, current)
    return original


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _strip(value: Any) -> Any:
    """A value taken whole from the patch: nulls and directives have no meaning inside it."""
    if isinstance(value, dict):
        if value.get(_DIRECTIVE) in ("replace", "merge"):
            value = {k: v for k, v in value.items() if k != _DIRECTIVE}
        return {k: _strip(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("a", tuple(_hashable(v) for v in value))
    if isinstance(value, bool):
        return ("b", value)
    return value


def _merge_list_values(
    original: list[Any],
    patch: list[Any],
    field: _Field,
    path: str,
    order: Any,
) -> list[Any]:
    key = field.merge_key
    if not patch and order is None:
        return original
    maps = [v for v in [*original, *patch] if isinstance(v, dict)]
    if maps and len(maps) != len(original) + len(patch):
        raise StrategicMergeError(f"{_at(path)}list elements must all be objects or all be scalars")
    if not maps:
        merged = list(original)
        seen = {_hashable(v) for v in merged}
        for value in patch:
            if _hashable(value) not in seen:
                merged.append(value)
                seen.add(_hashable(value))
        return _apply_order(merged, patch, order, None, path, original)
    if key is None:
        raise StrategicMergeError(f"{_at(path)}cannot merge lists without merge key")

    items = list(original)
    plain: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            if key not in item:
                raise StrategicMergeError(
                    f"{_at(path)}map: {_describe(item)} does not contain declared merge key: {key}"
                )
            items = [i for i in items if not (isinstance(i, dict) and i.get(key) == item[key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StrategicMergeError(
                f"{_at(path)}merging lists cannot yet be specified in the patch"
            )
        else:
            raise StrategicMergeError(f"{_at(path)}unknown patch type: {directive!r} in list item")
    if replace:
        return [_strip(v) for v in plain]

    for item in plain:
        if key not in item:
            raise StrategicMergeError(
                f"{_at(path)}map: {_describe(item)} does not contain declared merge key: {key}"
            )
        for index, existing in enumerate(items):
            if isinstance(existing, dict) and existing.get(key) == item[key]:
                items[index] = _merge_map(
                    _copy(existing), item, field.type, f"{path}[{key}={item[key]}]"
                )
                break
        else:
            items.append(_merge_map({}, item, field.type, f"{path}[{key}={item[key]}]"))
    return _apply_order(items, plain, order, key, path, original)


def _apply_order(
    merged: list[Any],
    patch: list[Any],
    order: Any,
    key: str | None,
    path: str,
    original: list[Any],
) -> list[Any]:
    """Order as apimachinery does: patch items in patch (or $setElementOrder) order, the items only
    the server has in their old relative order, interleaved by their positions in the old list.
    An item new to the list goes before the server's remaining items (kubectl's documented
    example: a patched-in container comes first)."""
    wanted = order if isinstance(order, list) else patch
    if order is not None and not isinstance(order, list):
        raise StrategicMergeError(f"{_at(path)}$setElementOrder must be a list")

    def identity(value: Any) -> Any:
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise StrategicMergeError(
                    f"{_at(path)}map: {_describe(value)} does not contain declared merge key: {key}"
                )
            return _hashable(value[key])
        return _hashable(value)

    wanted_index: dict[Any, int] = {}
    for position, value in enumerate(wanted):
        wanted_index.setdefault(identity(value), position)
    if not wanted_index:
        return merged
    server_index = {identity(v): i for i, v in reversed(list(enumerate(original)))}
    from_patch = sorted(
        (v for v in merged if identity(v) in wanted_index), key=lambda v: wanted_index[identity(v)]
    )
    server_only = [v for v in merged if identity(v) not in wanted_index]

    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(from_patch):
        if i >= len(server_only):
            result.append(from_patch[j])
            j += 1
        elif j >= len(from_patch):
            result.append(server_only[i])
            i += 1
        else:
            left = server_index.get(identity(server_only[i]), -1)
            right = server_index.get(identity(from_patch[j]), -1)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(from_patch[j])
                j += 1
    return result
