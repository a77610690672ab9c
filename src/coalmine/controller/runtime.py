"""The operator's process: clients, caches, the mesh cluster, leader election or sharding, and a
graceful stop around the canary reconciler (`controller.reconciler`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from coalmine.controller.http import start_http
from coalmine.controller.mesh import mesh_cluster
from coalmine.controller.metrics import ControllerMetrics
from coalmine.controller.reconciler import (
    TARGET_KINDS,
    WATCHED_TARGET_KINDS,
    CanaryReconciler,
)
from coalmine.controller.settings import Settings
from coalmine.controller.sharding import (
    run_sharded,
    shard_membership,
)
from coalmine.hooks.client import create_session
from coalmine.kube.api import KubeApi, KubeApiError, NotFound, load_config
from coalmine.kube.cache import Caches
from coalmine.kube.kinds import (
    ALERT_PROVIDER,
    CANARY,
    CONFIG_MAP,
    METRIC_TEMPLATE,
    SECRET,
)
from coalmine.kube.lease import LeaderElector, LeaseTimings
from coalmine.kube.shards import FencedKubeApi

log = logging.getLogger(__name__)

ON_DEMAND_KINDS = frozenset({SECRET, CONFIG_MAP})
SHUTDOWN_GRACE_SECONDS = 30.0


class StartupError(RuntimeError):
    """The controller cannot run at all (CRDs missing, API server unreachable)."""


class Controller:
    """The process: client, caches, HTTP endpoints, and (as leader) the canary reconciler."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ControllerMetrics(settings.mesh_provider)
        self.http_port = 0
        self.reconciler: CanaryReconciler | None = None
        self.on_ready: Callable[[], None] | None = None
        self._stopping = asyncio.Event()
        self._checked = False

    def is_ready(self) -> bool:
        """Ready once the API server answered the start-up check; a leader also needs its caches.

        A standby replica is ready (it can take over), so a rolling update of two replicas with
        leader election completes.
        """
        if not self._checked:
            return False
        if self.reconciler is None:
            return self.settings.enable_leader_election and self.settings.shards == "off"
        return self.reconciler.ready

    def stop(self) -> None:
        """Ask the controller to finish the cycles in flight and exit (SIGTERM)."""
        self._stopping.set()

    async def run(self) -> int:
        """Serve until stopped; the exit code (1 when leadership was lost, as in Flagger)."""
        settings = self.settings
        sharded = settings.shards == "auto"
        config = load_config(
            settings.kubeconfig or None,
            settings.kubeconfig_context or None,
            settings.master or None,
        )
        api = (FencedKubeApi if sharded else KubeApi)(
            config, qps=settings.kubeconfig_qps, burst=settings.kubeconfig_burst
        )
        # The membership's own client: its rounds never queue behind thousands of cycle writes.
        lease_api = KubeApi(config) if sharded else None
        # Secrets and ConfigMaps are read one by one when a canary needs them (GET, short TTL),
        # never listed or watched: the controller sees no Secret that it does not use.
        caches = Caches(api, settings.namespace or None, on_demand=ON_DEMAND_KINDS)
        self.metrics.watch_api_requests(api.requests)
        host, port = settings.listen_host_port
        runner, self.http_port = await start_http(self.metrics, self.is_ready, host, port)
        log.info("serving /metrics, /healthz and /readyz on %s:%d", host, self.http_port)
        session = create_session()
        stack = contextlib.AsyncExitStack()
        try:
            await check_crds(api, settings.namespace or None)
            mesh = await stack.enter_async_context(mesh_cluster(settings, api, self.metrics))
            self._checked = True

            fenced = [api, *([mesh.api] if mesh is not None else [])]
            membership = shard_membership(settings, lease_api, *fenced) if lease_api else None

            async def lead() -> None:
                self.reconciler = CanaryReconciler(
                    settings, api, caches, session, self.metrics, mesh, membership
                )
                try:
                    await self.reconciler.run(self.on_ready)
                finally:
                    self.reconciler.ready = False

            if membership is not None:
                await self._until_stopped(run_sharded(membership, lead))
                return 0
            if not settings.enable_leader_election:
                await self._until_stopped(lead())
                return 0
            elector = LeaderElector(
                api,
                settings.lease_namespace,
                timings=LeaseTimings(
                    settings.leader_election_lease,
                    settings.leader_election_renew_deadline,
                    settings.leader_election_retry,
                ),
            )
            asked_to_stop = await self._until_stopped(elector.run(lead))
            return 0 if asked_to_stop else 1
        finally:
            if self.reconciler is not None:
                await self.reconciler.jobs.stop_all()
            await stack.aclose()
            await caches.stop()
            await session.close()
            await api.close()
            if lease_api is not None:
                await lease_api.close()
            await runner.cleanup()

    async def _until_stopped(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` until it ends or a stop is asked; True when the stop was asked.

        On a stop, cycles in flight finish their writes (within a grace period) before the
        work is cancelled, so no half-written state is left behind.
        """
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            if self.reconciler is not None:
                await self.reconciler.jobs.drain(SHUTDOWN_GRACE_SECONDS)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return True
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        task.result()
        return False


CRD_CHECK_SECONDS = 60.0


async def check_crds(
    api: KubeApi, namespace: str | None, patience: float = CRD_CHECK_SECONDS
) -> None:
    """Flagger's start-up check: the three CRDs must be served, else nothing can work.

    A missing CRD (404) or a refusal (403) stops the controller at once, as Flagger's does. A
    server that is not ready to serve it yet (429, 5xx: kube-apiserver answers 503 "storage is
    (re)initializing" for a CRD created moments ago) is asked again for up to `patience` seconds.
    """
    deadline = asyncio.get_running_loop().time() + patience
    for kind in (CANARY, METRIC_TEMPLATE, ALERT_PROVIDER):
        while True:
            try:
                await api.list(kind, namespace)
                break
            except NotFound as error:
                raise StartupError(f"{kind.kind} CRD is not registered: {error}") from error
            except KubeApiError as error:
                transient = error.code == 429 or error.code >= 500
                if not transient or asyncio.get_running_loop().time() > deadline:
                    raise StartupError(f"{kind.kind} CRD is not served: {error}") from error
                log.info("%s CRD is not served yet (%s); asking again", kind.kind, error)
                await asyncio.sleep(1.0)


__all__ = [
    "TARGET_KINDS",
    "WATCHED_TARGET_KINDS",
    "CanaryReconciler",
    "Controller",
    "StartupError",
    "check_crds",
]
