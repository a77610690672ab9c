"""`coalmine abort NAME`: roll back now, leaving the primary untouched (see `coalmine.cli.verbs`)."""

from __future__ import annotations

from coalmine.cli.verbs import registrar

register = registrar("abort")
