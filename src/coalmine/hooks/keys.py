"""The controller's webhook signing keys: read once from the Secret's file, used for every send.

Process-wide on purpose: every webhook request goes through `coalmine.hooks.client.post_json`,
which signs with whatever is installed here; the controller's command line installs the keys of
`--webhook-signing-key-file` at start. No key installed means requests go out unsigned.
"""

from __future__ import annotations

from pathlib import Path

from coalmine.hooks.signing import parse_keys

_installed: tuple[bytes, ...] = ()


def read_key_file(path: str | Path) -> tuple[bytes, ...]:
    """The keys in `path`, or `ValueError` naming the file and the reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read signing key file {str(path)!r}: {error.strerror}") from None
    return parse_keys(data, source=f"signing key file {str(path)!r}")


def install(keys: tuple[bytes, ...]) -> None:
    global _installed
    _installed = tuple(keys)


def installed() -> tuple[bytes, ...]:
    return _installed
