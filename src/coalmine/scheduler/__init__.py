"""The canary state machine: one cycle advances one canary through the seams (no I/O here).

Entry points for the controller: `Scheduler(deps, config).advance(canary)` once per analysis
interval, `Scheduler.finalize(canary)` for deleted canaries with the finalizer, and
`status.initial_status` for a canary seen for the first time. See docs/state-machine.md; release
verbs (`coalmine promote` ...) in `verbs` and docs/release-verbs.md.
"""

from coalmine.scheduler.engine import Dependencies, Scheduler, SchedulerConfig
from coalmine.scheduler.ports import (
    ActionLog,
    Alerts,
    Clock,
    MetricsSink,
    Recorder,
    Seams,
    StatusWriter,
    WebhookCaller,
)

__all__ = [
    "ActionLog",
    "Alerts",
    "Clock",
    "Dependencies",
    "MetricsSink",
    "Recorder",
    "Scheduler",
    "SchedulerConfig",
    "Seams",
    "StatusWriter",
    "WebhookCaller",
]
