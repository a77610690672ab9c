"""Slack incoming webhooks (also the payload format of Discord's and Rocket.Chat's Slack endpoints)."""

from __future__ import annotations

from typing import Any

from coalmine.notify.message import AlertMessage
from coalmine.notify.transport import WebhookNotifier, require


def slack_body(
    message: AlertMessage, *, channel: str, username: str, good: str, danger: str
) -> dict[str, Any]:
    """Flagger's Slack payload: one attachment, red only for `error` alerts."""
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": danger if message.severity == "error" else good,
                "author_name": message.subject,
                "text": message.message,
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": field.name, "value": field.value, "short": False}
                    for field in message.fields
                ],
            }
        ],
    }


class SlackNotifier(WebhookNotifier):
    type_name = "slack"
    good_color = "good"
    danger_color = "danger"

    def __init__(
        self,
        address: str,
        *,
        username: str = "flagger",
        channel: str = "general",
        proxy: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(address, proxy=proxy)
        self.username = require(username, f"{self.type_name} username")
        self.channel = require(channel, f"{self.type_name} channel")
        self.token = token or None

    def body(self, message: AlertMessage) -> dict[str, Any]:
        return slack_body(
            message,
            channel=self.channel,
            username=self.username,
            good=self.good_color,
            danger=self.danger_color,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}
