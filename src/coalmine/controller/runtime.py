"""The operator's runtime: caches, one job per valid Canary, leader election, graceful stop.

Data flows one way. Informers fill the caches; a Canary event (validated on every change)
starts, retunes or stops that canary's job; a change of a target triggers the job at once; each
job cycle reads the canary from the cache and hands it to the scheduler, whose writes are fed
back into the cache. A user's mistake (an invalid Canary, two canaries on one target) becomes a
Warning event and a status condition on that canary alone; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.api.validation import ManifestError, parse_canary
from coalmine.controller.adapters import (
    CacheSources,
    CanaryRecorder,
    KubeStatusWriter,
    PrometheusSink,
    SystemClock,
    canary_object,
)
from coalmine.controller.http import start_http
from coalmine.controller.jobs import JobManager
from coalmine.controller.metrics import ControllerMetrics
from coalmine.controller.seams import ControllerSeams
from coalmine.controller.settings import Settings
from coalmine.hooks.client import create_session
from coalmine.hooks.webhooks import WebhookClient
from coalmine.kube.api import KubeApi, KubeApiError, NotFound, Object, load_config
from coalmine.kube.cache import Caches, object_key
from coalmine.kube.context import ClusterContext
from coalmine.kube.events import EventRecorder
from coalmine.kube.kinds import (
    ALERT_PROVIDER,
    CANARY,
    DAEMON_SET,
    DEPLOYMENT,
    METRIC_TEMPLATE,
    SECRET,
    SERVICE,
    Kind,
)
from coalmine.kube.lease import LeaderElector, LeaseTimings
from coalmine.notify.alerter import Alerter, GlobalNotifierSettings, global_notifier
from coalmine.scheduler import Dependencies, Scheduler, SchedulerConfig
from coalmine.scheduler.status import initial_status
from coalmine.scheduler.timing import (
    canaries_per_namespace,
    duplicate_target_message,
    job_interval,
)

log = logging.getLogger(__name__)

TARGET_KINDS: dict[str, Kind] = {"Deployment": DEPLOYMENT, "DaemonSet": DAEMON_SET, "Service": SERVICE}
VALID_CONDITION = "Valid"
SHUTDOWN_GRACE_SECONDS = 30.0


class StartupError(RuntimeError):
    """The controller cannot run at all (CRDs missing, API server unreachable)."""


@dataclass
class _Known:
    """What the runtime remembers about a canary between events (never decisions)."""

    canary: Canary
    target: tuple[str, str, str]
    refused_reason: str = ""


@dataclass
class Controller:
    settings: Settings
    metrics: ControllerMetrics = field(init=False)
    http_port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.metrics = ControllerMetrics(self.settings.mesh_provider)
        self.jobs = JobManager()
        self._known: dict[str, _Known] = {}
        self._ready = False
        self._stopping = asyncio.Event()
        self._api: KubeApi | None = None
        self._caches: Caches | None = None
        self._scheduler: Scheduler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._recorder: CanaryRecorder | None = None
        self._status: KubeStatusWriter | None = None
        self.on_ready: Callable[[], None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def is_ready(self) -> bool:
        return self._ready

    def stop(self) -> None:
        """Ask the controller to finish the cycles in flight and exit (SIGTERM)."""
        self._stopping.set()

    async def run(self) -> int:
        """Serve until stopped; the exit code (1 when leadership was lost, as Flagger)."""
        settings = self.settings
        self._api = KubeApi(load_config(settings.kubeconfig or None, settings.kubeconfig_context or None))
        self._caches = Caches(self._api, settings.namespace or None)
        host, port = settings.listen_host_port
        runner, self.http_port = await start_http(self.metrics, self.is_ready, host, port)
        self._session = create_session()
        try:
            await self._check_crds()
            if settings.enable_leader_election:
                elector = LeaderElector(
                    self._api,
                    settings.lease_namespace,
                    timings=LeaseTimings(
                        settings.leader_election_lease,
                        settings.leader_election_renew_deadline,
                        settings.leader_election_retry,
                    ),
                )
                stopped_cleanly = await self._run_until_stopped(elector.run(self._lead))
                return 0 if stopped_cleanly or self._stopping.is_set() else 1
            await self._run_until_stopped(self._lead())
            return 0
        finally:
            await self.jobs.stop_all()
            await self._caches.stop()
            await self._session.close()
            await self._api.close()
            await runner.cleanup()

    async def _run_until_stopped(self, work: Any) -> bool:
        """Run `work` until it ends or a stop is asked; True when the stop was asked."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            await self.jobs.drain(SHUTDOWN_GRACE_SECONDS)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return True
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        task.result()
        return False

    async def _check_crds(self) -> None:
        assert self._api is not None
        for kind in (CANARY, METRIC_TEMPLATE, ALERT_PROVIDER):
            try:
                await self._api.list(kind, self.settings.namespace or None)
            except (KubeApiError, NotFound) as error:
                raise StartupError(f"{kind.kind} CRD is not registered: {error}") from error

    async def _lead(self) -> None:
        """Everything only the leader does: caches with subscriptions, jobs, the control loop."""
        assert self._api is not None and self._caches is not None and self._session is not None
        api, caches, settings = self._api, self._caches, self.settings
        sources = CacheSources(caches)
        webhooks = WebhookClient(self._session, event_webhook_url=settings.event_webhook)
        self._recorder = CanaryRecorder(EventRecorder(api), webhooks)
        self._status = KubeStatusWriter(api, caches)
        sink = PrometheusSink(self.metrics)
        ctx = ClusterContext(
            api=api,
            caches=caches,
            include_label_prefixes=settings.include_label_prefix,
            selector_labels=settings.selector_labels,
            config_tracking=settings.enable_config_tracking,
            ingress_annotations_prefix=settings.ingress_annotations_prefix,
            ingress_class=settings.ingress_class,
        )
        analyzer = MetricAnalyzer(
            self._session,
            sources,
            AnalysisSettings(
                metrics_server=settings.metrics_server, mesh_provider=settings.mesh_provider
            ),
            record=sink.record_metric,
        )
        alerter = Alerter(
            self._session,
            global_notifier=global_notifier(
                GlobalNotifierSettings(
                    slack_url=settings.slack_url,
                    slack_token=settings.slack_token,
                    slack_proxy_url=settings.slack_proxy_url,
                    slack_user=settings.slack_user,
                    slack_channel=settings.slack_channel,
                    msteams_url=settings.msteams_url,
                    msteams_proxy_url=settings.msteams_proxy_url,
                )
            ),
            cluster_name=settings.cluster_name,
            resolve_providers=sources.alert_providers,
        )
        self._scheduler = Scheduler(
            Dependencies(
                seams=ControllerSeams(ctx),
                analyzer=analyzer,
                webhooks=webhooks,
                alerts=alerter,
                recorder=self._recorder,
                status=self._status,
                metrics=sink,
                clock=SystemClock(),
            ),
            SchedulerConfig(mesh_provider=settings.mesh_provider),
        )
        caches[CANARY].subscribe(self._on_canary)
        for kind in TARGET_KINDS.values():
            caches[kind].subscribe(self._on_target)
        await caches.start(CANARY, METRIC_TEMPLATE, ALERT_PROVIDER, SECRET, *TARGET_KINDS.values())
        self._ready = True
        if self.on_ready is not None:
            self.on_ready()
        await self._control_loop()

    async def _control_loop(self) -> None:
        """Flagger's scheduler tick: totals and duplicate-target errors; jobs follow events."""
        assert self._caches is not None
        while True:
            canaries = [known.canary for known in self._known.values()]
            self.metrics.set_canary_totals(canaries_per_namespace(canaries))
            await asyncio.sleep(self.settings.control_loop_interval)

    # --- events -----------------------------------------------------------------------------

    async def _on_canary(self, event_type: str, obj: Object) -> None:
        namespace, name = object_key(obj)
        key = f"{name}.{namespace}"
        if event_type == "DELETED":
            self._known.pop(key, None)
            await self.jobs.remove(key)
            return
        try:
            canary = parse_canary(
                obj,
                no_cross_namespace_refs=self.settings.no_cross_namespace_refs,
                mesh_provider=self.settings.mesh_provider,
            )
        except ManifestError as error:
            await self._refuse(obj, key, "InvalidSpec", "; ".join(str(p) for p in error.errors))
            return
        target = (canary.spec.target_ref.kind, canary.namespace, canary.spec.target_ref.name)
        owner = self._owner_of(target, key, obj)
        if owner is not None:
            await self._refuse(
                obj,
                key,
                "DuplicateTarget",
                f"{canary.spec.target_ref.kind.lower()} {target[2]}.{target[1]} is already the "
                f"target of canary {owner}; {duplicate_target_message(f'{target[2]}.{target[1]}')}",
            )
            return
        self._known[key] = _Known(canary, target)
        if canary.metadata.deletion_timestamp:
            await self._finalize(canary, key)
            return
        await self._ensure_finalizer(canary)
        if canary.status is None or canary.status.conditions is None or self._has_condition(obj):
            await self._write_initial_status(canary)
        job = self.jobs.ensure(
            key, job_interval(canary, self.settings.min_analysis_interval), self._cycle_for(key)
        )
        if event_type == "MODIFIED":
            job.trigger()

    def _owner_of(self, target: tuple[str, str, str], key: str, obj: Object) -> str | None:
        """The canary that already releases `target`, when it is not this one (oldest wins)."""
        created = obj.get("metadata", {}).get("creationTimestamp") or ""
        for other_key, known in self._known.items():
            if other_key == key or known.target != target:
                continue
            other_created = known.canary.metadata.creation_timestamp or ""
            if (other_created, other_key) < (created, key):
                return other_key
        return None

    async def _on_target(self, event_type: str, obj: Object) -> None:
        """A new revision starts a cycle within a second instead of at the next tick."""
        if event_type != "MODIFIED":
            return
        namespace, name = object_key(obj)
        kind = obj.get("kind", "")
        for key, known in self._known.items():
            if known.target == (kind, namespace, name):
                self.jobs.trigger(key)

    # --- writes outside the scheduler ---------------------------------------------------------

    def _has_condition(self, obj: Object) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(condition.get("type") == VALID_CONDITION for condition in conditions)

    async def _refuse(self, obj: Object, key: str, reason: str, message: str) -> None:
        """An unusable canary: no job, a Warning event and a `Valid=False` condition, once."""
        await self.jobs.remove(key)
        self._known.pop(key, None)
        assert self._api is not None and self._recorder is not None and self._caches is not None
        status = obj.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("type") == VALID_CONDITION]
        if conditions and conditions[0].get("message") == message:
            return
        namespace, name = object_key(obj)
        log.warning("canary %s refused: %s", key, message, extra={"canary": key})
        await self._recorder.events.record(obj, "Warning", message)
        condition = {
            "type": VALID_CONDITION,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastUpdateTime": _now(),
            "lastTransitionTime": _now(),
        }
        try:
            written = await self._api.patch(
                CANARY, name, {"status": {"conditions": [condition]}}, namespace, status=True
            )
            await self._caches[CANARY].observe(written)
        except (KubeApiError, NotFound) as error:
            log.warning("could not record the refusal of canary %s: %s", key, error)

    async def _write_initial_status(self, canary: Canary) -> None:
        assert self._status is not None
        status = initial_status(canary.status, canary.spec.target_ref.kind, SystemClock().now())
        await self._status.write_status(canary, status)

    async def _ensure_finalizer(self, canary: Canary) -> None:
        """revertOnDeletion adds the finalizer; turning it off removes it at once."""
        assert self._api is not None and self._caches is not None
        finalizers = list(canary.metadata.finalizers or [])
        wanted = bool(canary.spec.revert_on_deletion)
        if wanted == (naming.FINALIZER in finalizers):
            return
        if wanted:
            finalizers.append(naming.FINALIZER)
        else:
            finalizers.remove(naming.FINALIZER)
        written = await self._api.patch(
            CANARY, canary.name, {"metadata": {"finalizers": finalizers}}, canary.namespace
        )
        await self._caches[CANARY].observe(written)

    async def _finalize(self, canary: Canary, key: str) -> None:
        await self.jobs.remove(key)
        if naming.FINALIZER not in (canary.metadata.finalizers or []):
            return
        assert self._scheduler is not None and self._api is not None
        if not await self._scheduler.finalize(canary):
            return
        finalizers = [f for f in canary.metadata.finalizers or [] if f != naming.FINALIZER]
        with contextlib.suppress(NotFound):
            await self._api.patch(
                CANARY, canary.name, {"metadata": {"finalizers": finalizers}}, canary.namespace
            )

    # --- cycles -----------------------------------------------------------------------------

    def _cycle_for(self, key: str) -> Callable[[], Any]:
        async def cycle() -> None:
            assert self._caches is not None and self._scheduler is not None
            known = self._known.get(key)
            if known is None:
                return
            name, _, namespace = key.partition(".")
            obj = self._caches[CANARY].get(name, namespace)
            if obj is None:
                return
            try:
                canary = parse_canary(
                    obj,
                    no_cross_namespace_refs=self.settings.no_cross_namespace_refs,
                    mesh_provider=self.settings.mesh_provider,
                )
            except ManifestError:
                return
            if canary.metadata.deletion_timestamp:
                return
            await self._scheduler.advance(canary)

        return cycle


def _now() -> str:
    return SystemClock().now().strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["Controller", "StartupError", "canary_object"]
