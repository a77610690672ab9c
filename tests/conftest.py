"""Shared test set-up. Import `require_binary` from `binaries` (unique name), not from here."""

from __future__ import annotations

from binaries import INSTALL_HINTS, require_binary

__all__ = ["INSTALL_HINTS", "require_binary"]

pytest_plugins = ["coalmine.devcluster.testing"]
