"""The demo's application and its users: two versions behind one port, and a load generator.

`TrafficServer` plays the application: `GET /version/<name>` answers as that version is told to
(success rate, latency), and records every request under the backend Service the request was
routed to. It exposes what a mesh would export: a JSON summary per backend (read by the `http`
metric provider) and Prometheus series (scraped by a real Prometheus).

`TrafficGenerator` plays the gateway and its users: it reads the live routing weights, picks the
backend of each request by those weights, resolves the backend Service to the version it selects
right now, and sends the request. So the canary's metrics come from the canary's own traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from coalmine.api.models import parse_go_duration

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STATS_HISTORY_SECONDS = 300.0


@dataclass
class VersionBehaviour:
    """How one version answers; the demo's scenarios set these (and a user can, over HTTP)."""

    success_rate: float = 100.0
    latency_ms: float = 30.0


@dataclass(frozen=True)
class _Request:
    at: float
    backend: str
    ok: bool
    seconds: float


@dataclass(frozen=True)
class BackendStats:
    requests: int
    success_rate: float | None
    latency_p99_ms: float | None

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "successRate": self.success_rate,
            "latencyP99Ms": self.latency_p99_ms,
        }


def summarize(requests: list[_Request]) -> BackendStats:
    """Success rate and P99 latency; None (not 0) without requests, so "no data" stays visible."""
    if not requests:
        return BackendStats(0, None, None)
    good = sum(1 for r in requests if r.ok)
    latencies = sorted(r.seconds for r in requests)
    index = max(0, math.ceil(0.99 * len(latencies)) - 1)
    return BackendStats(
        len(requests), round(100.0 * good / len(requests), 2), round(latencies[index] * 1000, 1)
    )


class TrafficServer:
    """The two versions, the JSON stats endpoint and the Prometheus endpoint, on one port."""

    def __init__(self, versions: dict[str, VersionBehaviour], seed: int = 7) -> None:
        self.versions = versions
        self.registry = CollectorRegistry()
        self.requests_total = Counter(
            "demo_requests",
            "Requests served by the demo application",
            ["backend", "version", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "demo_request_duration_seconds",
            "Latency of the demo application",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.history: deque[_Request] = deque()
        self.port = 0
        self._random = random.Random(seed)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def declare_backends(self, backends: list[str]) -> None:
        """Create each backend's series at 0, so a rate over them exists from the first request."""
        for backend in backends:
            self.duration.labels(backend=backend)
            for version in self.versions:
                for code in ("200", "500"):
                    self.requests_total.labels(backend=backend, version=version, code=code)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/version/{name}", self._serve)
        app.router.add_put("/version/{name}", self._configure)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stats(self, backend: str, window: float) -> BackendStats:
        since = time.monotonic() - window
        return summarize([r for r in self.history if r.backend == backend and r.at >= since])

    async def _index(self, request: web.Request) -> web.Response:
        return web.json_response({"versions": sorted(self.versions)})

    async def _serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        behaviour = self.versions.get(name)
        if behaviour is None:
            return web.json_response({"error": f"no version {name!r}"}, status=404)
        backend = request.query.get("backend", "")
        started = time.monotonic()
        jitter = self._random.uniform(0.8, 1.2)
        await asyncio.sleep(behaviour.latency_ms * jitter / 1000)
        ok = self._random.uniform(0, 100) < behaviour.success_rate
        seconds = time.monotonic() - started
        self._record(_Request(time.monotonic(), backend, ok, seconds), name)
        if ok:
            return web.json_response({"version": name})
        return web.json_response({"version": name, "error": "simulated failure"}, status=500)

    async def _configure(self, request: web.Request) -> web.Response:
        """`PUT /version/green {"successRate": 80, "latencyMs": 300}`: change a version live."""
        name = request.match_info["name"]
        try:
            body = await request.json()
            success_rate = float(body.get("successRate", 100.0))
            latency_ms = float(body.get("latencyMs", 30.0))
        except (ValueError, TypeError, AttributeError) as error:
            return web.json_response(
                {"error": f"body: expected {{successRate, latencyMs}} numbers: {error}"},
                status=400,
            )
        if not 0 <= success_rate <= 100 or latency_ms < 0:
            return web.json_response(
                {"error": "successRate must be within 0..100 and latencyMs at least 0"},
                status=400,
            )
        self.versions[name] = VersionBehaviour(success_rate, latency_ms)
        return web.json_response(
            {"version": name, "successRate": success_rate, "latencyMs": latency_ms}
        )

    def _record(self, request: _Request, version: str) -> None:
        self.history.append(request)
        while self.history and self.history[0].at < request.at - STATS_HISTORY_SECONDS:
            self.history.popleft()
        code = "200" if request.ok else "500"
        self.requests_total.labels(backend=request.backend, version=version, code=code).inc()
        self.duration.labels(backend=request.backend).observe(request.seconds)

    async def _stats(self, request: web.Request) -> web.Response:
        backend = request.query.get("backend", "")
        window_text = request.query.get("window", "1m")
        window = parse_go_duration(window_text)
        if window is None or window <= 0:
            return web.json_response(
                {"error": f"window: not a duration (like 10s): {window_text!r}"}, status=400
            )
        return web.json_response(self.stats(backend, window).as_json())

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


Routes = Callable[[], dict[str, int]]
Resolver = Callable[[str], str | None]


@dataclass
class SmoothWeightedPicker:
    """Nginx's smooth weighted round robin: exact shares over any short window, no randomness."""

    current: dict[str, int] = field(default_factory=dict)

    def pick(self, weights: dict[str, int]) -> str | None:
        live = {name: weight for name, weight in weights.items() if weight > 0}
        if not live:
            return None
        total = sum(live.values())
        for name, weight in live.items():
            self.current[name] = self.current.get(name, 0) + weight
        chosen = max(live, key=lambda name: self.current[name])
        self.current[chosen] -= total
        return chosen


class TrafficGenerator:
    """Sends `rate` requests per second, each to the backend the live weights pick."""

    def __init__(
        self, server: TrafficServer, routes: Routes, resolve: Resolver, rate: float = 40.0
    ) -> None:
        self.server = server
        self.routes = routes
        self.resolve = resolve
        self.rate = rate
        self.picker = SmoothWeightedPicker()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            period = 1.0 / self.rate
            while True:
                backend = self.picker.pick(self.routes())
                version = self.resolve(backend) if backend else None
                if backend and version and len(self._inflight) < 200:
                    task = asyncio.create_task(self._send(session, backend, version))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                await asyncio.sleep(period)

    async def _send(self, session: aiohttp.ClientSession, backend: str, version: str) -> None:
        url = f"{self.server.url}/version/{version}"
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, params={"backend": backend}) as response:
                await response.read()
