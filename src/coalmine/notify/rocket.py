"""Rocket.Chat incoming webhooks (Slack format, Flagger's blue/red colours)."""

from __future__ import annotations

from coalmine.notify.slack import SlackNotifier


class RocketNotifier(SlackNotifier):
    type_name = "rocket"
    good_color = "#0076D7"
    danger_color = "#FF0000"

    def headers(self) -> dict[str, str]:
        # Only Slack sends the AlertProvider's token.
        return {}
