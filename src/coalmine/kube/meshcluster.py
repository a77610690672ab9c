"""The cluster a routing object lives in: the main one, or the mesh cluster of
`--kubeconfig-service-mesh`.

Flagger splits its clients by API group, not by router: its mesh client (a clientset of the
routing CRD groups) talks to the mesh cluster, while Kubernetes' own kinds (Services, Ingresses),
Knative Services, Canaries, Events and Leases go through the main client (docs/decisions.md,
"Mesh cluster"). `cluster_of(kind)` is that rule, defined once; `ClusterContext.routing(kind)`
hands every router's I/O the right `Cluster`, so a new router inherits the split.

A mesh cluster that does not answer must never leave a cycle half done on stale reads: its
`guard()` turns transport errors, timeouts and 5xx answers into `MeshClusterUnreachable`, whose
message names the cluster; the scheduler records it as a Warning event and ends the cycle
without touching the canary's phase or weight. A probe (`GET /version`, which every identity may
make) marks the cluster down within seconds even when a request would hang (a stopped server),
and up again when it answers; while it is down, reads refuse the watch cache's possibly stale
copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from coalmine.api import naming
from coalmine.kube.api import KubeApi, KubeApiError
from coalmine.kube.cache import Caches, KindUnavailable

log = logging.getLogger(__name__)

MAIN_CLUSTER_GROUPS = frozenset(
    {
        "",  # core: Services (the `kubernetes` router, Service-target copies)
        "networking.k8s.io",  # Ingress: NGINX and Skipper (Flagger's kubeClient)
        "extensions",
        "apps",
        "autoscaling",
        "coordination.k8s.io",
        "keda.sh",  # Flagger reads ScaledObjects with its main client
        naming.GROUP,  # Canaries, MetricTemplates, AlertProviders
        "serving.knative.dev",  # Flagger's knativeClient is built from the main config
    }
)
"""API groups whose objects stay in the main cluster; every other (CRD) group a router reads or
writes is in Flagger's mesh clientset and lives in the mesh cluster."""

PROBE_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 2.0


def cluster_of(group: str) -> Literal["main", "mesh"]:
    """Which cluster holds objects of API `group` when a mesh cluster is configured."""
    return "main" if group in MAIN_CLUSTER_GROUPS else "mesh"


class MeshClusterUnreachable(RuntimeError):
    """The mesh cluster did not answer; nothing was decided from what it may hold."""

    retriable = True


@dataclass
class Cluster:
    """One API server as routing I/O uses it: client, watch caches, owner-reference rule."""

    api: KubeApi
    caches: Caches
    owner_references: bool = True
    """False in a mesh cluster on another host: a Canary there does not exist, so its garbage
    collector would delete an object owned by it (Flagger's setOwnerRefs)."""

    def check(self) -> None:
        """Raise when the cluster is known not to answer (never for the main cluster)."""

    def guard(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Requests to the main cluster fail as they always did (no wrapping, no cost)."""
        return contextlib.nullcontext()


@dataclass
class MeshCluster(Cluster):
    """The mesh cluster: its own client (QPS/burst, timeouts), caches and reachability."""

    kubeconfig: str = ""
    reachable: bool = True
    last_error: str = ""
    on_change: list[Callable[[bool], None]] = field(default_factory=list)
    on_failure: list[Callable[[], None]] = field(default_factory=list)
    _waiting: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)
    _cut: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)

    @property
    def server(self) -> str:
        return self.api.server

    @property
    def description(self) -> str:
        return f"mesh cluster {self.server} (--kubeconfig-service-mesh {self.kubeconfig})"

    def _set(self, reachable: bool, error: str = "") -> None:
        if not reachable:
            self.last_error = error
            for count in self.on_failure:
                count()
        if reachable == self.reachable:
            return
        self.reachable = reachable
        if reachable:
            log.info("%s answers again", self.description)
        else:
            log.warning("%s is unreachable: %s", self.description, error)
        for notify in self.on_change:
            notify(reachable)
        if not reachable:
            self._cut_off()

    def _cut_off(self) -> None:
        """Cancel the requests waiting on the mesh cluster when the probe finds it gone: a stopped
        server never answers, so each would wait for its timeout, holding its canary's cycle
        (and a `--threadiness` slot) and delaying the Warning."""
        current = asyncio.current_task()
        for task in self._waiting - self._cut:
            if task is not current:
                self._cut.add(task)
                task.cancel()

    def check(self) -> None:
        if not self.reachable:
            raise MeshClusterUnreachable(self._message("", self.last_error))

    def _message(self, what: str, error: str) -> str:
        doing = f" {what}" if what else ""
        return (
            f"{self.description} is unreachable{doing}: {error or 'no answer'}; routes left "
            "unchanged, the canary keeps its phase and weight until it answers"
        )

    def guard(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._guarded(what)

    @contextlib.asynccontextmanager
    async def _guarded(self, what: str) -> AsyncIterator[None]:
        """Translate "the mesh cluster did not answer" into `MeshClusterUnreachable`.

        Refusals the server itself made (404, 409, 422, 403) pass through unchanged: it answered.
        """
        self.check()
        task = asyncio.current_task()
        try:
            if task is not None:
                self._waiting.add(task)
            try:
                yield
            finally:
                if task is not None:
                    self._waiting.discard(task)
        except asyncio.CancelledError:
            # Ours (`_cut_off`) becomes the error; anyone else's (a stop) stays a cancellation.
            if task is None or task not in self._cut:
                raise
            if task.uncancel() > 0:
                raise
            message = self._message(what, f"cut off: {self.last_error}")
            raise MeshClusterUnreachable(message) from None
        except KubeApiError as error:
            if error.code < 500 and error.code != 429:
                raise
            self._set(False, str(error))
            raise MeshClusterUnreachable(self._message(what, str(error))) from error
        except KindUnavailable as error:
            # The routing CRD may simply be missing there; only a silent server is "unreachable".
            if await self.probe_once():
                raise KindUnavailable(f"{error} (in the {self.description})") from error
            raise MeshClusterUnreachable(self._message(what, self.last_error)) from error
        except (httpx2.HTTPError, OSError, TimeoutError) as error:
            text = str(error) or type(error).__name__
            self._set(False, text)
            raise MeshClusterUnreachable(self._message(what, text)) from error
        finally:
            if task is not None:
                self._cut.discard(task)

    async def probe_once(self, within: float = PROBE_TIMEOUT_SECONDS) -> bool:
        """One `GET /version`; records and returns whether the cluster answered."""
        try:
            await self.api.version(within)
        except (httpx2.HTTPError, OSError, TimeoutError, KubeApiError) as error:
            self._set(False, str(error) or type(error).__name__)
            return False
        self._set(True)
        return True

    async def probe(self, interval: float = PROBE_INTERVAL_SECONDS) -> None:
        """Probe for ever (a background task of the controller)."""
        while True:
            await self.probe_once()
            await asyncio.sleep(interval)
