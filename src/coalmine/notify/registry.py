"""Chat tools by AlertProvider `spec.type`; adding one is a module plus one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from coalmine.notify.base import Notifier, NotifierConfigError
from coalmine.notify.discord import DiscordNotifier
from coalmine.notify.gchat import GChatNotifier
from coalmine.notify.msteams import MSTeamsNotifier
from coalmine.notify.rocket import RocketNotifier
from coalmine.notify.slack import SlackNotifier


class NotifierFactory(Protocol):
    def __call__(
        self,
        address: str,
        *,
        username: str = ...,
        channel: str = ...,
        proxy: str | None = ...,
        token: str | None = ...,
    ) -> Notifier: ...


NOTIFIERS: Mapping[str, NotifierFactory] = {
    "slack": SlackNotifier,
    "msteams": MSTeamsNotifier,
    "discord": DiscordNotifier,
    "rocket": RocketNotifier,
    "gchat": GChatNotifier,
}


def make_notifier(
    type_name: str,
    address: str,
    *,
    username: str = "flagger",
    channel: str = "general",
    proxy: str | None = None,
    token: str | None = None,
) -> Notifier:
    """Build the notifier for a provider type; `NotifierConfigError` names what is wrong."""
    factory = NOTIFIERS.get(type_name)
    if factory is None:
        known = ", ".join(sorted(NOTIFIERS))
        raise NotifierConfigError(f"notifier {type_name!r} not supported (known: {known})")
    return factory(address, username=username, channel=channel, proxy=proxy, token=token)
