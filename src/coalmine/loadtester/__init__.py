"""The load-testing webhook service (`coalmine loadtester`), compatible with Flagger's load tester.

Safe by construction: requests must carry the controller's signature (or the process was started
with `--insecure-accept-unsigned`, and then only argument-checked load generators run); hook
commands are parsed with a bash grammar and run as argv pipelines of allow-listed programs,
never through a shell (a real bash only for signed `bash` tasks with `--allow-bash`).
"""

from __future__ import annotations

from coalmine.loadtester.pipeline import TaskOutcome, run_script
from coalmine.loadtester.runner import TaskRunner, run_task
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
    "run_script",
    "run_task",
]
