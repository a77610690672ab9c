"""The controller's Prometheus metrics, with Flagger's names and labels.

Dashboards and alerts written for Flagger (`flagger_canary_status`, `flagger_canary_weight`, …)
work unchanged. Each controller owns its registry so that tests and several controllers in one
process never share series. All `name` labels are the target's name, as in Flagger.

The exposition follows Go's client where a query could see the difference: histogram buckets
are Go's default set with Go's label text (`le="1"`, not `le="1.0"`), no `_created` series, and
the `process_*` series of Go's default registry.
"""

from __future__ import annotations

import math
from collections import Counter as Counter_
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from coalmine import __version__
from coalmine.analysis.gotemplate.fmt import go_float
from coalmine.api import naming
from coalmine.controller.memory import collector_pauses, track_collector_pauses

if TYPE_CHECKING:
    from coalmine.api.models import Canary, CanaryWebhook, Phase
    from coalmine.kube.meshcluster import MeshCluster
    from coalmine.scheduler.ports import WebhookCaller

GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""client_golang's `prometheus.DefBuckets`, which Flagger's duration histogram uses."""

STATUS_PROGRESSING = 0
STATUS_OK = 1
STATUS_FAILED = 2


CYCLE_LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def status_value(phase: str) -> int:
    """0 while analysing, 2 after a rollback, 1 otherwise: Flagger's `flagger_canary_status`."""
    if phase == "Progressing":
        return STATUS_PROGRESSING
    if phase == "Failed":
        return STATUS_FAILED
    return STATUS_OK


class GoHistogram(Histogram):
    """A histogram whose `le` labels read as Go's client writes them (`1`, `10`, `0.005`):
    PromQL matches label text, so `le="1"` in a Flagger dashboard must find the bucket."""

    def _child_samples(self) -> Iterable[Sample]:
        return tuple(
            sample._replace(labels={**sample.labels, "le": go_float(float(sample.labels["le"]))})
            if "le" in sample.labels
            else sample
            for sample in super()._child_samples()
        )


class ControllerMetrics:
    def __init__(self, mesh_provider: str, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # Go writes no `_created`
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        track_collector_pauses()
        self.registry.register(_CollectorPauses())
        info = Gauge(
            "flagger_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=self.registry,
        )
        info.labels(version=__version__, mesh_provider=mesh_provider).set(1)
        self.canary_total = Gauge(
            "flagger_canary_total",
            "Total number of canary object",
            ["namespace"],
            registry=self.registry,
        )
        self.status = Gauge(
            "flagger_canary_status",
            "Last canary analysis result",
            ["name", "namespace"],
            registry=self.registry,
        )
        self.weight = Gauge(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            ["workload", "namespace"],
            registry=self.registry,
        )
        self.metric_analysis = Gauge(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            ["name", "namespace", "metric"],
            registry=self.registry,
        )
        # Not a Flagger metric: every measured value, judged metrics included (docs/analysis.md).
        self.metric_value = Gauge(
            "coalmine_canary_metric_value",
            "Last measured value per canary metric (the canary side of a judged metric)",
            ["name", "namespace", "metric"],
            registry=self.registry,
        )
        self.duration = GoHistogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            registry=self.registry,
            buckets=GO_DEFAULT_BUCKETS,
        )
        self.successes = Counter(
            "flagger_canary_successes",
            "Total number of canary successes",
            ["name", "namespace", "deployment_strategy", "analysis_status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "flagger_canary_failures",
            "Total number of canary failures",
            ["name", "namespace", "deployment_strategy", "analysis_status"],
            registry=self.registry,
        )

        self.refused = Gauge(
            "coalmine_canary_refused",
            "1 for each canary the controller refuses to run, with the reason (Valid=False)",
            ["name", "namespace", "reason"],
            registry=self.registry,
        )
        self.failed_checks = Gauge(
            "coalmine_canary_failed_checks",
            "Failed checks of the run in progress (status.failedChecks)",
            ["name", "namespace"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "coalmine_canary_webhook_failures",
            "Webhook calls that did not answer 2xx (gates that hold count too)",
            ["name", "namespace", "webhook", "type"],
            registry=self.registry,
        )
        self.cycles = Counter(
            "coalmine_canary_cycles",
            "Cycles run by the per-canary jobs (all canaries, failed cycles included)",
            registry=self.registry,
        )
        self.cycles_unchanged = Counter(
            "coalmine_canary_cycles_unchanged",
            "Cycles of canaries at rest that found every object the last cycle read unchanged, "
            "and so did not run its steps again",
            registry=self.registry,
        )
        self.cycle_lag = Histogram(
            "coalmine_canary_cycle_lag_seconds",
            "Seconds from the moment a canary's cycle was due (interval tick or trigger) to its start",
            registry=self.registry,
            buckets=CYCLE_LAG_BUCKETS,
        )

    def count_cycle(self, lag: float = 0.0) -> None:
        """Not Flagger metrics: with `coalmine_kube_requests_total` the count gives the API
        requests and (with the process CPU time) the cost of one canary cycle; the lag shows
        whether one process keeps up with its canaries (a busy event loop starts cycles late)."""
        self.cycles.inc()
        self.cycle_lag.observe(lag)

    def set_status(self, target: str, namespace: str, phase: str) -> None:
        self.status.labels(name=target, namespace=namespace).set(status_value(phase))

    def set_weights(self, target: str, namespace: str, primary: int, canary: int) -> None:
        self.weight.labels(workload=naming.primary_name(target), namespace=namespace).set(primary)
        self.weight.labels(workload=target, namespace=namespace).set(canary)

    def set_metric_value(self, target: str, namespace: str, metric: str, value: float) -> None:
        self.metric_analysis.labels(name=target, namespace=namespace, metric=metric).set(value)
        self.metric_value.labels(name=target, namespace=namespace, metric=metric).set(value)

    def observe_duration(self, target: str, namespace: str, seconds: float) -> None:
        self.duration.labels(name=target, namespace=namespace).observe(seconds)

    def count_success(self, target: str, namespace: str, strategy: str, skipped: bool) -> None:
        self.successes.labels(
            name=target,
            namespace=namespace,
            deployment_strategy=strategy,
            analysis_status="skipped" if skipped else "completed",
        ).inc()

    def count_failure(self, target: str, namespace: str, strategy: str) -> None:
        self.failures.labels(
            name=target,
            namespace=namespace,
            deployment_strategy=strategy,
            analysis_status="completed",
        ).inc()

    def set_canary_totals(self, per_namespace: dict[str, int]) -> None:
        """Flagger never resets a namespace's total to 0; neither do we."""
        for namespace, count in per_namespace.items():
            self.canary_total.labels(namespace=namespace).set(count)

    def set_canaries(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """`flagger_canary_total` counts every Canary object, refused ones included (they are
        canaries a user applied), and `coalmine_canary_refused` names the refused ones."""
        from coalmine.api.refusals import refusal

        totals: Counter_[str] = Counter_()
        # Rebuilt whole (no await in between, so a scrape never sees them half-built): the
        # series of deleted or fixed canaries disappear.
        self.refused.clear()
        self.failed_checks.clear()
        for obj in objects:
            meta = obj.get("metadata") or {}
            namespace = str(meta.get("namespace") or "")
            totals[namespace] += 1
            target = str(((obj.get("spec") or {}).get("targetRef") or {}).get("name") or "")
            failed = (obj.get("status") or {}).get("failedChecks")
            if target and isinstance(failed, int):
                self.failed_checks.labels(name=target, namespace=namespace).set(failed)
            found = refusal(obj)
            if found is not None:
                self.refused.labels(
                    name=str(meta.get("name") or ""), namespace=namespace, reason=found.reason
                ).set(1)
        self.set_canary_totals(dict(totals))

    def count_webhook_failure(self, target: str, namespace: str, webhook: str, kind: str) -> None:
        self.webhook_failures.labels(
            name=target, namespace=namespace, webhook=webhook, type=kind
        ).inc()

    def watch_api_requests(self, requests: Mapping[str, int]) -> None:
        """Export the client's request counts (`verb kind` → n) as `coalmine_kube_requests_total`.

        Not a Flagger metric: it is how the scale benchmark measures API requests per cycle, and
        how an operator sees a controller that talks to the API server more than it should.
        """
        self.registry.register(_RequestsCollector(requests))

    def watch_mesh_cluster(self, cluster: MeshCluster) -> None:
        """`--kubeconfig-service-mesh`: whether the mesh cluster answers, how often it did not,
        and the requests made to it. Not Flagger metrics: Flagger says nothing when its mesh
        client fails, beyond the router's error."""
        labels = {"server": cluster.server}
        reachable = Gauge(
            "coalmine_mesh_cluster_reachable",
            "1 while the mesh cluster (--kubeconfig-service-mesh) answers, else 0",
            ["server"],
            registry=self.registry,
        )
        failures = Counter(
            "coalmine_mesh_cluster_failures",
            "Requests and probes the mesh cluster did not answer",
            ["server"],
            registry=self.registry,
        )
        reachable.labels(**labels).set(1 if cluster.reachable else 0)
        failures.labels(**labels)
        cluster.on_change.append(lambda up: reachable.labels(**labels).set(1 if up else 0))
        cluster.on_failure.append(failures.labels(**labels).inc)
        self.registry.register(
            _RequestsCollector(cluster.api.requests, "coalmine_mesh_kube_requests", "mesh cluster")
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RequestsCollector(Collector):
    def __init__(
        self,
        requests: Mapping[str, int],
        name: str = "coalmine_kube_requests",
        server: str = "Kubernetes API server",
    ) -> None:
        self.requests = requests
        self.name = name
        self.server = server

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            self.name, f"Requests made to the {self.server}", labels=["verb", "resource"]
        )
        for key, count in sorted(self.requests.items()):
            verb, _, resource = key.partition(" ")
            family.add_metric([verb, resource], count)
        yield family


class _CollectorPauses(Collector):
    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "coalmine_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation",
            labels=["generation"],
        )
        for generation, pauses in enumerate(collector_pauses()):
            buckets = [
                ("+Inf" if math.isinf(bound) else go_float(bound), count)
                for bound, count in pauses.cumulative()
            ]
            family.add_metric([str(generation)], buckets, pauses.total)
        yield family


class CountingWebhooks:
    """The scheduler's `WebhookCaller`, counting each call that fails (the failure still raises)."""

    def __init__(self, inner: WebhookCaller, metrics: ControllerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def call(self, canary: Canary, webhook: CanaryWebhook, phase: Phase) -> None:
        try:
            await self.inner.call(canary, webhook, phase)
        except Exception:
            self.metrics.count_webhook_failure(
                canary.spec.target_ref.name,
                canary.namespace,
                webhook.name,
                webhook.type or "rollout",
            )
            raise
