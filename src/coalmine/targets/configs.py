"""ConfigMap and Secret tracking: which configs a pod template uses, their checksums, and the
`<name>-primary` copies the primary workload reads, so a config change is released like an image.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.errors import TargetError
from coalmine.targets.labels import include_by_prefix, merge_owner_references, owner_reference

ConfigKind = Literal["configmap", "secret"]

TRACKED_SECRET_TYPES = frozenset(
    {"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"}
)


@dataclass(frozen=True)
class ConfigRef:
    """One reference from a pod spec; `optional` only when every reference to it is optional."""

    kind: ConfigKind
    name: str
    optional: bool

    @property
    def key(self) -> str:
        """The `status.trackedConfigs` key: `configmap/<name>` or `secret/<name>`."""
        return f"{self.kind}/{self.name}"


def _optional(ref: Mapping[str, Any] | None) -> bool:
    return bool((ref or {}).get("optional"))


def _pod_spec_refs(pod_spec: Mapping[str, Any]) -> Iterator[tuple[ConfigKind, str, bool]]:
    for volume in pod_spec.get("volumes") or []:
        if (cm := volume.get("configMap")) and cm.get("name"):
            yield "configmap", cm["name"], _optional(cm)
        if (secret := volume.get("secret")) and secret.get("secretName"):
            yield "secret", secret["secretName"], _optional(secret)
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (cm := source.get("configMap")) and cm.get("name"):
                yield "configmap", cm["name"], _optional(cm)
            if (secret := source.get("secret")) and secret.get("name"):
                yield "secret", secret["name"], _optional(secret)
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if (cm := value_from.get("configMapKeyRef")) and cm.get("name"):
                yield "configmap", cm["name"], _optional(cm)
            if (secret := value_from.get("secretKeyRef")) and secret.get("name"):
                yield "secret", secret["name"], _optional(secret)
        for env_from in container.get("envFrom") or []:
            if (cm := env_from.get("configMapRef")) and cm.get("name"):
                yield "configmap", cm["name"], _optional(cm)
            if (secret := env_from.get("secretRef")) and secret.get("name"):
                yield "secret", secret["name"], _optional(secret)


def scan_config_refs(pod_spec: Mapping[str, Any]) -> list[ConfigRef]:
    """Every ConfigMap/Secret the pod spec uses (containers and initContainers, volumes incl.
    projected, env and envFrom), in first-seen order; mandatory wins over optional."""
    found: dict[tuple[ConfigKind, str], bool] = {}
    for kind, name, optional in _pod_spec_refs(pod_spec):
        key = (kind, name)
        found[key] = found.get(key, True) and optional
    return [ConfigRef(kind, name, optional) for (kind, name), optional in found.items()]


def is_tracking_disabled(obj: Mapping[str, Any]) -> bool:
    """The per-object opt-out: annotation `flagger.app/config-tracking` starting with `disable`."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(naming.CONFIG_TRACKING_ANNOTATION, "")).startswith("disable")


_GO_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_GO_HTML_ESCAPES = frozenset("<>&\u2028\u2029")


def _go_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        elif ord(char) < 0x20 or char in _GO_HTML_ESCAPES:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def go_json(value: Any) -> str:
    """`encoding/json.Marshal` as Go writes it: map keys sorted, compact, `<`, `>`, `&`, U+2028,
    U+2029 and control characters escaped, so checksums match Flagger's byte for byte."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted((str(k).encode("utf-8"), str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for _, k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} like Go's encoding/json")


def config_checksum(data: Mapping[str, str] | None) -> str:
    """Flagger's checksum: SHA-256 of the Go JSON of `data`, first 8 bytes as 16 hex chars.

    A Secret's `data` values are the base64 strings as the API returns them, which is also what Go's
    encoder writes for `[]byte`. Absent data encodes as `null`, like a nil Go map.
    """
    text = go_json(None if data is None else dict(data))
    return hashlib.sha256(text.encode("utf-8")).digest()[:8].hex()


@dataclass
class TrackedConfigs:
    """The configs a target uses that are tracked, by name, as read from the cache."""

    configmaps: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def checksums(self) -> dict[str, str]:
        """`status.trackedConfigs`."""
        result = {
            f"configmap/{n}": config_checksum(o.get("data")) for n, o in self.configmaps.items()
        }
        result.update(
            {f"secret/{n}": config_checksum(o.get("data")) for n, o in self.secrets.items()}
        )
        return result

    def __bool__(self) -> bool:
        return bool(self.configmaps or self.secrets)


def resolve_tracked_configs(
    pod_spec: Mapping[str, Any],
    namespace: str,
    configmaps: Mapping[str, Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, Any]],
) -> TrackedConfigs:
    """The tracked configs of a pod spec, looked up in `configmaps`/`secrets` (name → object).

    A missing mandatory reference makes the target unusable (TargetError); a missing optional one is
    skipped. Opted-out objects and Secret types other than generic/basic-auth/ssh-auth/tls (registry
    and service-account tokens) are not tracked.
    """
    tracked = TrackedConfigs()
    for ref in scan_config_refs(pod_spec):
        source = configmaps if ref.kind == "configmap" else secrets
        obj = source.get(ref.name)
        if obj is None:
            if ref.optional:
                continue
            raise TargetError(f"{ref.kind} {ref.name}.{namespace} get query error: not found")
        if is_tracking_disabled(obj):
            continue
        if ref.kind == "configmap":
            tracked.configmaps[ref.name] = obj
        elif str(obj.get("type") or "Opaque") in TRACKED_SECRET_TYPES:
            tracked.secrets[ref.name] = obj
    return tracked


def desired_primary_config(
    canary: Canary,
    source: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    include_label_prefixes: Sequence[str],
) -> dict[str, Any]:
    """The `<name>-primary` copy of a tracked ConfigMap or Secret.

    Labels per `--include-label-prefix`, no annotations, data and binaryData (ConfigMap; see
    docs/decisions.md, 'ConfigMap binaryData') or type and data (Secret). This Canary is the
    controller; other Canaries that already own the copy (a config shared by several targets) stay
    owners.
    """
    kind = source.get("kind") or ("Secret" if "type" in source else "ConfigMap")
    name = naming.primary_name((source.get("metadata") or {}).get("name", ""))
    existing_refs = ((existing or {}).get("metadata") or {}).get("ownerReferences")
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": canary.namespace,
        "ownerReferences": merge_owner_references(existing_refs, owner_reference(canary)),
    }
    labels = include_by_prefix((source.get("metadata") or {}).get("labels"), include_label_prefixes)
    if labels:
        metadata["labels"] = labels
    result: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "Secret":
        result["type"] = source.get("type") or "Opaque"
        if source.get("data") is not None:
            result["data"] = copy.deepcopy(source["data"])
    else:
        for key in ("data", "binaryData"):
            if source.get(key) is not None:
                result[key] = copy.deepcopy(source[key])
    return result


def primary_configs_update(
    desired: Mapping[str, Any], actual: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`actual` rewritten to `desired` for an Update, or None when it already matches."""
    actual_meta = actual.get("metadata") or {}
    desired_meta = desired.get("metadata") or {}
    same = (
        (actual_meta.get("labels") or {}) == (desired_meta.get("labels") or {})
        and (actual_meta.get("ownerReferences") or []) == desired_meta.get("ownerReferences")
        and all(
            (actual.get(key) or {}) == (desired.get(key) or {}) for key in ("data", "binaryData")
        )
        and (desired.get("kind") != "Secret" or actual.get("type") == desired.get("type"))
    )
    if same:
        return None
    result = copy.deepcopy(dict(actual))
    meta = result.setdefault("metadata", {})
    meta["ownerReferences"] = copy.deepcopy(desired_meta.get("ownerReferences"))
    if desired_meta.get("labels"):
        meta["labels"] = dict(desired_meta["labels"])
    else:
        meta.pop("labels", None)
    for key in ("data", "binaryData", "type"):
        if key in desired:
            result[key] = copy.deepcopy(desired[key])
        elif key != "type":
            result.pop(key, None)
    return result


def rename_config_refs(
    pod_spec: Mapping[str, Any], configmaps: Iterable[str], secrets: Iterable[str]
) -> dict[str, Any]:
    """A copy of `pod_spec` whose references to the tracked configs point to `<name>-primary`."""
    cms = set(configmaps)
    secs = set(secrets)
    spec = copy.deepcopy(dict(pod_spec))

    def rename(ref: dict[str, Any] | None, key: str, tracked: set[str]) -> None:
        if ref and ref.get(key) in tracked:
            ref[key] = naming.primary_name(ref[key])

    for volume in spec.get("volumes") or []:
        rename(volume.get("configMap"), "name", cms)
        rename(volume.get("secret"), "secretName", secs)
        for source in (volume.get("projected") or {}).get("sources") or []:
            rename(source.get("configMap"), "name", cms)
            rename(source.get("secret"), "name", secs)
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            rename(value_from.get("configMapKeyRef"), "name", cms)
            rename(value_from.get("secretKeyRef"), "name", secs)
        for env_from in container.get("envFrom") or []:
            rename(env_from.get("configMapRef"), "name", cms)
            rename(env_from.get("secretRef"), "name", secs)
    return spec


def primary_config_needs_recreate(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """A Secret's `type` is immutable: a copy of a Secret whose type changed must be recreated."""
    return desired.get("kind") == "Secret" and actual.get("type") != desired.get("type")
