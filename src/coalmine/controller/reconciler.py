"""The canary reconciler: one job per valid Canary, fed by the caches.

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
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.controller.actions import KubeActionLog, verb_annotations_changed
from coalmine.controller.adapters import (
    CacheSources,
    CanaryRecorder,
    KubeStatusWriter,
    PrometheusSink,
    SystemClock,
)
from coalmine.controller.jobs import JobManager
from coalmine.controller.known import _Known, _KnownCanaries
from coalmine.controller.memory import Refreezer, freeze_long_lived
from coalmine.controller.metrics import ControllerMetrics, CountingWebhooks
from coalmine.controller.seams import ControllerSeams
from coalmine.controller.settings import Settings
from coalmine.controller.sharding import (
    NO_LEDGER,
    JobOwnership,
    ledger_for,
)
from coalmine.controller.verdicts import Judgements
from coalmine.hooks.webhooks import WebhookClient
from coalmine.kube.api import KubeApi, KubeApiError, NotFound, Object
from coalmine.kube.cache import Caches, object_key
from coalmine.kube.context import ClusterContext
from coalmine.kube.events import EventRecorder
from coalmine.kube.kinds import (
    ALERT_PROVIDER,
    CANARY,
    METRIC_TEMPLATE,
    SERVICE,
    Kind,
    kind_for,
)
from coalmine.kube.meshcluster import MeshCluster
from coalmine.kube.reads import Trace, tracing
from coalmine.kube.shards import ShardMembership, acting_for
from coalmine.notify.alerter import Alerter, GlobalNotifierSettings, global_notifier
from coalmine.routers.verdict import Options as VerdictOptions
from coalmine.routers.verdict import Verdict
from coalmine.scheduler import Dependencies, Scheduler, SchedulerConfig
from coalmine.scheduler.status import initial_status
from coalmine.scheduler.timing import (
    duplicate_target_message,
    job_interval,
)
from coalmine.targets.hashing import revision_hash
from coalmine.targets.kinds import TARGET_KINDS as TARGET_KIND_TABLE
from coalmine.targets.kinds import target_key

log = logging.getLogger(__name__)

# Every target kind by its table key (`coalmine.targets.kinds`); the runtime starts watching the
# `always_watched` ones, the others once a canary's target controller reads them.
TARGET_KINDS: dict[str, Kind] = {
    name: kind_for(info.api_version, info.kind) for name, info in TARGET_KIND_TABLE.items()
}
WATCHED_TARGET_KINDS: tuple[Kind, ...] = tuple(
    TARGET_KINDS[name] for name, info in TARGET_KIND_TABLE.items() if info.always_watched
)
VALID_CONDITION = "Valid"


class CanaryReconciler:
    """What the leader runs: caches with subscriptions, one job per usable canary, the tick."""

    def __init__(
        self,
        settings: Settings,
        api: KubeApi,
        caches: Caches,
        session: aiohttp.ClientSession,
        metrics: ControllerMetrics,
        mesh: MeshCluster | None = None,
        membership: ShardMembership | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.shard = JobOwnership(membership)
        identity = membership.identity if membership is not None else "single"
        self.ledger = ledger_for(settings.cycle_ledger, identity)
        if membership is not None:
            membership.on_change(self.shard.wanted.set)
        self.caches = caches
        self.metrics = metrics
        self.jobs = JobManager(on_cycle=metrics.count_cycle, threadiness=settings.threadiness)
        self.ready = False
        self._synced = asyncio.Event()
        self._known = _KnownCanaries()
        # Canaries refused for a reason a change of their target may remove (key -> target).
        self._refused: dict[str, tuple[str, str, str]] = {}
        # The spec hash of each target of a known canary: a new revision vs. any other change.
        self._revisions: dict[tuple[str, str, str], str | None] = {}
        sources = CacheSources(caches)
        self.sources = sources
        webhooks = WebhookClient(session, event_webhook_url=settings.event_webhook)
        self.recorder = CanaryRecorder(EventRecorder(api), webhooks)
        # Sharded, a status write also names the resourceVersion it was derived from: a replica
        # that lost the canary mid-cycle fails on the new owner's write instead of overwriting it.
        self.status = KubeStatusWriter(
            api,
            caches,
            version_precondition=membership is not None,
            on_written=lambda written, canary: self._judgements.carry(written, canary),
        )
        sink = PrometheusSink(metrics)
        self.ctx = ClusterContext(
            api=api,
            caches=caches,
            include_label_prefixes=settings.include_label_prefix,
            selector_labels=settings.selector_labels,
            config_tracking=settings.enable_config_tracking,
            ingress_annotations_prefix=settings.ingress_annotations_prefix,
            ingress_class=settings.ingress_class,
            mesh_name=settings.mesh_name,
            mesh=mesh,
        )
        analyzer = MetricAnalyzer(
            session,
            sources,
            AnalysisSettings(
                metrics_server=settings.metrics_server, mesh_provider=settings.mesh_provider
            ),
            record=sink.record_metric,
        )
        alerter = Alerter(
            session,
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
        self.seams = ControllerSeams(self.ctx)
        self.verdict_options = VerdictOptions(
            mesh_provider=settings.mesh_provider,
            no_cross_namespace_refs=settings.no_cross_namespace_refs,
            ingress_class=settings.ingress_class,
            ingress_annotations_prefix=settings.ingress_annotations_prefix,
            mesh_name=settings.mesh_name,
        )
        self._judgements = Judgements(self.verdict_options, self._target_service)
        self.scheduler = Scheduler(
            Dependencies(
                seams=self.seams,
                analyzer=analyzer,
                webhooks=CountingWebhooks(webhooks, metrics),
                alerts=alerter,
                recorder=self.recorder,
                status=self.status,
                metrics=sink,
                clock=SystemClock(),
                actions=KubeActionLog(api, caches),
            ),
            SchedulerConfig(mesh_provider=settings.mesh_provider),
        )

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        rebalancing = asyncio.create_task(self.shard.keep_balanced(self._rebalance))
        self.caches[CANARY].subscribe(self._on_canary)
        for kind in TARGET_KINDS.values():
            self.caches[kind].subscribe(self._on_target)
        await self.caches.start(CANARY, METRIC_TEMPLATE, ALERT_PROVIDER, *WATCHED_TARGET_KINDS)
        freeze_long_lived()
        refreezer = Refreezer()
        self._synced.set()
        self.ready = True
        if on_ready is not None:
            on_ready()
        try:
            while True:
                # Every Canary object, refused ones included (docs/metrics.md).
                self.metrics.set_canaries(self.caches[CANARY].list())
                refreezer.tick()
                await asyncio.sleep(self.settings.control_loop_interval)
        finally:
            rebalancing.cancel()
            await self.jobs.stop_all()

    # --- events -----------------------------------------------------------------------------

    async def _on_canary(self, event_type: str, obj: Object) -> None:
        namespace, name = object_key(obj)
        key = f"{name}.{namespace}"
        with acting_for(key):
            await self._handle_canary(event_type, obj, key)

    async def _rebalance(self) -> None:
        """Ownership moved (a replica joined or left): start and stop only the canaries moved."""
        moved = await self.shard.rebalance_canaries(
            self.caches[CANARY], self._on_canary, self.jobs.remove
        )
        if self.ledger is not None:
            self.ledger.rebalanced(*moved)

    async def _handle_canary(self, event_type: str, obj: Object, key: str) -> None:
        if event_type == "DELETED":
            self._judgements.forget(obj)
            gone = self._known.pop(key, None)
            self._refused.pop(key, None)
            await self.jobs.remove(key)
            if gone is not None:
                await self._rejudge(gone.target)
            return
        if self._settled(key) and self._status_write_of_a_running_canary(obj):
            return
        verdict = self._judge(obj)
        canary, refusal = verdict.canary, verdict.refusal
        if canary is None:
            assert refusal is not None
            await self._refuse(obj, key, refusal.reason, refusal.message)
            return
        ref = canary.spec.target_ref
        target = (target_key(ref.api_version, ref.kind), canary.namespace, ref.name)
        owner = self._owner_of(target, key, obj)
        if owner is not None:
            await self._refuse_duplicate(obj, key, target, owner)
            return
        if refusal is not None:
            self._refused[key] = target
            await self._refuse(obj, key, refusal.reason, refusal.message)
            return
        self._refused.pop(key, None)
        previous = self._known.get(key)
        self._known[key] = _Known(canary, target)
        await self._displace_newer(target, key)
        owned = self.shard.mine(key)
        self.shard.note(key, owned)
        if not owned:
            # Known here (duplicate targets are judged on every replica); run by its owner.
            await self.jobs.remove(key)
            return
        if canary.metadata.deletion_timestamp:
            await self._finalize(canary, key)
            return
        await self._ensure_finalizer(canary)
        if canary.status is None or canary.status.conditions is None or _refused(obj):
            await self.status.write_status(
                canary, initial_status(canary.status, ref.kind, SystemClock().now())
            )
        job = self.jobs.ensure(
            key, job_interval(canary, self.settings.min_analysis_interval), self._cycle_for(key)
        )
        # A spec change (a new interval, a resumed canary) acts at once; our own status writes,
        # which do not change the generation, must not run cycles back to back.
        if previous is not None and (
            previous.canary.metadata.generation != canary.metadata.generation
            # `coalmine promote|abort|retry|pause|resume`: annotations keep the generation.
            or verb_annotations_changed(previous.canary, canary)
        ):
            job.trigger()

    def _settled(self, key: str) -> bool:
        """Known, and running here or another replica's: a canary that is ours but has no job
        yet (a rebalance hands it over as a changed Canary) is not."""
        return key in self._known and (key in self.jobs or not self.shard.mine(key))

    def _status_write_of_a_running_canary(self, obj: Object) -> bool:
        """A status-only change (a cycle's write coming back, here or on the replica that runs
        it) of a settled canary: nothing to decide. A status without conditions or with a
        refusal is handled in full (initial status, a refusal lifted)."""
        conditions = (obj.get("status") or {}).get("conditions")
        return bool(conditions) and not _refused(obj) and self._judgements.only_status_changed(obj)

    def _judge(self, obj: Object) -> Verdict:
        """The one verdict `coalmine check` reaches too (`routers.verdict.judge`), with the
        target Service read from the cache (remembered while both stay the same objects)."""
        return self._judgements(obj)

    def _target_service(self, canary: Canary) -> Object | None:
        target = canary.spec.target_ref
        if not target.is_core_service:
            return None
        return self.caches[SERVICE].get(target.name, canary.namespace)

    def _owner_of(self, target: tuple[str, str, str], key: str, obj: Object) -> str | None:
        """The canary that releases `target` instead of this one: the oldest; on a tie (same
        second), the one already running keeps it."""
        created = obj.get("metadata", {}).get("creationTimestamp") or ""
        for other_key, known in self._known.releasing(target):
            if other_key != key and (known.canary.metadata.creation_timestamp or "") <= created:
                return other_key
        return None

    async def _displace_newer(self, target: tuple[str, str, str], key: str) -> None:
        """An older canary seen after a newer one (a restart lists in name order) takes the
        target back; the newer one is refused as it would have been."""
        for other_key, _ in list(self._known.releasing(target)):
            if other_key == key:
                continue
            name, _, namespace = other_key.partition(".")
            obj = self.caches[CANARY].get(name, namespace)
            if obj is not None:
                await self._refuse_duplicate(obj, other_key, target, key)

    async def _refuse_duplicate(
        self, obj: Object, key: str, target: tuple[str, str, str], owner: str
    ) -> None:
        where = f"{target[2]}.{target[1]}"
        self._refused[key] = target
        await self._refuse(
            obj,
            key,
            "DuplicateTarget",
            f"spec.targetRef: {target[0]} {where} is already released by canary {owner}; "
            f"{duplicate_target_message(where)}",
        )

    async def _on_target(self, event_type: str, obj: Object) -> None:
        """A new revision starts a cycle within a second instead of at the next tick.

        Only a change of the spec hash the scheduler compares is a revision: metadata (labels,
        annotations) and status writes (a rollout's progress, `collisionCount`) are not, and
        each early cycle would take an analysis step, shortening the analysis to nothing under
        churn. A tracked ConfigMap or Secret change is seen at the next cycle.
        """
        namespace, name = object_key(obj)
        target = (target_key(obj.get("apiVersion"), obj.get("kind")), namespace, name)
        releasing = self._known.releasing(target)
        if event_type == "DELETED" or not releasing:
            # Remembered only for targets of canaries: the hash is not free, the cluster is big.
            self._revisions.pop(target, None)
        else:
            revision = revision_hash(obj)
            new = target not in self._revisions or self._revisions[target] != revision
            self._revisions[target] = revision
            if new and event_type == "MODIFIED":
                for key, _ in releasing:
                    self.jobs.trigger(key)
        if event_type == "MODIFIED":
            await self._rejudge(target)

    async def _rejudge(self, target: tuple[str, str, str]) -> None:
        """Canaries refused because of `target` (it was taken, or not routable) are judged again
        when the target or the canary that held it changes, so they start without a user edit."""
        for key in [k for k, refused_for in self._refused.items() if refused_for == target]:
            name, _, namespace = key.partition(".")
            obj = self.caches[CANARY].get(name, namespace)
            if obj is None:
                self._refused.pop(key, None)
                continue
            await self._on_canary("MODIFIED", obj)

    # --- writes outside the scheduler -------------------------------------------------------

    async def _refuse(
        self, obj: Object, key: str, reason: str, message: str, *, stop_job: bool = True
    ) -> None:
        """An unusable canary: no job, a Warning event and a `Valid=False` condition, once.

        From inside the canary's own cycle the job cannot stop itself (`stop_job=False`): the
        canary is forgotten, so its later cycles do nothing until a change of it is seen.
        """
        if stop_job:
            await self.jobs.remove(key)
        self._known.pop(key, None)
        if not self.shard.mine(key):
            return
        with acting_for(key):
            await self._record_refusal(obj, key, reason, message)

    async def _record_refusal(self, obj: Object, key: str, reason: str, message: str) -> None:
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(
            c.get("type") == VALID_CONDITION and c.get("message") == message for c in conditions
        ):
            return
        namespace, name = object_key(obj)
        log.warning("canary %s refused: %s", key, message, extra={"canary": key})
        await self.recorder.events.record(obj, "Warning", message)
        now = _now()
        condition = {
            "type": VALID_CONDITION,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
        }
        try:
            written = await self.api.patch(
                CANARY, name, {"status": {"conditions": [condition]}}, namespace, status=True
            )
            await self.caches[CANARY].observe(written)
        except (KubeApiError, NotFound) as error:
            log.warning("could not record the refusal of canary %s: %s", key, error)

    async def _ensure_finalizer(self, canary: Canary) -> None:
        """revertOnDeletion adds the finalizer; turning it off removes it at once."""
        finalizers = list(canary.metadata.finalizers or [])
        wanted = bool(canary.spec.revert_on_deletion)
        if wanted == (naming.FINALIZER in finalizers):
            return
        if wanted:
            finalizers.append(naming.FINALIZER)
        else:
            finalizers.remove(naming.FINALIZER)
        written = await self.api.patch(
            CANARY, canary.name, {"metadata": {"finalizers": finalizers}}, canary.namespace
        )
        await self.caches[CANARY].observe(written)

    async def _finalize(self, canary: Canary, key: str) -> None:
        await self.jobs.remove(key)
        if naming.FINALIZER not in (canary.metadata.finalizers or []):
            return
        if not await self.scheduler.finalize(canary):
            return
        finalizers = [f for f in canary.metadata.finalizers or [] if f != naming.FINALIZER]
        with contextlib.suppress(NotFound):
            await self.api.patch(
                CANARY, canary.name, {"metadata": {"finalizers": finalizers}}, canary.namespace
            )

    # --- cycles -----------------------------------------------------------------------------

    def _cycle_for(self, key: str) -> Callable[[], Coroutine[Any, Any, None]]:
        name, _, namespace = key.partition(".")
        # The last cycle, when it ended at rest: while everything it read is unchanged, the
        # next one would find nothing to do again (`kube.reads`). Lives as long as the job.
        rest: Trace | None = None

        async def cycle() -> None:
            nonlocal rest
            # Jobs start as the Canary list arrives; a check must not read a MetricTemplate,
            # AlertProvider or Secret cache that has not listed yet ("not found" would count as a
            # failed check and could roll back a healthy canary after a restart).
            await self._synced.wait()
            if not self.shard.mine(key):
                return  # handed over: the job stops at the rebalance; never write meanwhile
            with acting_for(key), (self.ledger or NO_LEDGER).cycle(key):
                if rest is not None and rest.holds():
                    self.metrics.cycles_unchanged.inc()
                    return
                trace = Trace()
                with tracing(trace):
                    rested = await self._cycle(key, name, namespace)
                rest = trace if rested and not trace.spoiled else None

        return cycle

    async def _cycle(self, key: str, name: str, namespace: str) -> bool:
        """One cycle; True when it ended at rest."""
        obj = self.caches[CANARY].get(name, namespace)
        known = self._known.get(key)
        if obj is None or known is None:
            return False
        # Judged again with synced caches: the target Service may not have been listed when
        # the canary event came, or may since have become something the router cannot reach.
        verdict = self._judge(obj)
        canary, refusal = verdict.canary, verdict.refusal
        if canary is None or canary.metadata.deletion_timestamp:
            return False
        if refusal is not None:
            self._refused[key] = (
                canary.spec.target_ref.kind,
                namespace,
                canary.spec.target_ref.name,
            )
            await self._refuse(obj, key, refusal.reason, refusal.message, stop_job=False)
            return False
        with tracing(None):  # the analysis's Secrets: not an input of a cycle at rest
            await self.sources.prefetch(canary)
        return await self.scheduler.advance(canary)


def _refused(obj: Object) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(condition.get("type") == VALID_CONDITION for condition in conditions)


def _now() -> str:
    return SystemClock().now().strftime("%Y-%m-%dT%H:%M:%SZ")
