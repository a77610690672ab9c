"""Alerts to chat tools: Slack, MS Teams, Discord, Rocket.Chat, Google Chat (Flagger §7).

The scheduler calls `Alerter.alert(canary, message, metadata, severity, providers)`; the controller
builds `providers` with `resolve_alert_provider` (AlertProvider + decoded Secret data) and the
global notifier with `global_notifier(GlobalNotifierSettings(...).with_environment())`.
"""

from __future__ import annotations

from coalmine.notify.alerter import (
    AlertDelivery,
    Alerter,
    AlertProviderError,
    GlobalNotifierSettings,
    ResolvedAlertProvider,
    global_notifier,
    resolve_alert_provider,
)
from coalmine.notify.base import (
    NOTIFICATION_TIMEOUT_SECONDS,
    NotificationError,
    Notifier,
    NotifierConfigError,
    post_notification,
)
from coalmine.notify.message import (
    AlertMessage,
    Field,
    Severity,
    build_alert_message,
    canary_fields,
    effective_severity,
    provider_receives,
)
from coalmine.notify.registry import NOTIFIERS, make_notifier

__all__ = [
    "NOTIFICATION_TIMEOUT_SECONDS",
    "NOTIFIERS",
    "AlertDelivery",
    "AlertMessage",
    "AlertProviderError",
    "Alerter",
    "Field",
    "GlobalNotifierSettings",
    "NotificationError",
    "Notifier",
    "NotifierConfigError",
    "ResolvedAlertProvider",
    "Severity",
    "build_alert_message",
    "canary_fields",
    "effective_severity",
    "global_notifier",
    "make_notifier",
    "post_notification",
    "provider_receives",
    "resolve_alert_provider",
]
