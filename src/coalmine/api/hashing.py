"""Spec hashes: coalmine's own fingerprints for `status.lastAppliedSpec` / `lastPromotedSpec`.

Only equality is ever used. Flagger's hashes (FNV-32a over a Go spew dump) cannot be reproduced, so
ours are deliberately recognisable: 16 characters of Flagger's safe alphabet, whereas Flagger's are
at most 10 (the decimal digits of a 32-bit number, one character each). That lets the scheduler tell
"written by Flagger" from "written by us" and adopt a migrated canary instead of starting a spurious
analysis (see docs/decisions.md, 'Spec hashes and adoption').
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_LENGTH = 16


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: the one serialisation every hash is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(obj: Mapping[str, Any]) -> str:
    """A 16-character hash of `obj` in Flagger's safe alphabet (sha256 of canonical JSON)."""
    number = int.from_bytes(hashlib.sha256(canonical_json(obj).encode()).digest()[:12], "big")
    chars = []
    for _ in range(HASH_LENGTH):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def release_checksum(
    last_applied_spec: str | None, tracked_configs: Mapping[str, str] | None
) -> str:
    """One value naming a release: the target spec hash and its tracked config checksums.

    It is the webhook payload `checksum` (Flagger hashes lastAppliedSpec and trackedConfigs), and
    the revision the scheduler records on the primary at promotion, to recognise a promotion that
    already happened before a crash. `None` configs (a kind without tracking) differ from `{}`,
    as Flagger's pointer to a map does.
    """
    configs = None if tracked_configs is None else dict(tracked_configs)
    return spec_hash({"lastAppliedSpec": last_applied_spec or "", "trackedConfigs": configs})


def is_own_hash(value: str | None) -> bool:
    """Whether `value` is a hash coalmine wrote (as opposed to Flagger, or nothing at all)."""
    return (
        value is not None
        and len(value) == HASH_LENGTH
        and all(char in SAFE_ALPHABET for char in value)
    )


def is_foreign_hash(value: str | None) -> bool:
    """A non-empty hash we cannot have written: a canary taken over from Flagger."""
    return bool(value) and not is_own_hash(value)
