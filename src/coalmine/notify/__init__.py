"""Alerts to chat tools: Slack, MS Teams, Discord, Rocket.Chat, Google Chat (Flagger's notifiers).

The top level is free of HTTP libraries (`Notifier`, `AlertMessage`, the severity rules). The
scheduler alerts through its own `Alerts` port (`coalmine.scheduler.ports`), which
`coalmine.notify.alerter.Alerter` implements. The controller imports the I/O parts:
`coalmine.notify.alerter` (`Alerter`, `resolve_alert_provider`, `GlobalNotifierSettings`,
`global_notifier`) and `coalmine.notify.registry` (`NOTIFIERS`, `make_notifier`).
"""

from __future__ import annotations

from coalmine.api.models import AlertSeverity
from coalmine.notify.base import (
    AlertDelivery,
    NotificationError,
    Notifier,
    NotifierConfigError,
)
from coalmine.notify.message import (
    AlertMessage,
    Field,
    build_alert_message,
    canary_fields,
    effective_severity,
    provider_receives,
)

__all__ = [
    "AlertDelivery",
    "AlertMessage",
    "AlertSeverity",
    "Field",
    "NotificationError",
    "Notifier",
    "NotifierConfigError",
    "build_alert_message",
    "canary_fields",
    "effective_severity",
    "provider_receives",
]
