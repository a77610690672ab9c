"""Routing a canary's alerts to its AlertProviders or to the global notifier (Flagger's `alert()`).

The controller resolves AlertProvider objects and their Secrets (no Kubernetes I/O here) into
`ResolvedAlertProvider` values with `resolve_alert_provider`, and the scheduler calls
`Alerter.alert`. Alerts never raise: a dead chat tool must never stop a release.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from coalmine.api.models import AlertProvider, AlertSeverity, Canary, CanaryAlert
from coalmine.notify.base import (
    AlertDelivery,
    NotificationError,
    Notifier,
    NotifierConfigError,
)
from coalmine.notify.message import (
    AlertMessage,
    build_alert_message,
    effective_severity,
    provider_receives,
)
from coalmine.notify.registry import make_notifier
from coalmine.outbound import safe_text

if TYPE_CHECKING:
    from coalmine.scheduler.ports import Alerts

log = logging.getLogger(__name__)

GLOBAL_NOTIFIER_NAME = "global"


class AlertProviderError(ValueError):
    """An AlertProvider cannot be used; the text names the provider and the reason."""


@dataclass(frozen=True)
class ResolvedAlertProvider:
    """One `analysis.alerts` entry with its AlertProvider and Secret values looked up."""

    alert_name: str
    provider_key: str
    severity: AlertSeverity
    notifier: Notifier


def resolve_alert_provider(
    alert: CanaryAlert,
    provider: AlertProvider,
    secret_data: Mapping[str, str] | None = None,
) -> ResolvedAlertProvider:
    """Combine an alert entry, its AlertProvider and the provider's decoded Secret data.

    With `secretRef` the Secret key `address` is required and wins over `spec.address`; the
    optional key `token` becomes Slack's bearer token. Defaults: username `flagger`, channel
    `general`. Raises `AlertProviderError` (the caller logs it and skips the entry).
    """
    namespace = provider.metadata.namespace or "default"
    key = f"{provider.metadata.name}.{namespace}"
    address = provider.spec.address or ""
    token: str | None = None
    if provider.spec.secret_ref is not None:
        data = secret_data or {}
        address = data.get("address", "")
        if not address:
            raise AlertProviderError(f"alert provider {key} secret does not contain an address")
        token = data.get("token") or None
    if not address:
        raise AlertProviderError(f"alert provider {key} has no address")
    try:
        notifier = make_notifier(
            provider.spec.type,
            address,
            username=provider.spec.effective_username,
            channel=provider.spec.effective_channel,
            proxy=provider.spec.proxy,
            token=token,
        )
    except NotifierConfigError as error:
        raise AlertProviderError(f"alert provider {key} error: {error}") from error
    return ResolvedAlertProvider(
        alert_name=alert.name,
        provider_key=key,
        severity=effective_severity(alert.severity),
        notifier=notifier,
    )


@dataclass(frozen=True)
class GlobalNotifierSettings:
    """The controller's `--slack-*` / `--msteams-*` flags (environment variables win when set)."""

    slack_url: str = ""
    slack_token: str = ""
    slack_proxy_url: str = ""
    slack_user: str = "flagger"
    slack_channel: str = ""
    msteams_url: str = ""
    msteams_proxy_url: str = ""

    def with_environment(self, environ: Mapping[str, str] | None = None) -> GlobalNotifierSettings:
        """Flagger's rule: a non-empty SLACK_URL, SLACK_TOKEN, SLACK_PROXY_URL, MSTEAMS_URL or
        MSTEAMS_PROXY_URL overrides the flag."""
        env = os.environ if environ is None else environ

        def pick(flag_value: str, variable: str) -> str:
            return env.get(variable) or flag_value

        return GlobalNotifierSettings(
            slack_url=pick(self.slack_url, "SLACK_URL"),
            slack_token=pick(self.slack_token, "SLACK_TOKEN"),
            slack_proxy_url=pick(self.slack_proxy_url, "SLACK_PROXY_URL"),
            slack_user=self.slack_user,
            slack_channel=self.slack_channel,
            msteams_url=pick(self.msteams_url, "MSTEAMS_URL"),
            msteams_proxy_url=pick(self.msteams_proxy_url, "MSTEAMS_PROXY_URL"),
        )


def global_notifier(settings: GlobalNotifierSettings) -> Notifier | None:
    """The notifier for canaries without `analysis.alerts`: MS Teams when its URL is set, else
    Slack (which needs a channel), else none. A misconfiguration is logged and disables it."""
    try:
        if settings.msteams_url:
            return make_notifier(
                "msteams", settings.msteams_url, proxy=settings.msteams_proxy_url or None
            )
        if settings.slack_url:
            if not settings.slack_channel:
                log.error("global Slack notifier disabled: --slack-channel is required")
                return None
            return make_notifier(
                "slack",
                settings.slack_url,
                username=settings.slack_user or "flagger",
                channel=settings.slack_channel,
                proxy=settings.slack_proxy_url or None,
                token=settings.slack_token or None,
            )
    except NotifierConfigError as error:
        log.error("global notifier disabled: %s", error)
    return None


ProviderResolver = Callable[[Canary], Awaitable[Sequence[ResolvedAlertProvider]]]


class Alerter:
    """Sends the scheduler's alerts (its `Alerts` port); counts failures and never raises.

    `resolve_providers` is the controller's lookup of a canary's `analysis.alerts` entries (from
    its cache of AlertProviders and Secrets, each entry through `resolve_alert_provider`); it is
    called only for canaries that list alerts.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        global_notifier: Notifier | None = None,
        cluster_name: str = "",
        resolve_providers: ProviderResolver | None = None,
    ) -> None:
        self._session = session
        self._global = global_notifier
        self._cluster_name = cluster_name
        self._resolve_providers = resolve_providers
        self.failures = 0
        self.sent = 0

    async def alert(
        self,
        canary: Canary,
        message: str,
        metadata: bool,
        severity: str,
        providers: Sequence[ResolvedAlertProvider] | None = None,
    ) -> list[AlertDelivery]:
        """Send one alert. With `analysis.alerts` set, only to the canary's providers whose
        severity admits it (the global notifier is then not used); otherwise to the global one.
        `providers` overrides the resolver."""
        alert_message = build_alert_message(
            canary, message, severity, metadata=metadata, cluster_name=self._cluster_name
        )
        analysis = canary.spec.analysis
        targets: list[tuple[str, Notifier]] = []
        if analysis is not None and analysis.alerts:
            if providers is None:
                providers = await self._providers_of(canary)
            targets = [
                (p.provider_key, p.notifier)
                for p in providers
                if provider_receives(p.severity, alert_message.severity)
            ]
        elif self._global is not None:
            targets = [(GLOBAL_NOTIFIER_NAME, self._global)]
        if not targets:
            return []
        deliveries = await asyncio.gather(
            *(self._deliver(canary, name, notifier, alert_message) for name, notifier in targets)
        )
        return list(deliveries)

    async def _providers_of(self, canary: Canary) -> Sequence[ResolvedAlertProvider]:
        if self._resolve_providers is None:
            return ()
        try:
            return await self._resolve_providers(canary)
        except Exception:
            self.failures += 1
            log.exception("resolving alert providers of canary %s failed", canary.key)
            return ()

    async def _deliver(
        self, canary: Canary, destination: str, notifier: Notifier, message: AlertMessage
    ) -> AlertDelivery:
        try:
            await notifier.send(self._session, message)
        except NotificationError as error:
            return self._failed(canary, destination, str(error))
        except Exception as error:  # a bug in one notifier must not stop a release either
            log.exception("alert to %s for canary %s crashed", destination, canary.key)
            return self._failed(canary, destination, safe_text(f"{type(error).__name__}: {error}"))
        self.sent += 1
        return AlertDelivery(destination, True)

    def _failed(self, canary: Canary, destination: str, error: str) -> AlertDelivery:
        self.failures += 1
        log.error("alert provider %s send error for canary %s: %s", destination, canary.key, error)
        return AlertDelivery(destination, False, error)


if TYPE_CHECKING:
    _IS_THE_SCHEDULERS_ALERTS: type[Alerts] = Alerter
