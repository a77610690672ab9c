"""The `Notifier` seam (one chat tool); free of HTTP libraries so pure code may import it.

What the scheduler calls to alert is its own port, `coalmine.scheduler.ports.Alerts`,
implemented by `coalmine.notify.alerter.Alerter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from coalmine.notify.message import AlertMessage

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
