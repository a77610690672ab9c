"""`coalmine demo`: a complete canary release on this machine, in one process, no cluster needed.

devcluster (the embedded API server), the controller, the demo application with its traffic, and
(when the `prometheus` binary is on the PATH) a real Prometheus run side by side on one event
loop. The demo then does what a user does: creates the target, a Gateway, two MetricTemplates and
a Canary, waits for initialization, changes the target, and watches the release to its end.
Everything started here is stopped here, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from coalmine.api.crds import crd_documents
from coalmine.api.models import parse_go_duration
from coalmine.controller.runtime import Controller
from coalmine.controller.settings import Settings
from coalmine.demo.gateway import GatewayStandIn
from coalmine.demo.prometheus import PrometheusError, PrometheusProcess, prometheus_binary
from coalmine.demo.scenarios import (
    APEX,
    GATEWAY,
    LATENCY_MAX_MS,
    LATENCY_METRIC,
    NAMESPACE,
    PROVIDER,
    SCENARIOS,
    SUCCESS_RATE_METRIC,
    SUCCESS_RATE_MIN,
    Scenario,
    backend_texts,
    canary,
    gateway,
    metric_templates,
    version_in,
)
from coalmine.demo.traffic import TrafficGenerator, TrafficServer
from coalmine.demo.view import CHANGE, DemoState, LiveView, MetricReading, PlainView, View
from coalmine.devcluster import ApiError, DevCluster, load_manifests
from coalmine.devcluster.crds import crd_path
from coalmine.devcluster.storage import Change

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TERMINAL_PHASES = ("Succeeded", "Failed")
# Gateway API for the demo itself; Istio's, App Mesh's, Gloo's, Kuma's and APISIX's too, so the
# tutorials can try them on the demo's cluster.
ROUTER_CRDS = (
    "gateway-api/gateway.networking.k8s.io_gateways.yaml",
    "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
    "istio/networking.istio.io_virtualservices.yaml",
    "istio/networking.istio.io_destinationrules.yaml",
    "appmesh/appmesh.k8s.aws_virtualnodes.yaml",
    "appmesh/appmesh.k8s.aws_virtualrouters.yaml",
    "appmesh/appmesh.k8s.aws_virtualservices.yaml",
    "gloo/gloo.solo.io_upstreams.yaml",
    "gloo/gateway.solo.io_routetables.yaml",
    "kuma/kuma.io_trafficroutes.yaml",
    "apisix/apisix.apache.org_apisixroutes.yaml",
)
ROUTE_RESOURCE = "httproutes.gateway.networking.k8s.io"


@dataclass(frozen=True)
class DemoOptions:
    scenario: str = "service"
    interval: str = "1s"
    metrics: str = "auto"  # prometheus | http | auto
    keep_running: bool = False
    plain: bool | None = None  # None: plain unless stdout is a terminal
    kubeconfig_out: str = ""  # where to write devcluster's kubeconfig (default: a temp dir)

    def interval_seconds(self) -> float:
        seconds = parse_go_duration(self.interval)
        if seconds is None or seconds <= 0:
            raise ValueError(
                f"--interval: not a positive duration (like 1s, 500ms): {self.interval!r}"
            )
        return seconds


class DemoError(RuntimeError):
    """The demo cannot run as asked (a missing binary, a bad option)."""


def choose_metrics(asked: str) -> str:
    if asked == "auto":
        return "prometheus" if prometheus_binary() else "http"
    if asked == "prometheus" and prometheus_binary() is None:
        raise DemoError(
            "--metrics prometheus: the prometheus binary is not on the PATH "
            "(apt-get install prometheus), or use --metrics http"
        )
    return asked


class ClusterWatcher:
    """Fills the demo state from the store's change feed (read only: it never writes)."""

    def __init__(self, cluster: DevCluster, state: DemoState) -> None:
        self.cluster = cluster
        self.state = state
        store = cluster.store
        self._canaries = store.resolve("canaries.flagger.app").storage_key
        self._routes = store.resolve(ROUTE_RESOURCE).storage_key
        self._events = store.resolve("events").storage_key
        self._unsubscribe = store.subscribe(self._on_change)

    def close(self) -> None:
        self._unsubscribe()

    def _on_change(self, change: Change) -> None:
        obj = change.entry.obj
        metadata = obj.get("metadata") or {}
        if metadata.get("namespace") != NAMESPACE:
            return
        if change.storage == self._events and change.type != "DELETED":
            self._on_event(obj, change.old)
        elif metadata.get("name") != APEX or change.type == "DELETED":
            return
        elif change.storage == self._canaries:
            self._on_canary(obj)
        elif change.storage == self._routes:
            self.state.route = route_weights(obj)

    def _on_canary(self, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        state = self.state
        state.phase = str(status.get("phase") or state.phase)
        state.canary_weight = int(status.get("canaryWeight") or 0)
        state.failed_checks = int(status.get("failedChecks") or 0)
        weight = state.canary_weight
        if state.released_at is not None and state.phase not in ("Initialized", *TERMINAL_PHASES):
            state.progressed = True
        if state.phase == "Progressing" and weight > (state.steps[-1] if state.steps else 0):
            state.steps.append(weight)

    def _on_event(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        message = str(obj.get("message") or obj.get("note") or "")
        if not message:
            return
        seen = _event_count(old) if old is not None else 0
        for _ in range(max(0, _event_count(obj) - seen)):
            self.state.add_event(str(obj.get("type") or "Normal"), message)


def _event_count(obj: dict[str, Any]) -> int:
    series = obj.get("series") or {}
    return int(obj.get("count") or series.get("count") or 1)


def backend_weights(route: dict[str, Any]) -> dict[str, int]:
    """Backend Service → weight, from the HTTPRoute's first rule with backends."""
    weights: dict[str, int] = {}
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            name = str(ref.get("name", ""))
            weights[name] = weights.get(name, 0) + int(ref.get("weight", 1))
        if weights:
            break
    return weights


def route_weights(route: dict[str, Any]) -> dict[str, int]:
    """The same, as primary/canary shares for the view."""
    shares: dict[str, int] = {}
    for name, weight in backend_weights(route).items():
        side = "canary" if name.endswith("-canary") else "primary"
        shares[side] = shares.get(side, 0) + weight
    return shares


class ClusterTraffic:
    """Where a request goes: the HTTPRoute's weights, and the version each backend selects."""

    def __init__(self, cluster: DevCluster, versions: list[str]) -> None:
        self.store = cluster.store
        self.versions = versions

    def routes(self) -> dict[str, int]:
        try:
            route = self.store.get(ROUTE_RESOURCE, APEX, NAMESPACE)
        except ApiError:
            return {APEX: 1}  # before initialization: straight to the target
        return backend_weights(route)

    def version_of(self, backend: str) -> str | None:
        try:
            service = self.store.get("services", backend, NAMESPACE)
        except ApiError:
            return None
        deployments: list[dict[str, Any]] = []
        if (service.get("spec") or {}).get("selector"):
            deployments = self.store.list("deployments.apps", NAMESPACE)
        return version_in(backend_texts(service, deployments), self.versions)


def endpoints_config_map(app_url: str, prometheus_url: str) -> dict[str, Any]:
    """Where the demo's app and Prometheus listen, for the tutorials' own MetricTemplates."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "coalmine-demo", "namespace": NAMESPACE},
        "data": {"app": app_url, "prometheus": prometheus_url},
    }


def describe_primary(cluster: DevCluster, scenario: Scenario) -> str:
    """What the primary copy serves at the end: the proof of a promotion or of a rollback."""
    name = f"{APEX}-primary"
    try:
        if scenario.target_kind == "Deployment":
            spec = cluster.store.get("deployments.apps", name, NAMESPACE)["spec"]
            images = [c["image"] for c in spec["template"]["spec"]["containers"]]
            return f"Deployment {name} image {', '.join(images)}"
        spec = cluster.store.get("services", name, NAMESPACE)["spec"]
    except (ApiError, KeyError) as error:
        return f"{name}: not readable ({error})"
    if spec.get("type") == "ExternalName":
        return f"Service {name} externalName {spec.get('externalName')}"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return f"Service {name} selector {selector}"


def make_view(options: DemoOptions, out: TextIO) -> View:
    plain = options.plain if options.plain is not None else not out.isatty()
    if plain:
        return PlainView(out)
    return LiveView(Console(file=out))


def configure_demo_logging(view: View) -> None:
    """Only the controller's warnings and errors, below the view (they explain a surprise)."""
    handler: logging.Handler
    if isinstance(view, LiveView):
        from rich.logging import RichHandler

        handler = RichHandler(console=view.console, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.ERROR)
    # The canary's warnings are Kubernetes events, which the view already shows.
    logging.getLogger("coalmine.canary").setLevel(logging.ERROR)


async def run_demo(options: DemoOptions, stop: asyncio.Event, out: TextIO = sys.stdout) -> int:
    """Run the scenario; 0 when it ended as expected, 1 otherwise, 130 when interrupted."""
    scenario = SCENARIOS[options.scenario]
    interval = options.interval_seconds()
    metrics = choose_metrics(options.metrics)
    view = make_view(options, out)
    configure_demo_logging(view)
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coalmine-demo-")))
        kubeconfig = (
            Path(options.kubeconfig_out) if options.kubeconfig_out else workdir / "kubeconfig"
        )
        cluster = DevCluster(port=0, rollout_delay=0.3, kubeconfig_path=kubeconfig)
        await cluster.start()
        stack.push_async_callback(cluster.stop)
        cluster.apply_manifests(crd_documents())
        for relative in ROUTER_CRDS:
            cluster.apply_manifests(load_manifests(crd_path(relative).read_text()))

        server = TrafficServer(scenario.versions)
        await server.start()
        stack.push_async_callback(server.stop)
        server.declare_backends([f"{APEX}-primary", f"{APEX}-canary", APEX])
        if metrics == "prometheus":
            view.say("starting Prometheus…")
            prometheus = PrometheusProcess(f"127.0.0.1:{server.port}")
            await stack.enter_async_context(prometheus)
            address = prometheus.url
            source = f"Prometheus {address} (scraping the demo app every 500ms)"
        else:
            address = server.url
            source = f"http provider, JSON stats of the demo app at {address}"

        cluster.apply_manifests(
            [endpoints_config_map(server.url, address if metrics == "prometheus" else "")]
        )
        state = DemoState(
            scenario=scenario.name,
            title=scenario.title,
            metrics_source=source,
            expected_phase=scenario.expected_phase,
            metrics=[
                MetricReading(SUCCESS_RATE_METRIC, minimum=SUCCESS_RATE_MIN, unit="%"),
                MetricReading(LATENCY_METRIC, maximum=LATENCY_MAX_MS, unit="ms"),
            ],
        )
        watcher = ClusterWatcher(cluster, state)
        stack.callback(watcher.close)
        gateway_stand_in = GatewayStandIn(cluster, GATEWAY, NAMESPACE)
        stack.callback(gateway_stand_in.close)

        controller = Controller(
            Settings(
                kubeconfig=str(cluster.kubeconfig_path),
                metrics_server=address if metrics == "prometheus" else "http://127.0.0.1:9",
                min_analysis_interval=interval,
                control_loop_interval=1.0,
                mesh_provider=PROVIDER,
                listen_address="127.0.0.1:0",
                log_level="warning",
            )
        )
        ready = asyncio.Event()
        controller.on_ready = ready.set
        controller_task = asyncio.create_task(controller.run())
        stack.push_async_callback(_stop_controller, controller, controller_task)

        traffic = ClusterTraffic(cluster, list(scenario.versions))
        generator = TrafficGenerator(server, traffic.routes, traffic.version_of)
        generator.start()
        stack.push_async_callback(generator.stop)

        view = stack.enter_context(view)
        refresher = asyncio.create_task(_refresh(view, state, controller))
        stack.push_async_callback(_cancel, refresher)

        outcome = await _drive(
            cluster,
            scenario,
            options,
            metrics,
            address,
            state,
            stop,
            ready,
            controller_task,
            interval,
        )
        view.refresh(state)
        await asyncio.sleep(0.2)
        await _cancel(refresher)
        view.__exit__(None, None, None)
        if outcome == EXIT_INTERRUPTED:
            view.say("interrupted: stopping everything")
            return EXIT_INTERRUPTED
        for line in state.summary_lines():
            view.say(line)
        if options.keep_running and not stop.is_set():
            view.say(
                f"devcluster keeps running; kubeconfig: {cluster.kubeconfig_path}\n"
                f"  kubectl --kubeconfig {cluster.kubeconfig_path} get canaries,services,httproutes\n"
                "The controller keeps running too: apply your own Canaries (see docs/tutorials).\n"
                "Ctrl-C to stop."
            )
            await stop.wait()
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


async def _drive(
    cluster: DevCluster,
    scenario: Scenario,
    options: DemoOptions,
    metrics: str,
    address: str,
    state: DemoState,
    stop: asyncio.Event,
    ready: asyncio.Event,
    controller_task: asyncio.Task[int],
    interval: float,
) -> int:
    """Create the objects, wait for initialization, change the target, wait for the end."""
    limit = 60.0 + 30.0 * interval

    async def until(predicate: Callable[[], bool], what: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not predicate():
            if stop.is_set():
                return False
            if controller_task.done():
                error = None if controller_task.cancelled() else controller_task.exception()
                state.note = f"the controller stopped unexpectedly: {error!r}"
                return False
            if loop.time() > deadline:
                state.note = f"timed out waiting for {what}"
                return False
            await asyncio.sleep(0.05)
        return True

    if not await until(ready.is_set, "the controller"):
        return EXIT_INTERRUPTED if stop.is_set() else EXIT_UNEXPECTED
    cluster.apply_manifests(
        [
            gateway(),
            *scenario.target,
            *metric_templates(metrics, address),
            canary(scenario, options.interval),
        ]
    )
    if not await until(lambda: state.phase == "Initialized", "initialization"):
        return EXIT_INTERRUPTED if stop.is_set() else EXIT_UNEXPECTED
    # Let a few requests reach the primary before the new revision arrives.
    await asyncio.sleep(min(1.0, interval))
    change = scenario.change
    cluster.store.patch(change.resource, change.name, change.patch, NAMESPACE)
    state.add_event(CHANGE, change.description)
    state.released_at = time.monotonic()
    if not await until(
        lambda: state.progressed and state.phase in TERMINAL_PHASES, "the end of the release"
    ):
        return EXIT_INTERRUPTED if stop.is_set() else EXIT_UNEXPECTED
    state.finished_at = time.monotonic()
    state.primary = describe_primary(cluster, scenario)
    return EXIT_OK if state.phase == scenario.expected_phase else EXIT_UNEXPECTED


async def _refresh(view: View, state: DemoState, controller: Controller) -> None:
    while True:
        for reading in state.metrics:
            value = controller.metrics.registry.get_sample_value(
                "flagger_canary_metric_analysis",
                {"name": APEX, "namespace": NAMESPACE, "metric": reading.name},
            )
            if value is not None:
                reading.value = value
        view.refresh(state)
        await asyncio.sleep(0.1)


async def _stop_controller(controller: Controller, task: asyncio.Task[int]) -> None:
    controller.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), 15)
    except (TimeoutError, Exception):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


__all__ = ["DemoError", "DemoOptions", "PrometheusError", "choose_metrics", "run_demo"]
