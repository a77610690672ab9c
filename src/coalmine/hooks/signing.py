"""Webhook request signing: HMAC-SHA256 over a timestamp and the exact request body.

Pure (no I/O): the controller signs every webhook request it sends, the load tester verifies.
Header: `X-Coalmine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`. The
timestamp is inside the MAC, so a captured request can be replayed only within the window
(default 5 minutes either side); comparison is constant-time. Several `v1=` values may appear
(key rotation: the signer sends one per key, the verifier accepts any key it holds).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Coalmine-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300.0
MIN_KEY_BYTES = 16


class SignatureError(ValueError):
    """Why a request's signature does not verify (missing, malformed, stale or wrong)."""


def parse_keys(text: str | bytes, *, source: str = "signing key") -> tuple[bytes, ...]:
    """The keys in a Secret's file: one per non-empty line (two lines while rotating a key).

    Surrounding whitespace, a trailing newline included, is not part of a key.
    """
    raw = text.encode() if isinstance(text, str) else text
    keys = tuple(line.strip() for line in raw.splitlines() if line.strip())
    if not keys:
        raise ValueError(f"{source}: no signing key in it")
    for key in keys:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"{source}: a signing key needs at least {MIN_KEY_BYTES} bytes")
    return keys


def compute(key: bytes, timestamp: int, body: bytes) -> str:
    """The hex MAC of one request."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_headers(keys: Iterable[bytes], body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The headers to add to a request carrying `body`; none when there is no key."""
    keys = list(keys)
    if not keys:
        return {}
    timestamp = int(time.time() if now is None else now)
    parts = [f"t={timestamp}", *(f"{SCHEME}={compute(key, timestamp, body)}" for key in keys)]
    return {SIGNATURE_HEADER: ",".join(parts)}


@dataclass(frozen=True)
class Signature:
    timestamp: int
    macs: tuple[str, ...]


def parse_header(value: str) -> Signature:
    """`t=<int>,v1=<hex>[,v1=<hex>…]`; unknown schemes are ignored (forward compatibility)."""
    timestamp: int | None = None
    macs: list[str] = []
    for item in value.split(","):
        name, separator, text = item.strip().partition("=")
        if not separator:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header item {item.strip()!r}")
        if name == "t":
            if not text.isdigit() or len(text) > 12:
                raise SignatureError(f"{SIGNATURE_HEADER}: t must be unix seconds")
            timestamp = int(text)
        elif name == SCHEME:
            macs.append(text.strip().lower())
    if timestamp is None:
        raise SignatureError(f"{SIGNATURE_HEADER}: no t=<unix seconds>")
    if not macs:
        raise SignatureError(f"{SIGNATURE_HEADER}: no {SCHEME}=<hex> signature")
    return Signature(timestamp, tuple(macs))


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Iterable[bytes],
    *,
    now: float | None = None,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Return when `body` was signed by one of `keys` within the window; raise `SignatureError`."""
    value = headers.get(SIGNATURE_HEADER)
    if value is None:
        raise SignatureError(f"the request is not signed (no {SIGNATURE_HEADER} header)")
    signature = parse_header(value)
    current = time.time() if now is None else now
    if abs(current - signature.timestamp) > tolerance_seconds:
        raise SignatureError(
            f"the signature is stale: signed at {signature.timestamp}, outside the "
            f"{tolerance_seconds:g}s window (replayed request, or clocks apart)"
        )
    for key in keys:
        expected = compute(key, signature.timestamp, body)
        # Check every candidate (no early exit on the first byte): compare_digest is constant-time.
        if any(hmac.compare_digest(expected, mac) for mac in signature.macs):
            return
    raise SignatureError("the signature does not match the body (wrong key or altered request)")
