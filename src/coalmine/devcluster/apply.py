"""Server-side apply, approximated.

What devcluster does: the applied object is merged over the live one with JSON merge-patch
semantics (maps merge key by key; lists are atomic, i.e. replaced whole, even lists that a real
server merges by key such as `containers`); fields this manager applied before but no longer
applies are removed unless another manager owns them; `managedFields` records one `Apply` entry per
manager with the leaf fields it owns (lists as single leaves). A field owned by another `Apply`
manager (or by an `Update` manager recorded through an explicit `fieldManager`) whose value the
applied object changes is a 409 conflict worded as kube's, unless `force=true`, which moves
ownership. A list whose items already hold every applied field (the server may have defaulted
more) counts as unchanged: it is neither a conflict nor rewritten. Real servers track ownership of list items by merge key and of every update; this
does not.
"""

from __future__ import annotations

import copy
from typing import Any

from coalmine.devcluster.errors import ApiError

Obj = dict[str, Any]
Path = tuple[str, ...]

IGNORED_METADATA = {"labels", "annotations", "finalizers", "ownerReferences"}


def field_paths(obj: Obj) -> set[Path]:
    paths: set[Path] = set()

    def walk(value: Any, prefix: Path) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(child, (*prefix, key))
        else:
            paths.add(prefix)

    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            for meta_key in IGNORED_METADATA & set(value or {}):
                walk(value[meta_key], ("metadata", meta_key))
            continue
        walk(value, (key,))
    return paths


def to_fields_v1(paths: set[Path]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault("." if part == "." else f"f:{part}", {})
    return root


def map_markers(fields: Obj) -> set[Path]:
    """The maps a manager owns as such (the `"."` entries of fieldsV1)."""
    found: set[Path] = set()

    def walk(node: Obj, prefix: Path) -> None:
        if "." in node and prefix:
            found.add(prefix)
        for key, child in node.items():
            if key.startswith("f:") and isinstance(child, dict):
                walk(child, (*prefix, key[2:]))

    walk(fields, ())
    return found


def from_fields_v1(fields: Obj) -> set[Path]:
    paths: set[Path] = set()

    def walk(node: Obj, prefix: Path) -> None:
        children = [k for k in node if k.startswith("f:")]
        if not children:
            if prefix:
                paths.add(prefix)
            return
        for key in children:
            walk(node[key], (*prefix, key[2:]))

    walk(fields, ())
    return paths


def get_path(obj: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def remove_path(obj: Obj, path: Path) -> None:
    parents: list[tuple[Obj, str]] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def covers(live: Any, applied: Any) -> bool:
    """Whether `live` already holds everything `applied` says (fields it leaves out may differ,
    e.g. ones the server defaulted inside list items)."""
    if isinstance(applied, dict):
        return isinstance(live, dict) and all(
            key in live and covers(live[key], value) for key, value in applied.items()
        )
    if isinstance(applied, list):
        return (
            isinstance(live, list)
            and len(live) == len(applied)
            and all(covers(a, b) for a, b in zip(live, applied, strict=True))
        )
    return bool(live == applied)


def merge(live: Any, applied: Any) -> Any:
    if isinstance(applied, list) and covers(live, applied):
        return live  # an unchanged list keeps what others (and defaulting) put in its items
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return copy.deepcopy(applied)
    out = dict(live)
    for key, value in applied.items():
        out[key] = merge(live.get(key), value) if key in live else copy.deepcopy(value)
    return out


def apply(
    live: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    api_version: str,
    timestamp: str,
    subresource: str = "",
) -> Obj:
    """The object after `manager` applies `applied` over `live` (None when it does not exist)."""
    applied_paths = field_paths(applied)
    base = copy.deepcopy(live) if live is not None else {}
    entries: list[Obj] = list((base.get("metadata") or {}).get("managedFields") or [])
    conflicts: list[tuple[str, str, Path]] = []
    previous: set[Path] = set()
    others: list[tuple[Obj, set[Path]]] = []
    for entry in entries:
        paths = from_fields_v1(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous = paths
            continue
        others.append((entry, paths))
        for path in paths:
            for mine in applied_paths:
                if overlaps(path, mine) and not covers(
                    get_path(base, mine), get_path(applied, mine)
                ):
                    conflicts.append((entry.get("manager", ""), entry.get("apiVersion", ""), mine))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    result: Obj = merge(base, {k: v for k, v in applied.items() if k != "metadata"})
    meta = result.setdefault("metadata", {})
    for key in IGNORED_METADATA:
        if key in (applied.get("metadata") or {}):
            meta[key] = merge(meta.get(key), applied["metadata"][key])
    owned_by_others = set().union(*(paths for _, paths in others)) if others else set()
    for path in previous - applied_paths:
        if not any(overlaps(path, other) for other in owned_by_others):
            remove_path(result, path)
    kept: list[Obj] = []
    for entry, paths in others:
        remaining = {p for p in paths if not any(overlaps(p, mine) for mine in applied_paths)}
        if force or remaining == paths:
            if remaining:
                entry = dict(entry)
                entry["fieldsV1"] = to_fields_v1(remaining)
                kept.append(entry)
        else:
            kept.append(entry)
    mine_entry: Obj = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": timestamp,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(applied_paths),
    }
    if subresource:
        mine_entry["subresource"] = subresource
    meta["managedFields"] = [*kept, mine_entry]
    return result


def record_update(old: Obj, new: Obj, manager: str, api_version: str, timestamp: str) -> None:
    """Record `manager` as owner (operation Update) of the fields it changed, in `new`."""
    new_paths = field_paths(new)
    changed = {p for p in new_paths if get_path(old, p) != get_path(new, p)}
    if not changed:
        return
    meta = new.setdefault("metadata", {})
    entries = [dict(e) for e in meta.get("managedFields") or []]
    kept: list[Obj] = []
    mine: set[Path] = set()
    markers: set[Path] = set()
    for entry in entries:
        paths = from_fields_v1(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            mine = paths
            markers = map_markers(entry.get("fieldsV1") or {})
            continue
        remaining = {p for p in paths if not any(overlaps(p, c) for c in changed)}
        if remaining == paths:
            kept.append(entry)  # untouched, its map markers included
        elif remaining:
            held = {(*m, ".") for m in map_markers(entry.get("fieldsV1") or {})}
            entry["fieldsV1"] = to_fields_v1(remaining | held)
            kept.append(entry)
    mine = (mine | changed) & new_paths
    # a map this update brought into being is the manager's too, as a whole ("." in fieldsV1)
    for path in changed:
        for end in range(1, len(path)):
            prefix = path[:end]
            if isinstance(get_path(new, prefix), dict) and not isinstance(
                get_path(old, prefix), dict
            ):
                markers.add(prefix)
    markers = {m for m in markers if isinstance(get_path(new, m), dict)}
    mine |= {(*m, ".") for m in markers}
    kept.append(
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": api_version,
            "time": timestamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(mine),
        }
    )
    meta["managedFields"] = kept


def _conflict_error(conflicts: list[tuple[str, str, Path]]) -> ApiError:
    def field(path: Path) -> str:
        return "." + ".".join(path)

    count = len(conflicts)
    if count == 1:
        owner, version, path = conflicts[0]
        message = (
            f'Apply failed with 1 conflict: conflict with "{owner}" using {version}: {field(path)}'
        )
    else:
        lines = "\n".join(
            f'- conflict with "{owner}" using {version}: {field(path)}'
            for owner, version, path in conflicts
        )
        message = f"Apply failed with {count} conflicts:\n{lines}"
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{owner}" using {version}',
            "field": field(path),
        }
        for owner, version, path in conflicts
    ]
    return ApiError(409, "Conflict", message, {"causes": causes})
