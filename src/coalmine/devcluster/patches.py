"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), the two schema-free patch types.

Both return a new document and never modify their inputs, so a failed patch leaves the stored
object untouched. Strategic merge patch lives in `strategic_merge` because it needs per-kind
metadata.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

__all__ = ["PatchError", "apply_json_patch", "json_merge_patch"]


class PatchError(ValueError):
    """A patch that is malformed or does not apply; the message says which operation and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return _copy(patch)
    result: dict[str, Any] = _copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def apply_json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 through the `jsonpatch` library; any failing operation fails the whole patch."""
    if not isinstance(operations, list):
        raise PatchError(
            f"json patch must be a list of operations, not {type(operations).__name__}"
        )
    result = copy.deepcopy(doc)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise PatchError(f"json patch operation {index} must be an object")
        op = operation.get("op")
        path = operation.get("path")
        where = f"json patch operation {index} ({op} {path})"
        if op is None:
            raise PatchError(f"json patch operation {index} has no 'op'")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{where}: missing 'value'")
        try:
            result = jsonpatch.JsonPatch([operation]).apply(result, in_place=True)
        except jsonpatch.JsonPatchTestFailed as error:
            raise PatchError(f"{where}: test failed: {error}") from error
        except (
            jsonpatch.JsonPatchException,
            jsonpointer.JsonPointerException,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as error:
            raise PatchError(f"{where}: {error}") from error
    return result
