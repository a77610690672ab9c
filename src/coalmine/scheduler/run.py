"""One cycle's run object: the canary as last written, the resolved seams, and the side effects.

Flagger keeps its side-effect helpers (status writes, events, alerts, gauges) on the controller
and its steps in `scheduler_*.go`; here the steps are functions over a `Run` (see `cycle`,
`gates`, `strategies`, `promotion`, `rollback`, `decisions`, `release`), and every effect goes
through the few methods below. The gauges are updated inside the writers: a status write
publishes its phase, a route write its weights, so no step can forget one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime

from coalmine.analysis import Analyzer
from coalmine.api import naming
from coalmine.api.models import (
    ANALYSING_PHASES,
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
from coalmine.scheduler import verbs
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
from coalmine.scheduler.weights import TOTAL_WEIGHT
from coalmine.targets.base import (
    ScalerReconciler,
    TargetController,
    TargetFingerprint,
    TargetMetadata,
)

log = logging.getLogger(__name__)

KUBERNETES_PROVIDER = "kubernetes"


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
class Run:
    """State of one cycle: the canary as last written, resolved seams and what was read."""

    deps: Dependencies
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

    @classmethod
    def start(cls, deps: Dependencies, config: SchedulerConfig, canary: Canary) -> Run:
        """Resolve the seams of `canary` (its provider defaults to the controller's mesh)."""
        provider = canary.spec.provider or config.mesh_provider
        seams = deps.seams
        return cls(
            deps=deps,
            canary=canary,
            provider=provider,
            target=seams.target(canary),
            scaler=seams.scaler(canary),
            service_router=seams.service_router(canary),
            mesh_router=seams.mesh_router(canary, provider),
        )

    # --- what the cycle reads ----------------------------------------------------------------

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

    @property
    def kubernetes(self) -> bool:
        """The kubernetes provider cannot split traffic (blue/green only)."""
        return self.provider == KUBERNETES_PROVIDER

    def webhooks(self, hook_type: str) -> list[CanaryWebhook]:
        return self.canary.webhooks_of_type(hook_type)

    def now(self) -> datetime:
        return self.deps.clock.now()

    def revision_changed(self, fingerprint: TargetFingerprint) -> bool:
        return st.has_spec_changed(self.status, fingerprint.spec_hash) or st.have_configs_changed(
            fingerprint.tracked_configs, self.status.tracked_configs
        )

    async def read_fingerprint(self) -> TargetFingerprint | None:
        """The target's fingerprint, read once per cycle; None (after a Warning) when unreadable."""
        if self.fingerprint is None:
            try:
                self.fingerprint = await self.target.fingerprint(self.canary)
            except Exception as error:
                await self.warn(error)
                return None
        return self.fingerprint

    # --- status ------------------------------------------------------------------------------

    def sync(self, phase: Phase, weight: int, failed_checks: int, iterations: int) -> CanaryStatus:
        fingerprint = self.fingerprint
        assert fingerprint is not None
        return st.sync_status(
            self.status,
            phase=phase,
            canary_weight=weight,
            failed_checks=failed_checks,
            iterations=iterations,
            spec_hash=fingerprint.spec_hash,
            tracked_configs=fingerprint.tracked_configs,
            kind=self.kind,
            now=self.now(),
        )

    def with_phase(self, phase: Phase) -> CanaryStatus:
        return st.set_phase(
            self.status,
            phase,
            kind=self.kind,
            now=self.now(),
            analysis_iterations=self.iterations,
            routed_canary_weight=self.routes.canary_weight,
        )

    async def write(self, status: CanaryStatus) -> None:
        """Persist `status` (plus any cookies the router chose this cycle), continue from it and
        publish its phase on the status gauge."""
        if self.cookies is not None:
            status = status.model_copy(
                update={
                    "session_affinity_cookie": self.cookies.session_affinity_cookie,
                    "primary_session_affinity_cookie": self.cookies.primary_session_affinity_cookie,
                    "previous_session_affinity_cookie": (
                        self.cookies.previous_session_affinity_cookie
                    ),
                }
            )
            self.cookies = None
        self.canary = await self.deps.status.write_status(self.canary, status)
        self.publish_phase()

    def publish_phase(self) -> None:
        """`flagger_canary_status` from the phase as last read or written."""
        self.deps.metrics.set_status(self.canary, st.phase_gauge(self.phase))

    # --- routes ------------------------------------------------------------------------------

    async def read_routes(self) -> bool:
        """The live routes (and the weight gauges); False (after a Warning) when unreadable."""
        try:
            self.routes = await self.mesh_router.get_routes(self.canary)
        except Exception as error:
            await self.warn(error)
            return False
        self.publish_weights()
        return True

    def baseline_share(self, primary: int, canary: int) -> int:
        """A fresh baseline's weight for the two-way split `primary`/`canary`: the canary's,
        out of the primary's, while the run analyses (docs/analysis.md); 0 otherwise."""
        if not self.canary.spec.wants_baseline or self.phase not in ANALYSING_PHASES:
            return 0
        return max(0, min(canary, primary))

    async def set_routes(self, primary: int, canary: int, mirrored: bool) -> bool:
        """Route traffic (and publish the weights); False (after a Warning) when it failed.

        `primary`/`canary` is the two-way split; a fresh baseline's share comes out of the
        primary's (primary 100 - 2w, canary w, baseline w)."""
        baseline = self.baseline_share(primary, canary)
        try:
            cookies = await self.mesh_router.set_routes(
                self.canary, primary - baseline, canary, mirrored, baseline_weight=baseline
            )
        except Exception as error:
            await self.warn(error)
            return False
        if cookies is not None:
            self.cookies = cookies
        self.routes = Routes(primary - baseline, canary, mirrored, baseline)
        self.publish_weights()
        return True

    def publish_weights(self) -> None:
        routes = self.routes
        self.deps.metrics.set_weight(self.canary, routes.primary_weight, routes.canary_weight)

    # --- effects -----------------------------------------------------------------------------

    async def attempt(self, action: Awaitable[None]) -> bool:
        """Await a seam call; a failure becomes a Warning event and ends the step."""
        try:
            await action
        except Exception as error:
            await self.warn(error)
            return False
        return True

    async def warn(self, error: BaseException) -> None:
        log.info("%s: %s", self.key, error)
        await self.event("Warning", str(error))

    async def event(self, event_type: EventType, message: str, phase: Phase | None = None) -> None:
        await record(self.deps, self.canary, event_type, message, phase)

    async def alert(self, message: str, severity: AlertSeverity, *, metadata: bool = False) -> None:
        try:
            await self.deps.alerts.alert(self.canary, message, metadata=metadata, severity=severity)
        except Exception:
            log.exception("%s: alert %r failed", self.key, message)


async def record(
    deps: Dependencies, canary: Canary, event_type: EventType, message: str, phase: Phase | None
) -> None:
    """Record an event on `canary`; a failure is logged, never raised."""
    current: Phase = canary.status.phase or "" if canary.status else ""
    try:
        await deps.recorder.event(canary, event_type, message, phase or current)
    except Exception:
        # Telling about a transition must never stop it.
        log.exception("%s: recording event %r failed", canary.key, message)
