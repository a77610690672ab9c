"""Fixtures of the devcluster tests (helpers live in dchelpers.py)."""

from dchelpers import raw

__all__ = ["raw"]
