"""Pure builders of the Knative Service target (`serving.knative.dev/v1`), as Flagger's
`pkg/canary/knative_controller.go` and `pkg/router/knative.go` shape it.

There are no `-primary`/`-canary` copies: both sides are revisions of the one Knative Service.
The primary is the revision named by the annotation `flagger.app/primary-revision`; the canary is
the latest revision (`latestRevision: true`, which Knative resolves to its latest ready one).
The split lives in the Service's own `spec.traffic`; Knative reports what it routes in
`status.traffic`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from coalmine.api import naming
from coalmine.targets.hashing import knative_revision

PRIMARY_REVISION = naming.KNATIVE_PRIMARY_REVISION_ANNOTATION

Obj = Mapping[str, Any]

__all__ = [
    "PRIMARY_REVISION",
    "initialized",
    "knative_revision",
    "primary_revision",
    "promoted",
    "revision_readiness",
    "split_of",
    "traffic",
    "with_traffic",
    "without_primary",
]


def primary_revision(service: Obj) -> str | None:
    """The revision recorded as the primary, None before initialisation."""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(PRIMARY_REVISION)
    return str(value) if value else None


def traffic(primary: str, primary_weight: int, canary_weight: int) -> list[dict[str, Any]]:
    """Flagger's two traffic targets: the latest revision at the canary weight, the primary
    revision at the primary weight. `latestRevision: false` on the pinned entry is what Knative's
    defaulting writes there, so the stored block equals the one we compare with."""
    return [
        {"latestRevision": True, "percent": canary_weight},
        {"revisionName": primary, "latestRevision": False, "percent": primary_weight},
    ]


def _copy_with(service: Obj, annotations: Mapping[str, str | None]) -> dict[str, Any]:
    """A deep copy with annotations set (None: removed)."""
    result = copy.deepcopy(dict(service))
    metadata = result.setdefault("metadata", {})
    current = dict(metadata.get("annotations") or {})
    for key, value in annotations.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    metadata["annotations"] = current
    return result


def _changed(before: Obj, after: Obj) -> dict[str, Any] | None:
    return dict(after) if dict(before) != dict(after) else None


def with_traffic(
    service: Obj, primary: str, primary_weight: int, canary_weight: int
) -> dict[str, Any]:
    """The Service with Flagger's traffic block at these weights."""
    result = copy.deepcopy(dict(service))
    result.setdefault("spec", {})["traffic"] = traffic(primary, primary_weight, canary_weight)
    return result


def initialized(service: Obj) -> dict[str, Any] | None:
    """Flagger's Initialize: the latest created revision becomes the primary and takes all the
    traffic; None when the Service is already so (no write)."""
    latest = knative_revision(service)
    annotated = _copy_with(service, {PRIMARY_REVISION: latest})
    return _changed(service, with_traffic(annotated, latest, 100, 0))


def promoted(service: Obj, release: str) -> dict[str, Any] | None:
    """Flagger's Promote: the latest created revision becomes the primary (the traffic block is
    rewritten by the promotion's SetRoutes). `release` is recorded too, so a promotion that
    happened before a crash is recognised (`TargetFingerprint.primary_revision`)."""
    latest = knative_revision(service)
    annotations = {PRIMARY_REVISION: latest, naming.PROMOTED_REVISION_ANNOTATION: release}
    return _changed(service, _copy_with(service, annotations))


def without_primary(service: Obj) -> dict[str, Any] | None:
    """Flagger's Finalize: the annotations go; the traffic block stays on the primary revision
    (docs/decisions.md, 'Knative revisions')."""
    annotations = {PRIMARY_REVISION: None, naming.PROMOTED_REVISION_ANNOTATION: None}
    return _changed(service, _copy_with(service, annotations))


def has_split(service: Obj, primary: str) -> bool:
    """Whether `spec.traffic` is Flagger's two-target block for this primary (any weights)."""
    entries = (service.get("spec") or {}).get("traffic") or []
    latest = [e for e in entries if e.get("latestRevision") is True]
    pinned = [e for e in entries if e.get("latestRevision") is not True]
    return (
        len(latest) == 1
        and len(pinned) == 1
        and pinned[0].get("revisionName") == primary
        and not latest[0].get("revisionName")
    )


def split_of(entries: Sequence[Obj]) -> tuple[int, int] | None:
    """(primary, canary) percentages of a traffic block (Knative's `status.traffic`): the latest
    revision is the canary, every revision pinned by name the primary side. None when the block
    has no latest-revision target (it is not a split we wrote)."""
    canary = [e for e in entries if e.get("latestRevision") is True]
    if not canary:
        return None
    primary = sum(
        int(e.get("percent") or 0) for e in entries if e.get("latestRevision") is not True
    )
    return primary, sum(int(e.get("percent") or 0) for e in canary)


def revision_readiness(revision: Obj) -> tuple[str, str]:
    """The Revision's `Ready` condition: (status `True`/`False`/`Unknown`, reason and message)."""
    conditions = (revision.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        return "Unknown", ""
    detail = ": ".join(str(ready[k]) for k in ("reason", "message") if ready.get(k))
    return str(ready.get("status") or "Unknown"), detail
