"""The Kubernetes kinds coalmine reads and writes, as plain-dict lightkube resources.

Every object in coalmine's cache and builders is a JSON-like dict, exactly as the API server
returns it: pure builders compare and produce dicts, and no typed-model conversion sits on the
hot path. lightkube's generic resources give us that while keeping its request building, every
patch type and watch handling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from coalmine.api import naming


@dataclass(frozen=True)
class Kind:
    """One resource type: enough to address it on the API server."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    _resource: list[Any] = field(default_factory=list, compare=False, hash=False, repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> Any:
        """The lightkube generic resource class (dynamic, hence Any), created on first use."""
        if not self._resource:
            create = create_namespaced_resource if self.namespaced else create_global_resource
            self._resource.append(create(self.group, self.version, self.kind, self.plural))
        return self._resource[0]

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


CANARY = Kind(naming.GROUP, naming.VERSION, naming.CANARY_KIND, "canaries")
METRIC_TEMPLATE = Kind(naming.GROUP, naming.VERSION, naming.METRIC_TEMPLATE_KIND, "metrictemplates")
ALERT_PROVIDER = Kind(naming.GROUP, naming.VERSION, naming.ALERT_PROVIDER_KIND, "alertproviders")

NAMESPACE = Kind("", "v1", "Namespace", "namespaces", namespaced=False)
SERVICE = Kind("", "v1", "Service", "services")
CONFIG_MAP = Kind("", "v1", "ConfigMap", "configmaps")
SECRET = Kind("", "v1", "Secret", "secrets")
EVENT = Kind("", "v1", "Event", "events")
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments")
DAEMON_SET = Kind("apps", "v1", "DaemonSet", "daemonsets")
HPA = Kind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
SCALED_OBJECT = Kind("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects")
INGRESS = Kind("networking.k8s.io", "v1", "Ingress", "ingresses")
LEASE = Kind("coordination.k8s.io", "v1", "Lease", "leases")

VIRTUAL_SERVICE = Kind("networking.istio.io", "v1beta1", "VirtualService", "virtualservices")
DESTINATION_RULE = Kind("networking.istio.io", "v1beta1", "DestinationRule", "destinationrules")
HTTP_PROXY = Kind("projectcontour.io", "v1", "HTTPProxy", "httpproxies")
TRAEFIK_SERVICE = Kind("traefik.io", "v1alpha1", "TraefikService", "traefikservices")
GLOO_UPSTREAM = Kind("gloo.solo.io", "v1", "Upstream", "upstreams")
ROUTE_TABLE = Kind("gateway.solo.io", "v1", "RouteTable", "routetables")
# Cluster-scoped: kind_for would make it namespaced.
TRAFFIC_ROUTE = Kind("kuma.io", "v1alpha1", "TrafficRoute", "trafficroutes", namespaced=False)
APISIX_ROUTE = Kind("apisix.apache.org", "v2", "ApisixRoute", "apisixroutes")
KNATIVE_SERVICE = Kind("serving.knative.dev", "v1", "Service", "services")
KNATIVE_REVISION = Kind("serving.knative.dev", "v1", "Revision", "revisions")

# Plural names of the routing kinds, whatever version a router writes them at.
_PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "HTTPRoute": "httproutes",
    "TrafficSplit": "trafficsplits",
    "HTTPProxy": "httpproxies",
    "Ingress": "ingresses",
    "TraefikService": "traefikservices",
    "ApisixRoute": "apisixroutes",
    "Service": "services",
}
_BY_API_VERSION: dict[tuple[str, str], Kind] = {}
_CONSTANTS = tuple(value for value in tuple(globals().values()) if isinstance(value, Kind))


def kind_for(api_version: str, kind: str) -> Kind:
    """The Kind of an object a router reads or writes, from its apiVersion and kind."""
    known = _BY_API_VERSION.get((api_version, kind))
    if known is None:
        # The module's own constant when there is one: lightkube registers one class per kind.
        known = next(
            (k for k in _CONSTANTS if k.api_version == api_version and k.kind == kind), None
        )
    if known is None:
        group, _, version = api_version.rpartition("/")
        plural = _PLURALS.get(kind) or f"{kind.lower()}s"
        known = Kind(group, version, kind, plural)
        _BY_API_VERSION[(api_version, kind)] = known
    return known
