"""Discord, through its Slack-compatible endpoint (`<webhook>/slack`)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from coalmine.notify.slack import SlackNotifier
from coalmine.notify.transport import validate_url


def discord_slack_url(address: str) -> str:
    """Discord accepts Slack payloads on `<webhook>/slack`; append it unless present."""
    url = urlsplit(validate_url(address, "discord"))
    if url.path.endswith("/slack"):
        return address
    return urlunsplit(url._replace(path=url.path.rstrip("/") + "/slack"))


class DiscordNotifier(SlackNotifier):
    type_name = "discord"

    def __init__(
        self,
        address: str,
        *,
        username: str = "flagger",
        channel: str = "general",
        proxy: str | None = None,
        token: str | None = None,
    ) -> None:
        # Discord has no bearer token: the secret is in the webhook URL.
        super().__init__(
            discord_slack_url(address), username=username, channel=channel, proxy=proxy
        )
