"""The `Notifier` and `AlertSender` seams; free of HTTP libraries so the scheduler may import them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from coalmine.api.models import Canary
from coalmine.notify.message import AlertMessage, Severity

if TYPE_CHECKING:
    import aiohttp


class NotificationError(Exception):
    """A chat tool refused or could not be reached; text as Flagger logs it."""


class NotifierConfigError(ValueError):
    """A notifier cannot be built from its settings (missing channel, unparsable URL …)."""


class Notifier(Protocol):
    """One chat tool. `send` raises `NotificationError`; the `Alerter` catches it."""

    type_name: str

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None: ...


@dataclass(frozen=True)
class AlertDelivery:
    """What happened to one alert at one destination."""

    destination: str
    ok: bool
    error: str = ""


class AlertSender(Protocol):
    """What the scheduler calls to alert (implemented by `coalmine.notify.alerter.Alerter`).

    Never raises: failures are logged and returned. `severity` is `info`, `warn` or `error`;
    `metadata` adds the Target / threshold / deadline / traffic-routing fields.
    """

    async def alert(
        self, canary: Canary, message: str, metadata: bool, severity: Severity
    ) -> Sequence[AlertDelivery]: ...
