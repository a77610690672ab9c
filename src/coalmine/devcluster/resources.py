"""The resource registry: which kinds the server serves, under which group/version and plural.

Built-in kinds are listed here once; custom resources are added when their CRD is created. Two
resource types can share one storage (`storage` key): core/v1 and events.k8s.io/v1 Events are two
views of one store, and every served version of a CRD reads the same objects (devcluster converts
between CRD versions by rewriting `apiVersion` only, i.e. the `None` conversion strategy; webhook
conversion is not supported).

Built-in kinds are served at one version each, HorizontalPodAutoscalers at autoscaling/v2 and, as
a converted view of the same objects, autoscaling/v1 (`kubectl autoscale` writes v1); kinds not listed in `BUILTINS` (Nodes,
Jobs, PodDisruptionBudgets, ...) are not served unless loaded as CRDs. The RBAC kinds
are stored and validated but not enforced: every request may do everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    """Where a scalable kind keeps its replicas (the CRD `scale` subresource's JSON paths)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = ".status.selector"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScalePaths | None = None
    verbs: tuple[str, ...] = ALL_VERBS
    storage: str = ""
    builtin: bool = True
    schema: Mapping[str, Any] | None = None
    preserve_unknown: bool = True
    printer_columns: tuple[PrinterColumn, ...] = ()
    crd_name: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`plural.group`, the name used in error messages (`canaries.flagger.app`)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> str:
        return self.storage or self.group_resource

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def discovery(self) -> list[dict[str, Any]]:
        """APIResourceList entries: the resource and its subresources."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.scale is not None:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    all_category: bool = False,
    status: bool = False,
    scale: bool = False,
    storage: str = "",
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        categories=("all",) if all_category else (),
        status=status,
        scale=ScalePaths() if scale else None,
        storage=storage,
    )


BUILTINS: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        singular="namespace",
        short_names=("ns",),
        status=True,
        verbs=tuple(v for v in ALL_VERBS if v != "deletecollection"),
    ),
    _builtin("", "v1", "Service", "services", short=("svc",), all_category=True, status=True),
    _builtin("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _builtin("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _builtin("", "v1", "Secret", "secrets"),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _builtin("", "v1", "Pod", "pods", short=("po",), all_category=True, status=True),
    _builtin("", "v1", "Event", "events", short=("ev",), storage="events"),
    _builtin("events.k8s.io", "v1", "Event", "events", short=("ev",), storage="events"),
    _builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        all_category=True,
        status=True,
        scale=True,
    ),
    _builtin(
        "apps", "v1", "DaemonSet", "daemonsets", short=("ds",), all_category=True, status=True
    ),
    _builtin(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        all_category=True,
        status=True,
        scale=True,
    ),
    _builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        all_category=True,
        status=True,
        scale=True,
    ),
    _builtin("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _builtin(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        all_category=True,
        status=True,
    ),
    # autoscaling/v1: a view of the same objects (devcluster.conversions)
    _builtin(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        all_category=True,
        status=True,
        storage="horizontalpodautoscalers.autoscaling",
    ),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases"),
    _builtin("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), status=True),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        status=True,
    ),
)


@dataclass
class Registry:
    """Resource types by group/version/plural, plus the preferred version of each group."""

    by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    group_versions: dict[str, list[str]] = field(default_factory=dict)
    preferred: dict[str, str] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for resource in BUILTINS:
            registry.add(resource)
        return registry

    def add(self, resource: ResourceType, preferred: bool = False) -> None:
        self.by_path[(resource.group, resource.version, resource.plural)] = resource
        versions = self.group_versions.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
        if preferred or resource.group not in self.preferred:
            self.preferred[resource.group] = resource.version

    def remove_crd(self, crd_name: str) -> None:
        for key, resource in list(self.by_path.items()):
            if resource.crd_name == crd_name:
                del self.by_path[key]
        self._rebuild_groups()

    def _rebuild_groups(self) -> None:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self.by_path:
            versions = groups.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        for group in list(self.preferred):
            if group not in groups:
                del self.preferred[group]
            elif self.preferred[group] not in groups[group]:
                self.preferred[group] = groups[group][0]
        self.group_versions = groups

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.by_path.get((group, version, plural))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for (g, v, _), r in self.by_path.items() if g == group and v == version]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self.by_path.values()))

    def for_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for resource in self.by_path.values():
            if resource.group == group and resource.version == version and resource.kind == kind:
                return resource
        return None

    def find(self, name: str) -> ResourceType | None:
        """Resolve `deployments`, `deployments.apps`, `deploy`, `Deployment` (preferred version)."""
        first, _, group = name.partition(".")
        wanted = first.lower()
        candidates = [
            r
            for r in self.by_path.values()
            if (not group or r.group == group)
            and wanted in (r.plural, r.kind.lower(), r.singular, *r.short_names)
        ]
        if not group:
            core = [r for r in candidates if r.group == ""]
            candidates = core or candidates
        preferred = [r for r in candidates if self.preferred.get(r.group) == r.version]
        chosen = preferred or candidates
        return chosen[0] if chosen else None
