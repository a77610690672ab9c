"""Microsoft Teams incoming webhooks (legacy MessageCard, as Flagger sends)."""

from __future__ import annotations

from typing import Any

import aiohttp

from coalmine.notify.message import AlertMessage
from coalmine.notify.transport import post_notification, validate_url


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


class MSTeamsNotifier:
    type_name = "msteams"

    def __init__(
        self,
        address: str,
        *,
        username: str = "flagger",
        channel: str = "general",
        proxy: str | None = None,
        token: str | None = None,
    ) -> None:
        # Teams has no channel/username/token: the webhook URL names the channel.
        self.address = validate_url(address, self.type_name)
        self.proxy = proxy or None

    def body(self, message: AlertMessage) -> dict[str, Any]:
        return msteams_body(message)

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None:
        await post_notification(session, self.address, self.body(message), proxy=self.proxy)
