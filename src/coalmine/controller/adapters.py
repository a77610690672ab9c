"""The scheduler's ports, implemented on the Kubernetes API, Prometheus metrics and HTTP clients.

Each adapter is thin: the scheduler decides, the packages behind the seams do the work; this
module only joins them (status writes through the status subresource, events plus event
webhooks, controller metrics, metric templates and secrets read from the watch cache).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from coalmine.api.models import Canary, CanaryStatus, MetricTemplate, Phase, Strategy
from coalmine.api.validation import ManifestError, parse_alert_provider, parse_metric_template
from coalmine.controller.metrics import ControllerMetrics
from coalmine.hooks.webhooks import WebhookClient
from coalmine.kube.api import KubeApi, Object
from coalmine.kube.cache import Caches
from coalmine.kube.events import EventRecorder
from coalmine.kube.kinds import ALERT_PROVIDER, CANARY, METRIC_TEMPLATE, SECRET
from coalmine.notify.alerter import ResolvedAlertProvider, resolve_alert_provider
from coalmine.scheduler.ports import AnalysisStatus, EventType

if TYPE_CHECKING:
    from coalmine.scheduler.ports import Clock, MetricsSink, Recorder, StatusWriter

log = logging.getLogger("coalmine.canary")


def canary_object(canary: Canary) -> Object:
    """The canary as the API server knows it, for Events' involvedObject."""
    return canary.model_dump(by_alias=True, exclude_none=True, mode="json")


class KubeStatusWriter:
    """Persists the status the scheduler computed, through the status subresource.

    A merge patch of the whole status with explicit nulls for cleared fields: it cannot lose a
    race on resourceVersion (the scheduler already decided on the complete status), and fields
    the scheduler cleared (a session-affinity cookie) are removed rather than left behind.
    """

    def __init__(self, api: KubeApi, caches: Caches) -> None:
        self.api = api
        self.caches = caches

    async def write_status(self, canary: Canary, status: CanaryStatus) -> Canary:
        patch = {"status": status.model_dump(by_alias=True, mode="json")}
        written = await self.api.patch(CANARY, canary.name, patch, canary.namespace, status=True)
        await self.caches[CANARY].observe(written)
        updated = canary.model_copy(
            update={"status": CanaryStatus.model_validate(written.get("status") or {})}
        )
        updated.metadata.resource_version = written.get("metadata", {}).get("resourceVersion")
        return updated


class CanaryRecorder:
    """Kubernetes Events with Flagger's texts, a log line per decision, and event webhooks."""

    def __init__(self, events: EventRecorder, webhooks: WebhookClient) -> None:
        self.events = events
        self.webhooks = webhooks

    async def event(
        self, canary: Canary, event_type: EventType, message: str, phase: Phase | None
    ) -> None:
        level = logging.INFO if event_type == "Normal" else logging.WARNING
        log.log(level, message, extra={"canary": canary.key, "phase": phase or ""})
        await self.events.record(canary_object(canary), event_type, message)
        await self.webhooks.forward_event(canary, event_type, message, phase)


class PrometheusSink:
    """The scheduler's metrics, on the controller's Prometheus registry."""

    def __init__(self, metrics: ControllerMetrics) -> None:
        self.metrics = metrics

    def set_status(self, canary: Canary, value: int) -> None:
        self.metrics.status.labels(
            name=canary.spec.target_ref.name, namespace=canary.namespace
        ).set(value)

    def set_weight(self, canary: Canary, primary_weight: int, canary_weight: int) -> None:
        self.metrics.set_weights(
            canary.spec.target_ref.name, canary.namespace, primary_weight, canary_weight
        )

    def inc_successes(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None:
        self.metrics.count_success(
            canary.spec.target_ref.name, canary.namespace, strategy, status == "skipped"
        )

    def inc_failures(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None:
        self.metrics.count_failure(canary.spec.target_ref.name, canary.namespace, strategy)

    def observe_duration(self, canary: Canary, seconds: float) -> None:
        self.metrics.observe_duration(canary.spec.target_ref.name, canary.namespace, seconds)

    def record_metric(self, canary: Canary, metric: str, value: float) -> None:
        """The analysis package's `RecordMetric` hook."""
        self.metrics.set_metric_value(canary.spec.target_ref.name, canary.namespace, metric, value)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def decode_secret(secret: Object) -> dict[str, str]:
    """A Secret's values as text (`stringData` is never stored by a real server)."""
    decoded = {
        key: base64.b64decode(value).decode("utf-8", errors="replace")
        for key, value in (secret.get("data") or {}).items()
    }
    decoded.update(secret.get("stringData") or {})
    return decoded


class CacheSources:
    """MetricTemplates, AlertProviders and Secrets for the analysis and alerting packages."""

    def __init__(self, caches: Caches) -> None:
        self.caches = caches

    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        obj = self.caches[METRIC_TEMPLATE].get(name, namespace)
        if obj is None:
            return None
        try:
            return parse_metric_template(obj)
        except ManifestError as error:
            log.warning("metric template %s.%s is invalid: %s", name, namespace, error)
            return None

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes | str] | None:
        obj = self.caches[SECRET].get(name, namespace)
        return decode_secret(obj) if obj is not None else None

    async def alert_providers(self, canary: Canary) -> Sequence[ResolvedAlertProvider]:
        """The canary's `analysis.alerts`, resolved; a broken entry is logged and skipped."""
        analysis = canary.spec.analysis
        resolved: list[ResolvedAlertProvider] = []
        for alert in (analysis.alerts if analysis else None) or []:
            namespace = alert.provider_ref.namespace or canary.namespace
            obj = self.caches[ALERT_PROVIDER].get(alert.provider_ref.name, namespace)
            if obj is None:
                log.warning(
                    "alert provider %s.%s of canary %s not found",
                    alert.provider_ref.name,
                    namespace,
                    canary.key,
                )
                continue
            try:
                provider = parse_alert_provider(obj)
                secret: dict[str, str] | None = None
                if provider.spec.secret_ref is not None:
                    found = self.caches[SECRET].get(provider.spec.secret_ref.name, namespace)
                    secret = decode_secret(found) if found is not None else None
                resolved.append(resolve_alert_provider(alert, provider, secret))
            except (ManifestError, ValueError) as error:
                log.warning("alert provider of canary %s unusable: %s", canary.key, error)
        return resolved


if TYPE_CHECKING:
    _STATUS_WRITER: type[StatusWriter] = KubeStatusWriter
    _RECORDER: type[Recorder] = CanaryRecorder
    _METRICS_SINK: type[MetricsSink] = PrometheusSink
    _CLOCK: type[Clock] = SystemClock
