"""Microsoft Teams incoming webhooks (legacy MessageCard, as Flagger sends)."""

from __future__ import annotations

from typing import Any

from coalmine.notify.message import AlertMessage
from coalmine.notify.transport import WebhookNotifier


def msteams_body(message: AlertMessage) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if message.severity == "error" else "0076D7",
        "summary": message.subject,
        "sections": [
            {
                "activityTitle": message.message,
                "activitySubtitle": message.subject,
                "facts": [{"name": field.name, "value": field.value} for field in message.fields],
            }
        ],
    }


class MSTeamsNotifier(WebhookNotifier):
    # Teams has no channel/username/token: the webhook URL names the channel.
    type_name = "msteams"

    def body(self, message: AlertMessage) -> dict[str, Any]:
        return msteams_body(message)
