"""`coalmine pause NAME`: freeze a canary without touching its spec (see `coalmine.cli.verbs`)."""

from __future__ import annotations

from coalmine.cli.verbs import registrar

register = registrar("pause")
