"""`coalmine promote NAME`: skip the rest of the analysis and promote now (see `coalmine.cli.verbs`)."""

from __future__ import annotations

from coalmine.cli.verbs import registrar

register = registrar("promote")
