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
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from coalmine.api.models import (
    Canary,
    CanaryStatus,
    EventType,
    MetricTemplate,
    Phase,
    Strategy,
)
from coalmine.api.validation import ManifestError, parse_alert_provider, parse_metric_template
from coalmine.controller.metrics import ControllerMetrics
from coalmine.hooks.webhooks import WebhookClient
from coalmine.kube import reads
from coalmine.kube.api import REQUEST_ERRORS, KubeApi, Object
from coalmine.kube.cache import Caches, uid_of
from coalmine.kube.events import EventRecorder
from coalmine.kube.failures import RequestFailed, StaleObject, describe
from coalmine.kube.kinds import ALERT_PROVIDER, CANARY, METRIC_TEMPLATE, SECRET
from coalmine.notify.alerter import ResolvedAlertProvider, resolve_alert_provider
from coalmine.scheduler.ports import AnalysisStatus

if TYPE_CHECKING:
    from coalmine.scheduler.ports import Clock, MetricsSink, Recorder, StatusWriter

log = logging.getLogger("coalmine.canary")

CACHE_CURRENT_WAIT_SECONDS = 10.0
"""How long a status write waits for the Canary cache to re-list after a lost connection."""


WrittenHook = Callable[[Object, Canary], None]
"""(the Canary our status write made, the canary parsed from it): told before the write reaches
the cache and its listeners."""


def canary_object(canary: Canary) -> Object:
    """What an Event's involvedObject names of the canary: a dump of the whole model cost a
    twentieth of an analysing cycle for six fields."""
    meta = canary.metadata
    metadata = {
        "name": meta.name,
        "namespace": meta.namespace,
        "uid": meta.uid,
        "resourceVersion": meta.resource_version,
    }
    return {
        "apiVersion": canary.api_version,
        "kind": canary.kind,
        "metadata": {key: value for key, value in metadata.items() if value is not None},
    }


class KubeStatusWriter:
    """Persists the status the scheduler computed, through the status subresource.

    A merge patch of the whole status with explicit nulls for cleared fields: it cannot lose a
    race on resourceVersion (the scheduler already decided on the complete status), and fields
    the scheduler cleared (a session-affinity cookie) are removed rather than left behind.

    A status is only written onto the object it was derived from: the Canary cache must be
    current (re-listed after a lost connection) and hold the same uid, and the patch carries the
    uid, which a real API server checks; so a Canary deleted and re-created (or restored with
    other state) never receives the previous run's status. A failed write is a `RequestFailed`
    naming verb and object, and a skipped one a `StaleObject`.
    """

    def __init__(
        self,
        api: KubeApi,
        caches: Caches,
        *,
        version_precondition: bool = False,
        on_written: WrittenHook | None = None,
    ) -> None:
        self.api = api
        self.caches = caches
        self.version_precondition = version_precondition
        self.on_written = on_written

    async def _check_current(self, canary: Canary) -> None:
        informer = self.caches[CANARY]
        where = f"canary {canary.key}"
        if not await informer.wait_current(CACHE_CURRENT_WAIT_SECONDS):
            raise StaleObject(f"status of {where} not written: the Canary cache is re-listing")
        cached = informer.get(canary.name, canary.namespace)
        uid = canary.metadata.uid or ""
        if cached is None or (uid and uid_of(cached) != uid):
            raise StaleObject(
                f"status of {where} not written: the object it was derived from "
                f"(uid {uid or '?'}) is gone"
            )

    async def write_status(self, canary: Canary, status: CanaryStatus) -> Canary:
        await self._check_current(canary)
        patch: dict[str, object] = {"status": status.model_dump(by_alias=True, mode="json")}
        if canary.metadata.uid:
            patch["metadata"] = {"uid": canary.metadata.uid}
        if self.version_precondition and canary.metadata.resource_version:
            # Sharded replicas: a writer that lost the canary to another replica mid-cycle fails
            # (409) on the new owner's write instead of overwriting it.
            meta = {"uid": canary.metadata.uid} if canary.metadata.uid else {}
            patch["metadata"] = {**meta, "resourceVersion": canary.metadata.resource_version}
        try:
            written = await self.api.patch(
                CANARY, canary.name, patch, canary.namespace, status=True
            )
        except REQUEST_ERRORS as error:
            raise RequestFailed("patch", f"canaries/status {canary.key}", error) from error
        # New objects, not edits: the canary passed in may be the controller's remembered verdict.
        metadata = canary.metadata.model_copy(
            update={"resource_version": written.get("metadata", {}).get("resourceVersion")}
        )
        updated = canary.model_copy(
            update={
                "status": CanaryStatus.model_validate(written.get("status") or {}),
                "metadata": metadata,
            }
        )
        if self.on_written is not None:
            self.on_written(written, updated)
        await self.caches[CANARY].observe(written)
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
        reads.spoil()  # a decision by the time of day is not repeated from cached reads
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
        """A provider's credentials, as `prefetch` read them at the start of the cycle."""
        obj = self.caches.on_demand_cache(SECRET).last_known(name, namespace)
        return decode_secret(obj) if obj is not None else None

    async def prefetch(self, canary: Canary) -> None:
        """Read the Secrets the canary's metric templates name (one GET each while stale).

        Secrets are read on demand, never watched; the analysis reads credentials synchronously,
        so they are fetched once per cycle before it starts.
        """
        analysis = canary.spec.analysis
        secrets = self.caches.on_demand_cache(SECRET)
        for metric in (analysis.metrics if analysis else None) or []:
            if metric.template_ref is None:
                continue
            namespace = metric.template_ref.namespace or canary.namespace
            template = self.metric_template(namespace, metric.template_ref.name)
            if template is None or template.spec.provider.secret_ref is None:
                continue
            await secrets.refresh(template.spec.provider.secret_ref.name, namespace)

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
                    found = await self.caches.on_demand_cache(SECRET).refresh(
                        provider.spec.secret_ref.name, namespace
                    )
                    secret = decode_secret(found) if found is not None else None
                resolved.append(resolve_alert_provider(alert, provider, secret))
            except (ManifestError, ValueError) as error:
                log.warning("alert provider of canary %s unusable: %s", canary.key, error)
            except REQUEST_ERRORS as error:
                log.warning(
                    "alert provider of canary %s: cannot read its secret: %s",
                    canary.key,
                    describe(error),
                )
        return resolved


if TYPE_CHECKING:
    _STATUS_WRITER: type[StatusWriter] = KubeStatusWriter
    _RECORDER: type[Recorder] = CanaryRecorder
    _METRICS_SINK: type[MetricsSink] = PrometheusSink
    _CLOCK: type[Clock] = SystemClock
