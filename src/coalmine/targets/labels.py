"""Which labels and annotations travel from a user's object to the generated copies.

Flagger's `-include-label-prefix` decides what is copied; Flux's bookkeeping keys never are, so Flux
does not believe it owns (and prune) the copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.targets.errors import TargetError

DEFAULT_INCLUDE_LABEL_PREFIXES: tuple[str, ...] = ("",)


def parse_include_label_prefixes(flag_value: str) -> tuple[str, ...]:
    """`--include-label-prefix` as Flagger splits it: comma-separated, `""` → `("",)`."""
    return tuple(part.strip() for part in flag_value.split(","))


def prefix_matches(key: str, prefixes: Iterable[str]) -> bool:
    """True when `--include-label-prefix` selects `key` (`*` selects all, `""` selects nothing)."""
    if naming.is_toolkit_key(key):
        return False
    for prefix in prefixes:
        if prefix == "*":
            return True
        if prefix and key.startswith(prefix):
            return True
    return False


def include_by_prefix(source: Mapping[str, str] | None, prefixes: Iterable[str]) -> dict[str, str]:
    """The entries of `source` selected by `--include-label-prefix`."""
    prefix_list = tuple(prefixes)
    return {k: v for k, v in (source or {}).items() if prefix_matches(k, prefix_list)}


def without_toolkit_keys(source: Mapping[str, str] | None) -> dict[str, str]:
    """`source` minus Flux's keys (containing `toolkit.fluxcd.io`)."""
    return {k: v for k, v in (source or {}).items() if not naming.is_toolkit_key(k)}


def make_primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    """`labels` with the selector label forced to `value` (Flagger's makePrimaryLabels)."""
    result = {k: v for k, v in (labels or {}).items() if k != label}
    result[label] = value
    return result


def selector_label(
    kind: str,
    obj: Mapping[str, Any],
    selector_labels: Sequence[str] = naming.DEFAULT_SELECTOR_LABELS,
) -> tuple[str, str]:
    """The first of `--selector-labels` present in `spec.selector.matchLabels`, and its value.

    Raises TargetError with Flagger's message when none is present.
    """
    metadata = obj.get("metadata") or {}
    match_labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in selector_labels:
        if label in match_labels:
            return label, str(match_labels[label])
    name = metadata.get("name", "")
    namespace = metadata.get("namespace", "")
    wanted = " ".join(selector_labels)
    raise TargetError(
        f"{kind.lower()} {name}.{namespace} spec.selector.matchLabels must contain one of [{wanted}]"
    )


def owner_reference(canary: Canary) -> dict[str, Any]:
    """The Canary as controlling owner, so copies are garbage-collected with it."""
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.CANARY_KIND,
        "name": canary.name,
        "uid": canary.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: Mapping[str, Any], canary_name: str) -> bool:
    """True when `obj` has a controller owner reference to the Canary `canary_name`."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == naming.CANARY_KIND
            and ref.get("name") == canary_name
        ):
            return True
    return False


def merge_owner_references(
    existing: Sequence[Mapping[str, Any]] | None, ours: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """`ours` as controller plus every other existing owner kept as a non-controller.

    A shared ConfigMap copy is owned by several Canaries; only one owner may be the controller.
    """
    result: list[dict[str, Any]] = [dict(ours)]
    for ref in existing or []:
        same = ref.get("uid") == ours.get("uid") or (
            ref.get("kind") == ours.get("kind") and ref.get("name") == ours.get("name")
        )
        if same:
            continue
        kept = dict(ref)
        if kept.get("controller"):
            kept["controller"] = False
        result.append(kept)
    return result
