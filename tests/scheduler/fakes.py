"""In-memory fakes of the scheduler's own seams, with the state a real cluster would keep.

Every mutation goes through `World.write`, which counts writes and can raise `Crash` just before or
just after a chosen one: the crash-safety tests kill the "controller" there and start a fresh
scheduler from the persisted state (the stored canary and the fakes' objects).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.analysis import AnalysisOutcome, AvailabilityOutcome, MetricResult
from coalmine.api.hashing import spec_hash
from coalmine.api.models import (
    AlertSeverity,
    Canary,
    CanaryStatus,
    CanaryWebhook,
    EventType,
    Phase,
    Strategy,
)
from coalmine.routers.base import Routes, SessionAffinityCookies
from coalmine.scheduler import Dependencies, Scheduler, SchedulerConfig
from coalmine.scheduler.ports import AnalysisStatus
from coalmine.targets.base import TargetFingerprint, TargetMetadata, TargetNotReady


class Crash(BaseException):
    """The controller process dies here (BaseException: the scheduler must not swallow it)."""


@dataclass
class World:
    """Shared write counter and log of every effect, in order."""

    writes: int = 0
    crash_at: int | None = None
    crash_after: bool = False
    log: list[str] = field(default_factory=list)

    def write(self, what: str, action: Callable[[], None]) -> None:
        self.writes += 1
        crash_here = self.crash_at == self.writes
        if crash_here and not self.crash_after:
            self.crash_at = None
            raise Crash(f"before {what}")
        action()
        self.log.append(what)
        if crash_here:
            self.crash_at = None
            raise Crash(f"after {what}")


# --- the API server's copy of the Canary --------------------------------------------------------


class FakeStatusStore:
    """Stores the canary as an API server would: a copy, status replaced on write."""

    def __init__(self, world: World, canary: Canary) -> None:
        self.world = world
        self._canary = canary.model_copy(deep=True)
        self.history: list[CanaryStatus] = []

    def get(self) -> Canary:
        return self._canary.model_copy(deep=True)

    def update_spec(self, mutate: Callable[[Canary], None]) -> None:
        """A user edits the Canary (not a controller write)."""
        mutate(self._canary)

    async def write_status(self, canary: Canary, status: CanaryStatus) -> Canary:
        def persist() -> None:
            self._canary = self._canary.model_copy(update={"status": status.model_copy(deep=True)})
            self.history.append(status.model_copy(deep=True))

        self.world.write(f"status phase={status.phase} weight={status.canary_weight}", persist)
        return self.get()


# --- target -------------------------------------------------------------------------------------


class FakeTarget:
    """A target kind keeping the target's and the primary's specs and configs."""

    def __init__(self, world: World, kind: str = "Deployment") -> None:
        self.world = world
        self.kind = kind
        self.target_spec: dict[str, Any] = {"image": "podinfo:1.0.0"}
        self.configs: dict[str, str] = {"configmap/podinfo-config-env": "aaaa"}
        self.primary_spec: dict[str, Any] | None = None
        self.primary_configs: dict[str, str] | None = None
        self.primary_revision: str | None = None
        self.scaled_to_zero = False
        self.finalized = False
        self.promotions = 0
        #: The metric templates' `route` the kind reports (Knative: the latest revision).
        self.route: str | None = None
        self.init_errors: list[TargetNotReady] = []
        self.primary_error: TargetNotReady | None = None
        self.canary_error: TargetNotReady | None = None
        self.calls: list[str] = []

    @property
    def tracks_configs(self) -> bool:
        return self.kind != "Service"

    def set_image(self, image: str) -> None:
        self.target_spec = {**self.target_spec, "image": image}

    async def get_metadata(self, canary: Canary) -> TargetMetadata:
        if self.kind == "Service":
            return TargetMetadata()
        return TargetMetadata("app", canary.spec.target_ref.name, {"http-metrics": 8080})

    async def initialize(self, canary: Canary) -> None:
        self.calls.append("initialize")
        if self.primary_spec is None:

            def create() -> None:
                self.primary_spec = copy.deepcopy(self.target_spec)
                self.primary_configs = dict(self.configs) if self.tracks_configs else None

            self.world.write("target create primary", create)
        phase = canary.status.phase if canary.status else None
        skip = bool(canary.spec.skip_analysis) or canary.spec.analysis is None
        if phase in (None, "", "Initializing") and not skip and self.init_errors:
            raise self.init_errors.pop(0)

    async def fingerprint(self, canary: Canary) -> TargetFingerprint:
        return TargetFingerprint(
            spec_hash=spec_hash(self.target_spec),
            tracked_configs=dict(self.configs) if self.tracks_configs else None,
            primary_revision=self.primary_revision,
            route=self.route,
        )

    async def is_primary_ready(self, canary: Canary) -> None:
        self.calls.append("is_primary_ready")
        if self.primary_error is not None:
            raise self.primary_error

    async def is_canary_ready(self, canary: Canary) -> None:
        self.calls.append("is_canary_ready")
        if self.canary_error is not None:
            raise self.canary_error

    async def promote(self, canary: Canary, revision: str) -> None:
        def copy_spec() -> None:
            self.primary_spec = copy.deepcopy(self.target_spec)
            self.primary_configs = dict(self.configs) if self.tracks_configs else None
            self.primary_revision = revision
            self.promotions += 1

        self.world.write("target promote", copy_spec)

    async def scale_to_zero(self, canary: Canary) -> None:
        self.world.write("target scale to zero", lambda: setattr(self, "scaled_to_zero", True))

    async def scale_from_zero(self, canary: Canary) -> None:
        self.world.write("target scale from zero", lambda: setattr(self, "scaled_to_zero", False))

    async def finalize(self, canary: Canary) -> None:
        def revert() -> None:
            self.scaled_to_zero = False
            self.finalized = True

        self.world.write("target finalize", revert)


class FakeScaler:
    def __init__(self, world: World) -> None:
        self.world = world
        self.paused = False
        self.primary_updates = 0
        self.primary_created = False

    async def reconcile_primary_scaler(self, canary: Canary, *, init: bool) -> None:
        if not self.primary_created:
            self.world.write(
                "scaler create primary", lambda: setattr(self, "primary_created", True)
            )
        if not init:
            self.primary_updates += 1

    async def pause_target_scaler(self, canary: Canary) -> None:
        if not self.paused:
            self.world.write("scaler pause", lambda: setattr(self, "paused", True))

    async def resume_target_scaler(self, canary: Canary) -> None:
        if self.paused:
            self.world.write("scaler resume", lambda: setattr(self, "paused", False))


# --- routers ------------------------------------------------------------------------------------


class FakeServiceRouter:
    def __init__(self, world: World) -> None:
        self.world = world
        self.services: set[str] = set()
        self.finalized = False

    async def initialize(self, canary: Canary, metadata: TargetMetadata) -> None:
        if not metadata.label:
            return  # Service targets: the no-op router
        apex = canary.spec.apex_name
        for name in (f"{apex}-primary", f"{apex}-canary"):
            if name not in self.services:
                self.world.write(f"service {name}", functools.partial(self.services.add, name))

    async def reconcile(self, canary: Canary, metadata: TargetMetadata) -> None:
        apex = canary.spec.apex_name
        if metadata.label and apex not in self.services:
            self.world.write(f"service {apex}", lambda: self.services.add(apex))

    async def finalize(self, canary: Canary, metadata: TargetMetadata) -> None:
        self.finalized = True


class FakeRouter:
    """A weighted routing object; in `noop` mode it behaves like Flagger's kubernetes router."""

    def __init__(self, world: World, *, noop: bool = False) -> None:
        self.world = world
        self.noop = noop
        self.supports_mirroring = not noop
        self.exists = False
        self.routes = Routes(100, 0, False)
        self.history: list[Routes] = []
        self.finalized = False
        self.cookie_counter = 0

    async def reconcile(self, canary: Canary) -> None:
        if not self.exists and not self.noop:
            self.world.write("router create", lambda: setattr(self, "exists", True))

    async def set_routes(
        self,
        canary: Canary,
        primary_weight: int,
        canary_weight: int,
        mirrored: bool,
        *,
        baseline_weight: int = 0,
    ) -> SessionAffinityCookies | None:
        if self.noop:
            return None
        if not self.exists:
            raise RuntimeError("VirtualService podinfo.default not found")
        new = Routes(primary_weight, canary_weight, mirrored, baseline_weight)

        def apply() -> None:
            self.routes = new
            self.history.append(new)

        self.world.write(f"routes {primary_weight}/{canary_weight} mirrored={mirrored}", apply)
        analysis = canary.spec.analysis
        if analysis is None or analysis.session_affinity is None:
            return None
        status = canary.status or CanaryStatus()
        if canary_weight > 0:
            cookie = status.session_affinity_cookie
            if not cookie:
                self.cookie_counter += 1
                cookie = f"{analysis.session_affinity.cookie_name}=run{self.cookie_counter}"
            return SessionAffinityCookies(session_affinity_cookie=cookie)
        return SessionAffinityCookies(
            previous_session_affinity_cookie=status.session_affinity_cookie
        )

    async def get_routes(self, canary: Canary) -> Routes:
        if self.noop:
            iterations = (canary.status.iterations or 0) if canary.status else 0
            return Routes(0, 100, False) if iterations > 0 else Routes(100, 0, False)
        if not self.exists:
            raise RuntimeError("VirtualService podinfo.default not found")
        return self.routes

    async def finalize(self, canary: Canary) -> None:
        self.finalized = True


# --- analysis, hooks, alerts, events, metrics, clock --------------------------------------------


class FakeAnalyzer:
    """Metric checks answering from a script: a queue of outcomes, then `default`."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world
        self.providers_error: str | None = None
        self.script: list[AnalysisOutcome] = []
        self.default = AnalysisOutcome((MetricResult("request-success-rate", 100.0, True),))
        self.calls = 0
        self.routes: list[str | None] = []

    def fail_with(self, message: str) -> None:
        self.default = AnalysisOutcome(
            (MetricResult("request-success-rate", 50.0, False, message, "warning"),)
        )

    async def check_availability(self, canary: Canary) -> AvailabilityOutcome:
        if self.providers_error is not None:
            return AvailabilityOutcome(False, self.providers_error)
        return AvailabilityOutcome(True, "all the metrics providers are available!")

    async def analyse(self, canary: Canary, *, route: str | None = None) -> AnalysisOutcome:
        self.calls += 1
        self.routes.append(route)
        if self.world is not None:
            self.world.log.append("check")
        return self.script.pop(0) if self.script else self.default


class FakeWebhooks:
    """Webhook endpoints: each answers OK unless its name is in `failing` (body as error)."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world
        self.failing: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def call(self, canary: Canary, webhook: CanaryWebhook, phase: Phase) -> None:
        self.calls.append((webhook.effective_type, webhook.name, phase))
        if self.world is not None:
            self.world.log.append(f"hook {webhook.effective_type}")
        if webhook.name in self.failing:
            raise RuntimeError(self.failing[webhook.name])

    def calls_of(self, hook_type: str) -> list[tuple[str, str]]:
        return [(name, phase) for kind, name, phase in self.calls if kind == hook_type]


@dataclass
class FakeAlerts:
    sent: list[tuple[str, str, bool]] = field(default_factory=list)
    broken: bool = False

    async def alert(
        self, canary: Canary, message: str, *, metadata: bool, severity: AlertSeverity
    ) -> None:
        if self.broken:
            raise ConnectionError("slack unreachable")
        self.sent.append((message, severity, metadata))


@dataclass
class FakeRecorder:
    events: list[tuple[str, str, str]] = field(default_factory=list)
    broken: bool = False

    async def event(
        self, canary: Canary, event_type: EventType, message: str, phase: Phase
    ) -> None:
        if self.broken:
            raise ConnectionError("events API unavailable")
        self.events.append((event_type, message, phase))

    @property
    def messages(self) -> list[str]:
        return [message for _, message, _ in self.events]


@dataclass
class FakeMetrics:
    status: dict[str, int] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    successes: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    failures: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    analysis: dict[str, float] = field(default_factory=dict)

    def set_status(self, canary: Canary, value: int) -> None:
        self.status[canary.spec.target_ref.name] = value

    def set_weight(self, canary: Canary, primary_weight: int, canary_weight: int) -> None:
        target = canary.spec.target_ref.name
        self.weights[f"{target}-primary"] = primary_weight
        self.weights[target] = canary_weight

    def inc_successes(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None:
        key = (canary.spec.target_ref.name, canary.namespace, strategy, status)
        self.successes[key] = self.successes.get(key, 0) + 1

    def inc_failures(self, canary: Canary, strategy: Strategy, status: AnalysisStatus) -> None:
        key = (canary.spec.target_ref.name, canary.namespace, strategy, status)
        self.failures[key] = self.failures.get(key, 0) + 1

    def observe_duration(self, canary: Canary, seconds: float) -> None:
        self.durations.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)
        self.ticks = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        self.ticks += 0.5
        return self.ticks

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class FakeSeams:
    target_controller: FakeTarget
    scaler_reconciler: FakeScaler | None
    services: FakeServiceRouter
    router: FakeRouter
    providers: list[str] = field(default_factory=list)

    def target(self, canary: Canary) -> FakeTarget:
        return self.target_controller

    def scaler(self, canary: Canary) -> FakeScaler | None:
        return self.scaler_reconciler if canary.spec.autoscaler_ref else None

    def service_router(self, canary: Canary) -> FakeServiceRouter:
        return self.services

    def mesh_router(self, canary: Canary, provider: str) -> FakeRouter:
        self.providers.append(provider)
        return self.router


# --- a whole rig --------------------------------------------------------------------------------

TARGET_API_VERSIONS = {"Deployment": "apps/v1", "DaemonSet": "apps/v1", "Service": "v1"}


def make_canary(
    kind: str = "Deployment",
    analysis: dict[str, Any] | None = None,
    *,
    provider: str | None = None,
    autoscaler: bool = False,
    **spec: Any,
) -> Canary:
    """The upstream fixture's canary `podinfo` in `default` (threshold 10, stepWeight 10, max 50)."""
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": TARGET_API_VERSIONS[kind], "kind": kind, "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 10, "stepWeight": 10, "maxWeight": 50}
        if analysis is None
        else analysis,
        **spec,
    }
    if provider is not None:
        body["provider"] = provider
    if autoscaler:
        body["autoscalerRef"] = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        }
    return Canary.model_validate(
        {"metadata": {"name": "podinfo", "namespace": "default"}, "spec": body}
    )


class Rig:
    """A scheduler wired to fakes; the state of every fake survives `restart()`."""

    def __init__(self, canary: Canary, *, mesh_provider: str = "istio") -> None:
        self.world = World()
        self.store = FakeStatusStore(self.world, canary)
        kind = canary.spec.target_ref.kind
        self.target = FakeTarget(self.world, kind)
        self.scaler = FakeScaler(self.world)
        self.services = FakeServiceRouter(self.world)
        provider = canary.spec.provider or mesh_provider
        self.router = FakeRouter(self.world, noop=provider == "kubernetes")
        self.analyzer = FakeAnalyzer(self.world)
        self.webhooks = FakeWebhooks(self.world)
        self.alerts = FakeAlerts()
        self.recorder = FakeRecorder()
        self.metrics = FakeMetrics()
        self.clock = FakeClock()
        self.seams = FakeSeams(self.target, self.scaler, self.services, self.router)
        self.config = SchedulerConfig(mesh_provider=mesh_provider)
        self.scheduler = self.restart()

    def restart(self) -> Scheduler:
        """A new controller process: nothing but the persisted state carries over."""
        self.scheduler = Scheduler(
            Dependencies(
                seams=self.seams,
                analyzer=self.analyzer,
                webhooks=self.webhooks,
                alerts=self.alerts,
                recorder=self.recorder,
                status=self.store,
                metrics=self.metrics,
                clock=self.clock,
            ),
            self.config,
        )
        return self.scheduler

    @property
    def canary(self) -> Canary:
        return self.store.get()

    @property
    def status(self) -> CanaryStatus:
        return self.store.get().status or CanaryStatus()

    @property
    def phase(self) -> str:
        return self.status.phase or ""

    @property
    def weights(self) -> tuple[int, int]:
        return self.router.routes.primary_weight, self.router.routes.canary_weight

    async def cycle(self) -> None:
        await self.scheduler.advance(self.store.get())

    async def cycles(self, count: int) -> list[tuple[str, int]]:
        """Run `count` cycles; the (phase, status.canaryWeight) after each."""
        seen = []
        for _ in range(count):
            await self.cycle()
            seen.append((self.phase, self.status.canary_weight or 0))
        return seen

    async def initialise(self) -> None:
        """Cycles until Initialized (the controller's first sync writes Initializing first)."""
        for _ in range(5):
            await self.cycle()
            if self.phase == "Initialized":
                return
        raise AssertionError(f"not initialised: {self.phase}")

    async def new_revision(self, image: str = "podinfo:2.0.0") -> None:
        """Initialise, then roll out a new target revision (not yet detected)."""
        if self.phase != "Initialized":
            await self.initialise()
        self.target.set_image(image)
