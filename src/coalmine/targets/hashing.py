"""What of a target counts as a release: the input of its `status.lastAppliedSpec` hash.

The hash itself is `coalmine.api.hashing.spec_hash`; this module decides what goes into it per kind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from coalmine.api.hashing import spec_hash
from coalmine.targets.daemonset import without_parking
from coalmine.targets.kinds import target_kind

REMEMBERED_LIMIT = 100_000


def _remembered(compute: Callable[[Mapping[str, Any]], str]) -> Callable[[Mapping[str, Any]], str]:
    """`compute`, remembered for the last object of each uid it saw while that same object comes
    again: the fingerprint of every cycle hashes a target from the watch cache, which hands out
    the same object until the target changes (a deep copy and a JSON hash of the spec each time
    were a tenth of a cycle at rest)."""
    memory: dict[str, tuple[Mapping[str, Any], str]] = {}

    def hashed(obj: Mapping[str, Any]) -> str:
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid:
            return compute(obj)
        seen = memory.get(uid)
        if seen is not None and seen[0] is obj:
            return seen[1]
        if len(memory) >= REMEMBERED_LIMIT:
            memory.clear()
        value = compute(obj)
        memory[uid] = (obj, value)
        return value

    return hashed


def workload_hash_input(workload: Mapping[str, Any]) -> Any:
    """What makes a Deployment/DaemonSet release: its pod template (and nothing else).

    The DaemonSet scale-to-zero node selector is removed so that scaling the target down and up is
    never mistaken for a new revision; an emptied node selector counts as absent.
    """
    return without_parking(copy.deepcopy((workload.get("spec") or {}).get("template") or {}))


@_remembered
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


@_remembered
def service_hash(service: Mapping[str, Any]) -> str:
    """`status.lastAppliedSpec` of a Service target: metadata and allocations do not count."""
    return spec_hash(service_hash_input(service))


def knative_revision(service: Mapping[str, Any]) -> str:
    """The revision Knative created last for the Service's template (`status.
    latestCreatedRevisionName`, "" before Knative reconciled it): what a Knative release is."""
    return str((service.get("status") or {}).get("latestCreatedRevisionName") or "")


@_remembered
def knative_hash(service: Mapping[str, Any]) -> str:
    """`status.lastAppliedSpec` of a Knative Service target: its latest created revision, as in
    Flagger (docs/decisions.md, 'Knative revisions'); our own `spec.traffic` writes never count."""
    return spec_hash({"latestCreatedRevisionName": knative_revision(service)})


def revision_hash(target: Mapping[str, Any]) -> str | None:
    """The spec hash of a target by its kind (None for a kind that is not a target): what the
    scheduler compares with `status.lastAppliedSpec`, so a change of it is a new revision."""
    info = target_kind(str(target.get("apiVersion") or "v1"), str(target.get("kind")))
    if info is None:
        return None
    if info.revision == "knative":
        return knative_hash(target)
    return service_hash(target) if info.revision == "service" else workload_hash(target)
