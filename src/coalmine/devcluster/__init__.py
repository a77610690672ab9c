"""devcluster: an embedded Kubernetes API server for tests, the demo and local play.

`DevCluster` serves the Kubernetes REST API over HTTP from an in-process store
(`coalmine.devcluster.store.Store`); unmodified clients (lightkube, kubectl, kopf,
kubernetes_asyncio) work against it through the kubeconfig it writes. See each module's
docstring for the known differences from a real API server.
"""

from coalmine.devcluster.cluster import DevCluster, load_manifests
from coalmine.devcluster.errors import ApiError

__all__ = ["ApiError", "DevCluster", "load_manifests"]
