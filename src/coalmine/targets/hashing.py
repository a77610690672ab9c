"""Spec hashes: the fingerprint of a target's release-relevant spec (`status.lastAppliedSpec`).

Only equality matters (DESIGN decision 13: our hashes are our own, not Go spew dumps). The input is
canonical JSON (sorted keys, compact), so the hash is stable across processes and Python versions.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from coalmine.api import naming

# Flagger's SafeEncodeString alphabet: no vowels, no confusable characters.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_LENGTH = 10


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON, the one serialization every hash in coalmine is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(value: Any) -> str:
    """A 10-character hash of `value` in Flagger's safe alphabet (looks like `5f56684589`)."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(HASH_LENGTH):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def workload_hash_input(workload: Mapping[str, Any]) -> Any:
    """What makes a Deployment/DaemonSet release: its pod template (and nothing else).

    The DaemonSet scale-to-zero node selector is removed so that scaling the target down and up is
    never mistaken for a new revision; an emptied node selector counts as absent.
    """
    template = copy.deepcopy((workload.get("spec") or {}).get("template") or {})
    pod_spec = template.get("spec")
    if isinstance(pod_spec, dict) and "nodeSelector" in pod_spec:
        selector = dict(pod_spec.get("nodeSelector") or {})
        selector.pop(naming.SCALE_TO_ZERO_NODE_SELECTOR, None)
        if selector:
            pod_spec["nodeSelector"] = selector
        else:
            del pod_spec["nodeSelector"]
    return template


def workload_hash(workload: Mapping[str, Any]) -> str:
    """`status.lastAppliedSpec` of a Deployment or DaemonSet target."""
    return spec_hash(workload_hash_input(workload))


# Fields the API server allocates: they differ between the target and every copy and change when a
# Service is recreated, so they are not part of what the user releases.
SERVICE_ALLOCATED_FIELDS = ("clusterIPs", "ipFamilies", "healthCheckNodePort")


def service_hash_input(service: Mapping[str, Any]) -> Any:
    """The user-meaningful spec of a Service target.

    Excluded: the allocated `clusterIP`/`clusterIPs`, `ipFamilies`, every `nodePort` and
    `healthCheckNodePort`. A headless target (`clusterIP: None`) keeps that marker, because going
    headless or back changes how clients resolve the Service.
    """
    spec = copy.deepcopy(dict(service.get("spec") or {}))
    for field in SERVICE_ALLOCATED_FIELDS:
        spec.pop(field, None)
    if spec.get("clusterIP") != "None":
        spec.pop("clusterIP", None)
    ports = []
    for port in spec.get("ports") or []:
        port = dict(port)
        port.pop("nodePort", None)
        ports.append(port)
    if "ports" in spec:
        spec["ports"] = ports
    return spec


def service_hash(service: Mapping[str, Any]) -> str:
    """`status.lastAppliedSpec` of a Service target: metadata and allocations do not count."""
    return spec_hash(service_hash_input(service))


def has_spec_changed(
    current_hash: str, last_applied: str | None, last_promoted: str | None
) -> bool:
    """Flagger's hasSpecChanged: a new revision unless it is the one already applied, or the one
    last promoted (a manual rollback to the live version never starts an analysis)."""
    if not last_applied:
        return True
    if current_hash == last_promoted:
        return False
    return current_hash != last_applied
