"""`coalmine resume NAME`: let a paused canary carry on (see `coalmine.cli.verbs`)."""

from __future__ import annotations

from coalmine.cli.verbs import registrar

register = registrar("resume")
