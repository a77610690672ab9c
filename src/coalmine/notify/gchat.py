"""Google Chat incoming webhooks (card format, as Flagger sends)."""

from __future__ import annotations

from typing import Any

from coalmine.notify.message import AlertMessage
from coalmine.notify.transport import WebhookNotifier

FLAGGER_ICON = "https://flagger.app/favicon.png"


def _paragraph(text: str) -> dict[str, Any]:
    return {"widgets": [{"textParagraph": {"text": text}}]}


def gchat_body(message: AlertMessage) -> dict[str, Any]:
    sections = [_paragraph(f"<font color=#848484><strong>{message.message}</strong></font>")]
    sections.extend(
        _paragraph(f"{field.name}<br><font color=#848484><strong>{field.value}</strong></font>")
        for field in message.fields
    )
    return {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": message.subject,
                    "imageUrl": FLAGGER_ICON,
                },
                "sections": sections,
            }
        ]
    }


class GChatNotifier(WebhookNotifier):
    type_name = "gchat"

    def body(self, message: AlertMessage) -> dict[str, Any]:
        return gchat_body(message)
