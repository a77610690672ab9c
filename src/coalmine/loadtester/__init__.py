"""The load-testing webhook service (`coalmine loadtester`), compatible with Flagger's load tester.

Safer by default than Flagger's: `cmd` runs only allow-listed programs as an argv (never through a
shell), `bash` tasks are off unless `--allow-bash`, unknown task types get a 400.
"""

from __future__ import annotations

from coalmine.loadtester.runner import TaskOutcome, TaskRunner, run_process
from coalmine.loadtester.server import create_app
from coalmine.loadtester.tasks import (
    DEFAULT_ALLOWED_PROGRAMS,
    LoadTesterConfig,
    Refusal,
    Task,
    build_task,
)

__all__ = [
    "DEFAULT_ALLOWED_PROGRAMS",
    "LoadTesterConfig",
    "Refusal",
    "Task",
    "TaskOutcome",
    "TaskRunner",
    "build_task",
    "create_app",
    "run_process",
]
