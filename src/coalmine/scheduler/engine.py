"""One cycle of a canary's state machine (Flagger's `advanceCanary`), through the seams only.

`Scheduler.advance` runs the 27 steps of Flagger's `advanceCanary` in its order;
`Scheduler.finalize` runs the revertOnDeletion finaliser (Flagger's `finalizer.go`). Every decision
is derived from the canary as read from the API server plus what the seams report (target
fingerprint, live routes), never from memory of an earlier cycle, so a controller restarted at any
instant carries on from the persisted state (docs/state-machine.md explains why each write order is
safe).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime

from coalmine.analysis import AnalysisOutcome, Analyzer, AvailabilityOutcome
from coalmine.analysis.record import final_score_verdict, with_measurements
from coalmine.api import naming, providers
from coalmine.api.hashing import is_foreign_hash, release_checksum
from coalmine.api.models import (
    ANALYSING_PHASES,
    INITIALIZING_PHASES,
    KUBERNETES_PROVIDER_ITERATIONS,
    PRE_PROMOTION_PHASES,
    PROMOTING_PHASES,
    RELEASE_PHASES,
    STARTED_PHASES,
    AlertSeverity,
    Canary,
    CanaryAnalysis,
    CanaryStatus,
    CanaryWebhook,
    EventType,
    Phase,
    Strategy,
)
from coalmine.routers.base import Router, Routes, ServiceRouter, SessionAffinityCookies
from coalmine.scheduler import status as st
from coalmine.scheduler import texts, verbs
from coalmine.scheduler.ports import (
    ActionLog,
    Alerts,
    Clock,
    MetricsSink,
    Recorder,
    Seams,
    StatusWriter,
    WebhookCaller,
)
from coalmine.scheduler.weights import (
    TOTAL_WEIGHT,
    canary_step,
    max_weight,
    next_step_weight,
    promotion_step,
)
from coalmine.targets.base import (
    ScalerReconciler,
    TargetController,
    TargetFingerprint,
    TargetMetadata,
    is_retriable,
)
from coalmine.targets.service_coverage import COVERAGE_CONDITION, routing_coverage

log = logging.getLogger(__name__)

KUBERNETES_PROVIDER = "kubernetes"
# Finaliser readiness wait: Flagger's wait.Backoff{Duration: 3s, Factor: 2, Steps: 4, Cap: interval}.
FINALIZE_BACKOFF_SECONDS = 3.0
FINALIZE_BACKOFF_STEPS = 4


@dataclass(frozen=True)
class SchedulerConfig:
    """Controller-wide settings the cycle needs."""

    mesh_provider: str = "istio"


@dataclass(frozen=True)
class Dependencies:
    """Everything a cycle talks to."""

    seams: Seams
    analyzer: Analyzer
    webhooks: WebhookCaller
    alerts: Alerts
    recorder: Recorder
    status: StatusWriter
    metrics: MetricsSink
    clock: Clock
    # Acknowledges release verbs (`coalmine promote` ...). Without it promote/abort/retry are left
    # pending (acting without acknowledging would retry a failing run for ever); a pause holds.
    actions: ActionLog | None = None


@dataclass
class _Cycle:
    """State of one cycle: the canary as last written, resolved seams and what was read."""

    canary: Canary
    provider: str
    target: TargetController
    scaler: ScalerReconciler | None
    service_router: ServiceRouter
    mesh_router: Router
    metadata: TargetMetadata = field(default_factory=TargetMetadata)
    fingerprint: TargetFingerprint | None = None
    routes: Routes = field(default_factory=lambda: Routes(TOTAL_WEIGHT, 0, False))
    cookies: SessionAffinityCookies | None = None
    iterations: int = 0
    # The release verb this cycle acts on (docs/release-verbs.md).
    action: verbs.Action | None = None
    promote_requested: bool = False
    retry_requested: bool = False
    # An inconclusive measurement this cycle: the run waits in WaitingDecision (docs/analysis.md).
    decision_needed: str = ""

    @property
    def status(self) -> CanaryStatus:
        return self.canary.status or CanaryStatus()

    @property
    def phase(self) -> Phase:
        return self.status.phase or ""

    @property
    def analysis(self) -> CanaryAnalysis | None:
        return self.canary.spec.analysis

    @property
    def kind(self) -> str:
        return self.canary.spec.target_ref.kind

    @property
    def key(self) -> str:
        return self.canary.key

    @property
    def target_key(self) -> str:
        return f"{self.canary.spec.target_ref.name}.{self.canary.namespace}"

    @property
    def primary_key(self) -> str:
        spec = self.canary.spec
        # Service-target copies are named from spec.service.name (docs/decisions.md, 'Service-target
        # copy names').
        base = spec.apex_name if spec.target_ref.is_core_service else spec.target_ref.name
        return f"{naming.primary_name(base)}.{self.canary.namespace}"

    @property
    def skip_analysis(self) -> bool:
        return bool(self.canary.spec.skip_analysis) or self.analysis is None

    @property
    def mirror(self) -> bool:
        """`analysis.mirror`, when the router can mirror at all (else Flagger loops at weight 0)."""
        return bool(self.analysis and self.analysis.mirror and self.mesh_router.supports_mirroring)

    @property
    def threshold(self) -> int:
        return self.analysis.effective_threshold if self.analysis else 1

    @property
    def strategy(self) -> Strategy:
        """The strategy label of the success/failure counters (from the spec, as Flagger)."""
        return self.canary.spec.strategy

    def webhooks(self, hook_type: str) -> list[CanaryWebhook]:
        return self.canary.webhooks_of_type(hook_type)


class Scheduler:
    """Advances canaries one cycle at a time; holds no per-canary state between cycles."""

    def __init__(self, deps: Dependencies, config: SchedulerConfig | None = None) -> None:
        self.deps = deps
        self.config = config or SchedulerConfig()

    # --- entry points ------------------------------------------------------------------------

    async def advance(self, canary: Canary) -> None:
        """Run one cycle for `canary`, freshly read from the API server."""
        started = self.deps.clock.monotonic()
        if canary.spec.suspend:
            await self._record(canary, "Normal", "skipping canary run as object is suspended", None)
            return
        canary, paused = await self._pause_or_resume(canary)
        if paused:
            return
        c = self._cycle(canary)
        reached_analysis = await self._advance(c)
        if reached_analysis:
            self.deps.metrics.observe_duration(c.canary, self.deps.clock.monotonic() - started)

    async def finalize(self, canary: Canary) -> bool:
        """revertOnDeletion: revert what coalmine changed; True when the finalizer may go.

        False means an error was recorded as a Warning event and the caller should retry later.
        """
        c = self._cycle(canary)
        if c.phase == "Terminated":
            return True
        if c.phase != "Terminating":
            await self._write(c, self._set_phase(c, "Terminating"))
            await self._event(c, "Normal", f"Terminating canary {c.key}")
        try:
            if c.scaler is not None:
                await c.scaler.resume_target_scaler(c.canary)
            await c.target.finalize(c.canary)
            await self._wait_canary_ready(c)
            metadata = await c.target.get_metadata(c.canary)
            await c.service_router.finalize(c.canary, metadata)
            await c.mesh_router.finalize(c.canary)
        except Exception as error:
            await self._warn(c, error)
            return False
        await self._event(c, "Normal", f"Terminated canary {c.key}")
        return True

    # --- the cycle ---------------------------------------------------------------------------

    def _cycle(self, canary: Canary) -> _Cycle:
        provider = canary.spec.provider or self.config.mesh_provider
        seams = self.deps.seams
        return _Cycle(
            canary=canary,
            provider=provider,
            target=seams.target(canary),
            scaler=seams.scaler(canary),
            service_router=seams.service_router(canary),
            mesh_router=seams.mesh_router(canary, provider),
        )

    async def _advance(self, c: _Cycle) -> bool:
        """Steps 2-27; True when the cycle reached the analysis section (for the duration metric)."""
        initializing = c.phase in INITIALIZING_PHASES
        appmesh = providers.resolve(c.provider).routes_first

        # 3. selector label and ports
        try:
            c.metadata = await c.target.get_metadata(c.canary)
        except Exception as error:
            await self._warn(c, error)
            return False
        # 4. <apex>-primary / <apex>-canary Services
        if not await self._attempt(c, c.service_router.initialize(c.canary, c.metadata)):
            return False
        # 5. metric providers, while initialising only; the outcome is informational
        if initializing and not c.skip_analysis:
            try:
                availability = await self.deps.analyzer.check_availability(c.canary)
            except Exception as error:
                availability = AvailabilityOutcome(ok=False, message=str(error))
            if availability.ok:
                await self._event(c, "Normal", availability.message)
            else:
                await self._event(
                    c, "Warning", f"Error checking metric providers: {availability.message}"
                )
        # 6. App Mesh needs its virtual nodes before the primary pods exist
        if appmesh and not await self._attempt(c, c.mesh_router.reconcile(c.canary)):
            return False
        # 7. primary (and its readiness while initialising)
        if not await self._attempt_or_roll_back(c, c.target.initialize(c.canary)):
            return False
        # 8. autoscalers
        if c.scaler is not None:
            if not await self._attempt(c, c.scaler.reconcile_primary_scaler(c.canary, init=True)):
                return False
            if initializing and not await self._attempt(c, c.scaler.pause_target_scaler(c.canary)):
                return False
        # 9. apex Service
        if not await self._attempt(c, c.service_router.reconcile(c.canary, c.metadata)):
            return False
        # 10. the target idles at zero until a new revision arrives
        if initializing:
            try:
                await c.target.scale_to_zero(c.canary)
            except Exception as error:
                await self._event(
                    c,
                    "Warning",
                    f"scaling down canary {c.kind} {c.target_key} failed: {error}",
                )
                return False
        # 11. routing object
        if not appmesh and not await self._attempt(c, c.mesh_router.reconcile(c.canary)):
            return False
        fingerprint = await self._fingerprint(c)
        if fingerprint is None:
            return False
        # 12. initialised
        if initializing:
            await self._initialized(c)
            return False
        # release verbs: abort acts here; promote and retry mark the cycle for later steps
        if not await self._take_action(c):
            return False
        # 13. anything to do?
        await self._adopt_foreign_hashes(c, fingerprint)
        if (
            c.phase not in RELEASE_PHASES
            and not c.retry_requested
            and not self._revision_changed(c, fingerprint)
        ):
            if c.phase == "Failed" and fingerprint.spec_hash != c.status.last_applied_spec:
                await self._reverted(c)
            self.deps.metrics.set_status(c.canary, st.phase_gauge(c.phase))
            return False
        # 14. the primary must serve
        if not c.skip_analysis:
            try:
                await c.target.is_primary_ready(c.canary)
            except Exception as error:
                await self._warn(c, error)
                if not is_retriable(error):
                    if c.retry_requested:
                        # Still Failed: a retry cannot run while the primary cannot serve, and
                        # rolling back again every cycle would repeat hooks, alerts and counts.
                        await self._resolve_action(
                            c, verbs.REFUSED, f"the primary is not ready: {error}"
                        )
                    elif c.phase in PROMOTING_PHASES:
                        await self._failed_promotion(c, error)
                    else:
                        await self._rollback(c)
                return False
        # 15. live routes
        try:
            c.routes = await c.mesh_router.get_routes(c.canary)
        except Exception as error:
            await self._warn(c, error)
            return False
        self.deps.metrics.set_weight(c.canary, c.routes.primary_weight, c.routes.canary_weight)
        # 16. a new revision starts (or waits for approval)
        self.deps.metrics.set_status(c.canary, st.phase_gauge(c.phase))
        if c.phase not in STARTED_PHASES:
            if c.retry_requested:
                await self._event(
                    c,
                    "Normal",
                    f"Retry requested by coalmine retry: starting a new run of {c.target_key}",
                )
            await self._start_run(c)
            if c.retry_requested and c.phase == "Progressing":
                await self._resolve_action(c, verbs.DONE, "new run started")
            elif c.retry_requested and c.phase == "Waiting":
                await self._resolve_action(
                    c, verbs.DONE, "new run waiting for confirm-rollout approval"
                )
            return False
        # 17. a newer revision restarts the run from zero (also one pushed while a decision waits)
        if c.phase in ANALYSING_PHASES and self._revision_changed(c, fingerprint):
            await self._event(
                c, "Normal", f"New revision detected! Restarting analysis for {c.target_key}"
            )
            if not await self._set_routes(c, TOTAL_WEIGHT, 0, False):
                return False
            await self._write(c, self._sync(c, "Progressing", 0, 0, 0))
            return False
        # 18. the canary must serve
        if not await self._attempt_or_roll_back(c, c.target.is_canary_ready(c.canary)):
            return False
        # coalmine promote: skip the rest of the analysis and its gates
        if c.promote_requested:
            await self._requested_promotion(c)
            return False
        # 19. no analysis: promote straight away
        if c.skip_analysis:
            await self._promote_without_analysis(c)
            return False
        # 20. manual rollback
        if c.phase in PRE_PROMOTION_PHASES and (await self._rollback_requested(c)):
            await self._manual_rollback(c)
            return False
        # 21. shift traffic back to the (promoted) primary
        if c.phase == "Promoting":
            if c.scaler is not None and not await self._attempt(
                c, c.scaler.reconcile_primary_scaler(c.canary, init=False)
            ):
                return False
            await self._promotion_traffic(c)
            return False
        # 22. done
        if c.phase == "Finalising":
            await self._finish(c)
            return False
        # an inconclusive analysis waits for coalmine promote/abort or a confirm-decision hook
        if c.phase == "WaitingDecision":
            await self._await_decision(c)
            return False
        # 23. too many failed checks
        if c.phase in ANALYSING_PHASES and ((c.status.failed_checks or 0) >= c.threshold):
            await self._rollback(c)
            return False
        # 24.-27. the analysis proper
        await self._analyse_and_step(c)
        return True

    async def _initialized(self, c: _Cycle) -> None:
        """Step 12; a Service target is also told which of its traffic follows the weights."""
        status = self._sync(c, "Initialized", 0, 0, 0)
        coverage = None
        if c.canary.spec.target_ref.is_core_service:
            coverage = routing_coverage(c.canary, c.provider)
            status = st.with_condition(
                status,
                COVERAGE_CONDITION,
                "True" if coverage.complete else "False",
                coverage.reason,
                coverage.sentence,
                self._now(),
            )
        await self._write(c, status)
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Initialized"))
        await self._event(c, "Normal", f"Initialization done! {c.key}")
        if coverage is not None:
            await self._event(c, coverage.event_type, coverage.sentence)
        await self._alert(
            c, f"New {c.kind} detected, initialization completed.", "info", metadata=True
        )

    async def _reverted(self, c: _Cycle) -> None:
        """Back to the promoted spec after a failure (a GitOps revert): remember it, so re-applying
        the failed revision later is a change again, and say that nothing is left to release."""
        status = self._sync(
            c,
            "Failed",
            c.status.canary_weight or 0,
            c.status.failed_checks or 0,
            c.status.iterations or 0,
        )
        await self._write(c, st.mark_reverted(status, self._now()))
        await self._event(c, "Normal", texts.REVERTED)

    # --- release verbs -----------------------------------------------------------------------

    async def _pause_or_resume(self, canary: Canary) -> tuple[Canary, bool]:
        """`coalmine.dev/paused` freezes the canary like `spec.suspend`; acknowledges pause/resume.

        Returns the canary (with the acknowledgement) and whether this cycle must stop here.
        """
        annotations = verbs.annotations_of(canary)
        action = verbs.pending_action(annotations)
        if verbs.is_paused(annotations):
            if action is not None and action.verb == "pause":
                await self._record(
                    canary,
                    "Normal",
                    "Paused by coalmine pause: no step is taken until coalmine resume",
                    None,
                )
                return await self._handled(canary, action, verbs.DONE, "paused"), True
            await self._record(
                canary,
                "Normal",
                f"skipping canary run as object is paused ({naming.PAUSED_ANNOTATION})",
                None,
            )
            return canary, True
        if action is not None and action.verb == "resume":
            await self._record(
                canary, "Normal", "Resumed by coalmine resume: the canary run carries on", None
            )
            canary = await self._handled(canary, action, verbs.DONE, "resumed")
        elif action is not None and action.verb == "pause":
            canary = await self._handled(
                canary,
                action,
                verbs.REFUSED,
                f"the {naming.PAUSED_ANNOTATION} annotation was removed before the pause was seen",
            )
        return canary, False

    async def _take_action(self, c: _Cycle) -> bool:
        """Act on a pending promote/abort/retry; False when the cycle ends here (abort).

        Promote and retry only mark the cycle: they act at the step where the same transition
        happens on its own (promotion after canary readiness, a new run at step 16). A request
        whose transition already happened (a crash after the status write, before the
        acknowledgement) is acknowledged as done; one that makes no sense in the phase is refused.
        """
        action = verbs.pending_action(verbs.annotations_of(c.canary))
        if action is None or action.verb in ("pause", "resume") or self.deps.actions is None:
            return True
        c.action = action
        phase = c.phase
        if action.verb == "promote":
            if phase in ANALYSING_PHASES:
                c.promote_requested = True
                return True
            if phase in PROMOTING_PHASES:
                await self._resolve_action(c, verbs.DONE, f"already {phase}")
                return True
        elif action.verb == "abort":
            if phase in PRE_PROMOTION_PHASES:
                await self._event(
                    c, "Warning", f"Rolling back {c.key}: abort requested by coalmine abort"
                )
                await self._alert(c, "Rolling back: abort requested by coalmine abort", "warn")
                await self._rollback(c)
                if c.phase == "Failed":
                    await self._resolve_action(c, verbs.DONE, "rolled back")
                return False
            if phase == "Failed":
                await self._resolve_action(c, verbs.DONE, "already Failed")
                return True
        else:
            if phase == "Failed":
                c.retry_requested = True
                return True
            if phase in RELEASE_PHASES:
                await self._resolve_action(c, verbs.DONE, f"a run is in progress, phase {phase}")
                return True
        reason = verbs.refusal(action.verb, phase, paused=False) or f"phase {phase}"
        await self._event(c, "Warning", f"coalmine {action.verb} refused for {c.key}: {reason}")
        await self._resolve_action(c, verbs.REFUSED, reason)
        return True

    async def _requested_promotion(self, c: _Cycle) -> None:
        """`coalmine promote`: as if the analysis had completed; confirm-promotion is skipped
        because a person asked for the promotion explicitly (the event records who)."""
        await self._event(
            c,
            "Normal",
            "Promotion requested by coalmine promote: skipping the rest of the analysis",
        )
        await self._alert(c, "Promotion requested by coalmine promote.", "info")
        await self._promote(c)
        if c.phase == "Promoting":
            await self._resolve_action(c, verbs.DONE, "promoting")

    async def _resolve_action(self, c: _Cycle, outcome: str, message: str) -> None:
        assert c.action is not None
        c.canary = await self._handled(c.canary, c.action, outcome, message)

    async def _handled(
        self, canary: Canary, action: verbs.Action, outcome: str, message: str
    ) -> Canary:
        """Acknowledge `action`; a failed write leaves it pending for the next cycle."""
        if self.deps.actions is None:
            return canary
        try:
            return await self.deps.actions.handled(
                canary, verbs.handled_annotations(action.action_id, outcome, message)
            )
        except Exception:
            log.exception("%s: acknowledging coalmine %s failed", canary.key, action.verb)
            return canary

    async def _start_run(self, c: _Cycle) -> None:
        """Step 16 for Initialized/Succeeded/Failed/Waiting: approval, scale up, Progressing."""
        if c.phase == "Waiting" and await self._rollback_requested(c):
            # A rollback hook can reject a revision still waiting for approval (see
            # docs/decisions.md, 'Rollback hooks while waiting').
            await self._manual_rollback(c)
            return
        if not await self._confirm_rollout(c):
            return
        await self._event(c, "Normal", texts.run_started(c.kind, c.target_key), "Progressing")
        await self._alert(
            c, "New revision detected, progressing canary analysis.", "info", metadata=True
        )
        if c.scaler is not None and not await self._attempt(
            c, c.scaler.resume_target_scaler(c.canary)
        ):
            return
        if not await self._attempt(c, c.target.scale_from_zero(c.canary)):
            return
        await self._write(c, self._sync(c, "Progressing", 0, 0, 0))
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Progressing"))

    async def _analyse_and_step(self, c: _Cycle) -> None:
        """Steps 25-27: checks (or pre-rollout hooks on the first cycle), then one traffic step."""
        analysis = c.analysis
        assert analysis is not None  # skip_analysis returned earlier
        routes = c.routes
        first_cycle = (
            routes.canary_weight == 0
            and (c.status.iterations or 0) == 0
            and not (c.mirror and routes.mirrored)
        )
        if first_cycle:
            await self._event(c, "Normal", f"Starting canary analysis for {c.target_key}")
            passed = await self._pre_rollout(c)
        else:
            passed = await self._run_checks(c)
        if c.decision_needed:
            await self._wait_for_decision(c, c.decision_needed)
            return
        if not passed:
            await self._write(
                c,
                st.set_failed_checks(
                    c.status, (c.status.failed_checks or 0) + 1, now=self.deps.clock.now()
                ),
            )
            return
        # 26. the kubernetes provider cannot split traffic: blue/green only
        iterations = analysis.effective_iterations
        has_match = bool(analysis.match)
        if c.provider == KUBERNETES_PROVIDER:
            if has_match:
                await self._event(
                    c, "Warning", "A/B testing is not supported when using the kubernetes provider"
                )
                has_match = False
            if iterations < 1:
                await self._event(
                    c,
                    "Warning",
                    "Progressive traffic is not supported when using the kubernetes provider",
                )
                await self._event(
                    c,
                    "Warning",
                    f"Setting canaryAnalysis.iterations: {KUBERNETES_PROVIDER_ITERATIONS}",
                )
                iterations = KUBERNETES_PROVIDER_ITERATIONS
        c.iterations = iterations
        # 27. strategy
        if has_match and iterations > 0:
            await self._ab_testing(c)
        elif iterations > 0:
            await self._blue_green(c)
        elif next_step_weight(analysis, routes.canary_weight) > 0:
            if (
                not routes.mirrored
                and c.phase not in {"Promoting", "WaitingPromotion", "Finalising"}
                and not await self._confirm_traffic_increase(c)
            ):
                return
            await self._canary(c)

    # --- strategies --------------------------------------------------------------------------

    async def _canary(self, c: _Cycle) -> None:
        routes = c.routes
        if routes.canary_weight < max_weight(c.analysis):
            step = canary_step(
                c.analysis,
                routes.primary_weight,
                routes.canary_weight,
                routes.mirrored,
                mirror=c.mirror,
            )
            if not await self._set_routes(
                c, step.primary_weight, step.canary_weight, step.mirrored
            ):
                return
            await self._write(c, st.set_weight(c.status, step.canary_weight, now=self._now()))
            self.deps.metrics.set_weight(c.canary, step.primary_weight, step.canary_weight)
            await self._event(c, "Normal", f"Advance {c.key} canary weight {step.canary_weight}")
            return
        if not await self._confirm_promotion(c):
            return
        await self._judged_promotion(c)

    async def _ab_testing(self, c: _Cycle) -> None:
        done = c.status.iterations or 0
        if c.iterations > done:
            if not await self._set_routes(c, 0, TOTAL_WEIGHT, False):
                return
            self.deps.metrics.set_weight(c.canary, 0, TOTAL_WEIGHT)
            await self._next_iteration(c, done)
            return
        if not await self._confirm_promotion(c):
            return
        if done == c.iterations:
            await self._judged_promotion(c)

    async def _next_iteration(self, c: _Cycle, done: int) -> None:
        await self._write(c, st.set_iterations(c.status, done + 1, now=self._now()))
        await self._event(
            c, "Normal", f"Advance {c.key} canary iteration {done + 1}/{c.iterations}"
        )

    async def _blue_green(self, c: _Cycle) -> None:
        mirror = c.mirror
        kubernetes = c.provider == KUBERNETES_PROVIDER
        done = c.status.iterations or 0
        if c.iterations > done:
            if not kubernetes and mirror and not c.routes.mirrored:
                log.info("Start traffic mirroring for %s", c.key)
                if not await self._set_routes(c, TOTAL_WEIGHT, 0, True):
                    return
            await self._next_iteration(c, done)
            return
        if not await self._confirm_promotion(c):
            return
        if done == c.iterations:
            if not kubernetes:
                message = (
                    "Stop traffic mirroring and route all traffic to canary"
                    if mirror
                    else "Routing all traffic to canary"
                )
                await self._event(c, "Normal", message)
                if not await self._set_routes(c, 0, TOTAL_WEIGHT, False):
                    return
                self.deps.metrics.set_weight(c.canary, 0, TOTAL_WEIGHT)
            await self._write(c, st.set_iterations(c.status, done + 1, now=self._now()))
            return
        if done > c.iterations:
            await self._judged_promotion(c)

    async def _promote(self, c: _Cycle) -> None:
        """Copy the canary spec onto the primary once, then enter Promoting."""
        await self._event(c, "Normal", f"Copying {c.target_key} template spec to {c.primary_key}")
        if not await self._copy_to_primary(c):
            return
        await self._write(c, self._set_phase(c, "Promoting"))

    async def _copy_to_primary(self, c: _Cycle) -> bool:
        """`promote` unless the primary already carries this revision (a crash after promoting)."""
        fingerprint = c.fingerprint
        assert fingerprint is not None
        revision = release_checksum(fingerprint.spec_hash, fingerprint.tracked_configs)
        if fingerprint.primary_revision == revision:
            log.info("%s: primary already promoted to %s", c.key, revision)
            return True
        return await self._attempt(c, c.target.promote(c.canary, revision))

    async def _promotion_traffic(self, c: _Cycle) -> None:
        """Step 21: route traffic back to the promoted primary, then Finalising."""
        analysis = c.analysis
        if c.provider == KUBERNETES_PROVIDER:
            await self._write(c, self._set_phase(c, "Finalising"))
            return
        if not (analysis and analysis.step_weight_promotion):
            await self._event(c, "Normal", "Routing all traffic to primary")
            if not await self._set_routes(c, TOTAL_WEIGHT, 0, False):
                return
            self.deps.metrics.set_weight(c.canary, TOTAL_WEIGHT, 0)
            await self._write(c, self._set_phase(c, "Finalising"))
            return
        routes = c.routes
        if routes.canary_weight <= 0:
            # All traffic is already on the primary (a restart after the last shift was written
            # but before Finalising was): Flagger would stay in Promoting for ever.
            await self._write(c, self._set_phase(c, "Finalising"))
            return
        primary, canary = promotion_step(analysis, routes.primary_weight, routes.canary_weight)
        if not await self._set_routes(c, primary, canary, False):
            return
        self.deps.metrics.set_weight(c.canary, primary, canary)
        await self._event(c, "Normal", f"Advance {c.key} primary weight {primary}")
        if primary == TOTAL_WEIGHT:
            await self._write(c, self._set_phase(c, "Finalising"))
        else:
            await self._write(c, st.set_weight(c.status, canary, now=self._now()))

    async def _finish(self, c: _Cycle) -> None:
        """Step 22: scale the canary down and declare success."""
        if c.scaler is not None and not await self._attempt(
            c, c.scaler.pause_target_scaler(c.canary)
        ):
            return
        if not await self._attempt(c, c.target.scale_to_zero(c.canary)):
            return
        await self._write(c, self._set_phase(c, "Succeeded"))
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Succeeded"))
        self.deps.metrics.inc_successes(c.canary, c.strategy, "completed")
        await self._post_rollout(c, "Succeeded")
        await self._event(
            c, "Normal", texts.promotion_completed(c.kind, c.target_key, c.primary_key)
        )
        await self._alert(c, "Canary analysis completed successfully, promotion finished.", "info")

    async def _promote_without_analysis(self, c: _Cycle) -> None:
        """Step 19 (skipAnalysis): promote, scale down and succeed in one cycle."""
        if not await self._set_routes(c, TOTAL_WEIGHT, 0, False):
            return
        await self._event(c, "Normal", f"Copying {c.target_key} template spec to {c.primary_key}")
        if not await self._copy_to_primary(c):
            return
        if c.scaler is not None:
            if not await self._attempt(c, c.scaler.reconcile_primary_scaler(c.canary, init=False)):
                return
            if not await self._attempt(c, c.scaler.pause_target_scaler(c.canary)):
                return
        if not await self._attempt(c, c.target.scale_to_zero(c.canary)):
            return
        await self._write(c, self._set_phase(c, "Succeeded"))
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Succeeded"))
        self.deps.metrics.inc_successes(c.canary, c.strategy, "skipped")
        await self._post_rollout(c, "Succeeded")
        await self._event(
            c,
            "Normal",
            f"Promotion completed! Canary analysis was skipped for {c.target_key}",
        )
        await self._alert(c, "Canary analysis was skipped, promotion finished.", "info")

    async def _manual_rollback(self, c: _Cycle) -> None:
        await self._event(c, "Warning", f"Rolling back {c.key} manual webhook invoked")
        await self._alert(c, "Rolling back manual webhook invoked", "warn")
        await self._rollback(c)

    async def _rollback(self, c: _Cycle) -> None:
        """Flagger's rollback: all traffic to the primary, canary scaled down, phase Failed."""
        failed_checks = c.status.failed_checks or 0
        if failed_checks >= c.threshold:
            await self._event(
                c,
                "Warning",
                f"Rolling back {c.key} failed checks threshold reached {failed_checks}",
            )
            await self._alert(c, f"Failed checks threshold reached {failed_checks}", "error")
        if not await self._set_routes(c, TOTAL_WEIGHT, 0, False):
            return
        await self._event(c, "Warning", texts.canary_failed(c.kind, c.key, c.primary_key), "Failed")
        self.deps.metrics.set_weight(c.canary, TOTAL_WEIGHT, 0)
        if c.scaler is not None and not await self._attempt(
            c, c.scaler.pause_target_scaler(c.canary)
        ):
            return
        if not await self._attempt(c, c.target.scale_to_zero(c.canary)):
            return
        if await self._fingerprint(c) is None:
            return
        await self._write(c, self._sync(c, "Failed", 0, 0, 0))
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Failed"))
        self.deps.metrics.inc_failures(c.canary, c.strategy, "completed")
        await self._post_rollout(c, "Failed")

    async def _failed_promotion(self, c: _Cycle, error: BaseException) -> None:
        """The promoted primary cannot become ready: keep serving from the canary, phase Failed."""
        await self._event(
            c, "Warning", f"Promotion of {c.target_key} failed, primary not ready: {error}"
        )
        await self._alert(c, f"Promotion failed, primary not ready: {error}", "error")
        if not await self._set_routes(c, 0, TOTAL_WEIGHT, False):
            return
        self.deps.metrics.set_weight(c.canary, 0, TOTAL_WEIGHT)
        await self._write(c, self._sync(c, "Failed", TOTAL_WEIGHT, 0, 0))
        self.deps.metrics.set_status(c.canary, st.phase_gauge("Failed"))
        self.deps.metrics.inc_failures(c.canary, c.strategy, "completed")
        await self._post_rollout(c, "Failed")

    # --- hooks and checks --------------------------------------------------------------------

    async def _call(self, c: _Cycle, hook: CanaryWebhook, phase: Phase) -> BaseException | None:
        try:
            await self.deps.webhooks.call(c.canary, hook, phase)
        except Exception as error:
            return error
        return None

    async def _gate(
        self, c: _Cycle, hook_type: str, phase: Phase, passed: str | None
    ) -> tuple[CanaryWebhook, BaseException] | None:
        """Call the hooks of `hook_type` in spec order; the first refusal stops the calls.

        Each success records Normal `<passed> check <hook> passed` (nothing when `passed` is None,
        as for rollout hooks). Returns the refusing hook and its error, or None when all passed.
        """
        for hook in c.webhooks(hook_type):
            error = await self._call(c, hook, phase)
            if error is not None:
                return hook, error
            if passed is not None:
                await self._event(c, "Normal", f"{passed} check {hook.name} passed")
        return None

    async def _halt(
        self, c: _Cycle, hook: CanaryWebhook, reason: str, alert: str | None = None
    ) -> None:
        """Flagger's `Halt <canary> advancement <reason>` Warning, and its alert unless muted."""
        await self._event(c, "Warning", f"Halt {c.key} advancement {reason}")
        if alert is not None and not hook.mute_alert:
            await self._alert(c, alert, "warn")

    async def _confirm_rollout(self, c: _Cycle) -> bool:
        refused = await self._gate(c, "confirm-rollout", c.phase, "Confirm-rollout")
        if refused is None:
            return True
        hook, _ = refused
        if c.phase != "Waiting":
            await self._write(c, self._set_phase(c, "Waiting"))
            await self._halt(
                c, hook, f"waiting for approval {hook.name}", "Canary is waiting for approval."
            )
        return False

    async def _confirm_traffic_increase(self, c: _Cycle) -> bool:
        refused = await self._gate(
            c, "confirm-traffic-increase", "Progressing", "Confirm-traffic-increase"
        )
        if refused is None:
            return True
        hook, _ = refused
        await self._halt(
            c,
            hook,
            f"waiting for traffic increase approval {hook.name}",
            "Canary traffic increase is waiting for approval.",
        )
        return False

    async def _confirm_promotion(self, c: _Cycle) -> bool:
        refused = await self._gate(c, "confirm-promotion", "Progressing", "Confirm-promotion")
        if refused is None:
            return True
        hook, _ = refused
        if c.phase != "WaitingPromotion":
            await self._write(c, self._set_phase(c, "WaitingPromotion"))
            await self._halt(
                c,
                hook,
                f"waiting for promotion approval {hook.name}",
                "Canary promotion is waiting for approval.",
            )
        else:
            # Keep iterating (A/B, blue/green) while the approval is pending.
            again = max(c.iterations - 1, 0)
            if (c.status.iterations or 0) != again:
                await self._write(c, st.set_iterations(c.status, again, now=self._now()))
        return False

    async def _pre_rollout(self, c: _Cycle) -> bool:
        refused = await self._gate(c, "pre-rollout", "Progressing", "Pre-rollout")
        if refused is not None:
            hook, error = refused
            await self._halt(c, hook, f"pre-rollout check {hook.name} failed {error}")
            return False
        return True

    async def _run_checks(self, c: _Cycle) -> bool:
        """Flagger's `runAnalysis`: rollout webhooks, then the metric checks; the first failure
        stops."""
        refused = await self._gate(c, "rollout", "Progressing", None)
        if refused is not None:
            hook, error = refused
            await self._halt(c, hook, f"external check {hook.name} failed {error}")
            return False
        try:
            outcome = await self.deps.analyzer.analyse(c.canary)
        except Exception as error:
            await self._warn(c, error)
            return False
        await self._record_measurements(c, outcome)
        if outcome.failure is not None:
            await self._event(c, "Warning", outcome.failure.message)
            if outcome.fatal:
                # A critical judged metric or a judge score at or below marginal fails the run:
                # the increment by the caller reaches the threshold, the next cycle rolls back.
                failed = max(c.threshold - 1, c.status.failed_checks or 0)
                await self._write(c, st.set_failed_checks(c.status, failed, now=self._now()))
            return False
        if outcome.inconclusive:
            first = next(r for r in outcome.results if r.effective_verdict == "Inconclusive")
            c.decision_needed = first.message or f"metric {first.name} is inconclusive"
        return True

    async def _record_measurements(self, c: _Cycle, outcome: AnalysisOutcome) -> None:
        """Measurements on record (docs/analysis.md): the last ones per metric in the status."""
        if not outcome.results:
            return
        stamp = st.timestamp(self._now())
        await self._write(c, with_measurements(c.status, outcome, time=stamp))

    async def _wait_for_decision(self, c: _Cycle, reason: str) -> None:
        """Enter WaitingDecision: no step is taken until a person (or a hook) decides."""
        await self._write(c, self._set_phase(c, "WaitingDecision"))
        await self._event(
            c,
            "Warning",
            f"Halt {c.key} advancement waiting for a decision: {reason} "
            "(coalmine promote or coalmine abort)",
        )
        await self._alert(
            c, f"Canary analysis is inconclusive, waiting for a decision: {reason}", "warn"
        )

    async def _await_decision(self, c: _Cycle) -> None:
        """WaitingDecision: confirm-decision hooks that all approve resume the analysis."""
        hooks = c.webhooks("confirm-decision")
        if not hooks:
            return
        refused = await self._gate(c, "confirm-decision", "WaitingDecision", "Confirm-decision")
        if refused is not None:
            return
        await self._event(c, "Normal", f"Decision approved for {c.key}: the analysis carries on")
        await self._write(c, self._set_phase(c, "Progressing"))

    async def _judged_promotion(self, c: _Cycle) -> None:
        """The last analysis must reach the judge's pass score (Kayenta); marginal waits for a
        decision, below fails the run; canaries without judged metrics promote as before."""
        verdict = final_score_verdict(c.canary)
        score = c.status.judge_score
        if verdict == "Inconclusive":
            await self._wait_for_decision(c, f"judge score {score:g} is marginal")
            return
        if verdict == "Fail":
            await self._event(c, "Warning", f"Halt {c.key} advancement judge score {score:g}")
            await self._write(c, st.set_failed_checks(c.status, c.threshold, now=self._now()))
            return
        await self._promote(c)

    async def _rollback_requested(self, c: _Cycle) -> bool:
        for hook in c.webhooks("rollback"):
            if await self._call(c, hook, c.phase) is not None:
                await self._event(
                    c, "Normal", f"Rollback hook {hook.name} not signaling a rollback"
                )
                continue
            await self._event(c, "Warning", f"Rollback check {hook.name} passed")
            return True
        return False

    async def _post_rollout(self, c: _Cycle, phase: Phase) -> None:
        for hook in c.webhooks("post-rollout"):
            error = await self._call(c, hook, phase)
            if error is not None:
                await self._event(c, "Warning", f"Post-rollout hook {hook.name} failed {error}")
            else:
                await self._event(c, "Normal", f"Post-rollout check {hook.name} passed")

    async def _wait_canary_ready(self, c: _Cycle) -> None:
        """Finaliser: poll canary readiness with Flagger's backoff; raise the last error."""
        interval = c.analysis.interval_seconds() if c.analysis else FINALIZE_BACKOFF_SECONDS
        delay = FINALIZE_BACKOFF_SECONDS
        for attempt in range(FINALIZE_BACKOFF_STEPS):
            try:
                await c.target.is_canary_ready(c.canary)
                return
            except Exception as error:
                if not is_retriable(error) or attempt == FINALIZE_BACKOFF_STEPS - 1:
                    raise
            await self.deps.clock.sleep(min(delay, interval))
            delay *= 2

    # --- status ------------------------------------------------------------------------------

    def _revision_changed(self, c: _Cycle, fingerprint: TargetFingerprint) -> bool:
        return st.has_spec_changed(c.status, fingerprint.spec_hash) or st.have_configs_changed(
            fingerprint.tracked_configs, c.status.tracked_configs
        )

    async def _adopt_foreign_hashes(self, c: _Cycle, fingerprint: TargetFingerprint) -> None:
        """A canary taken over from Flagger keeps its state, no spurious run (see docs/decisions.md,
        'Spec hashes and adoption')."""
        previous = c.status.last_applied_spec
        if c.phase not in {
            "Initialized",
            "Succeeded",
            "Failed",
            "Progressing",
            "WaitingPromotion",
        } or not is_foreign_hash(previous):
            return
        promoted = c.phase in {"Initialized", "Succeeded"}
        await self._write(
            c,
            st.adopt_hashes(
                c.status, fingerprint.spec_hash, adopt_promoted=promoted, now=self._now()
            ),
        )
        await self._event(
            c,
            "Normal",
            f"Adopted {c.key}: spec hash {previous} was written by another controller and cannot "
            f"be compared; the current {c.kind} {c.target_key} spec is taken as "
            f"{'promoted' if promoted else 'applied'}",
        )

    def _now(self) -> datetime:
        return self.deps.clock.now()

    def _sync(
        self, c: _Cycle, phase: Phase, weight: int, failed_checks: int, iterations: int
    ) -> CanaryStatus:
        fingerprint = c.fingerprint
        assert fingerprint is not None
        return st.sync_status(
            c.status,
            phase=phase,
            canary_weight=weight,
            failed_checks=failed_checks,
            iterations=iterations,
            spec_hash=fingerprint.spec_hash,
            tracked_configs=fingerprint.tracked_configs,
            kind=c.kind,
            now=self._now(),
        )

    def _set_phase(self, c: _Cycle, phase: Phase) -> CanaryStatus:
        return st.set_phase(
            c.status,
            phase,
            kind=c.kind,
            now=self._now(),
            analysis_iterations=c.iterations,
            routed_canary_weight=c.routes.canary_weight,
        )

    async def _write(self, c: _Cycle, status: CanaryStatus) -> None:
        """Persist `status` (plus any cookies the router chose this cycle) and continue from it."""
        if c.cookies is not None:
            status = status.model_copy(
                update={
                    "session_affinity_cookie": c.cookies.session_affinity_cookie,
                    "primary_session_affinity_cookie": c.cookies.primary_session_affinity_cookie,
                    "previous_session_affinity_cookie": c.cookies.previous_session_affinity_cookie,
                }
            )
            c.cookies = None
        c.canary = await self.deps.status.write_status(c.canary, status)

    async def _fingerprint(self, c: _Cycle) -> TargetFingerprint | None:
        if c.fingerprint is None:
            try:
                c.fingerprint = await c.target.fingerprint(c.canary)
            except Exception as error:
                await self._warn(c, error)
                return None
        return c.fingerprint

    # --- effects -----------------------------------------------------------------------------

    async def _set_routes(self, c: _Cycle, primary: int, canary: int, mirrored: bool) -> bool:
        try:
            cookies = await c.mesh_router.set_routes(c.canary, primary, canary, mirrored)
        except Exception as error:
            await self._warn(c, error)
            return False
        if cookies is not None:
            c.cookies = cookies
        c.routes = Routes(primary, canary, mirrored)
        return True

    async def _attempt(self, c: _Cycle, action: Awaitable[None]) -> bool:
        """Await a seam call; a failure becomes a Warning event and ends the step."""
        try:
            await action
        except Exception as error:
            await self._warn(c, error)
            return False
        return True

    async def _attempt_or_roll_back(self, c: _Cycle, action: Awaitable[None]) -> bool:
        """`_attempt` for readiness: an error waiting cannot heal (a missed deadline) rolls back."""
        try:
            await action
        except Exception as error:
            await self._warn(c, error)
            if not is_retriable(error):
                await self._rollback(c)
            return False
        return True

    async def _warn(self, c: _Cycle, error: BaseException) -> None:
        log.info("%s: %s", c.key, error)
        await self._event(c, "Warning", str(error))

    async def _event(
        self, c: _Cycle, event_type: EventType, message: str, phase: Phase | None = None
    ) -> None:
        await self._record(c.canary, event_type, message, phase)

    async def _record(
        self, canary: Canary, event_type: EventType, message: str, phase: Phase | None
    ) -> None:
        current: Phase = canary.status.phase or "" if canary.status else ""
        try:
            await self.deps.recorder.event(canary, event_type, message, phase or current)
        except Exception:
            # Telling about a transition must never stop it.
            log.exception("%s: recording event %r failed", canary.key, message)

    async def _alert(
        self, c: _Cycle, message: str, severity: AlertSeverity, *, metadata: bool = False
    ) -> None:
        try:
            await self.deps.alerts.alert(c.canary, message, metadata=metadata, severity=severity)
        except Exception:
            log.exception("%s: alert %r failed", c.key, message)
