"""What every I/O implementation of a seam (target kinds, routers) is given to work with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coalmine.api import naming
from coalmine.kube import reads
from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches
from coalmine.kube.kinds import Kind
from coalmine.kube.meshcluster import Cluster, MeshCluster, cluster_of
from coalmine.kube.writes import InShape


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClusterContext:
    """The client, the watch caches and the flags that shape generated objects.

    Reads come from `caches` (`await caches.synced(kind)` then `.get(name, namespace)`); writes go
    through `api` and are recorded with `informer.observe(written)` (or `kube.writes.ensure`, which
    does both and writes only on difference).

    Routing objects are read and written through `routing(kind)`: with `--kubeconfig-service-mesh`
    the kinds of routing CRD groups live in the `mesh` cluster (`kube.meshcluster`).
    """

    api: KubeApi
    caches: Caches
    include_label_prefixes: tuple[str, ...] = ("",)
    selector_labels: tuple[str, ...] = naming.DEFAULT_SELECTOR_LABELS
    config_tracking: bool = True
    ingress_annotations_prefix: str = "nginx.ingress.kubernetes.io"
    ingress_class: str = ""
    #: `--mesh-name`: the App Mesh (v1beta1) mesh of canaries without `service.meshName`.
    mesh_name: str = ""
    owner_references: bool = True
    clock: Callable[[], datetime] = field(default=utc_now)
    mesh: MeshCluster | None = None
    #: Objects known to be in their desired shape, for builders that run every cycle.
    in_shape: InShape = field(default_factory=InShape)

    def now(self) -> datetime:
        """The wall clock, for readiness deadlines: a cycle that reads it cannot be repeated from
        its cached reads alone (`kube.reads`)."""
        reads.spoil()
        return self.clock()

    def routing(self, kind: Kind) -> Cluster:
        """The cluster holding objects of `kind` that a router reads or writes."""
        if self.mesh is not None and cluster_of(kind.group) == "mesh":
            return self.mesh
        return Cluster(self.api, self.caches)
