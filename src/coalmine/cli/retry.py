"""`coalmine retry NAME`: run a failed release again without editing the target (see `coalmine.cli.verbs`)."""

from __future__ import annotations

from coalmine.cli.verbs import registrar

register = registrar("retry")
