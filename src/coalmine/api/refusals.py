"""A canary the controller refuses to run carries a `Valid=False` condition (reason, message).

Read in several places — `coalmine status`, the `Refused` printer column's JSONPath, the
`coalmine_canary_refused` gauge — so the reading is defined here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

VALID_CONDITION: Final = "Valid"


class Refusal(NamedTuple):
    reason: str
    message: str


def refusal(obj: Mapping[str, Any]) -> Refusal | None:
    """The refusal recorded on a raw Canary object, or None when it is not refused."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == VALID_CONDITION and condition.get("status") == "False":
            return Refusal(str(condition.get("reason") or ""), str(condition.get("message") or ""))
    return None
