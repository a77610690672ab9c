"""The API requests the controller makes, per resource: the source of its RBAC rules.

The chart's ClusterRole and Role, the plain manifests and docs/controller.md list exactly these
verbs (tests/deploy compares them), and tests/controller/test_permissions.py runs releases on
devcluster and checks that every request the controller made is one of them. A verb is here only
when a call in the code makes it; the reason names that call.
"""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.kube.meshcluster import cluster_of


@dataclass(frozen=True)
class Grant:
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str


WATCHED = ("get", "list", "watch")
"""Watched kinds: list+watch fill the cache, get is the fallback on a cache miss (a just-created
object the watch has not brought yet) and the re-read after a lost write race (409)."""

CLUSTER_ROLE: tuple[Grant, ...] = (
    Grant(
        "flagger.app",
        ("canaries",),
        ("list", "watch", "patch"),
        "cache of Canaries (list+watch); patch: the finalizer (revertOnDeletion) and clearing "
        "`coalmine.dev/*` verb annotations once acted on. Canaries are never read by GET.",
    ),
    Grant(
        "flagger.app",
        ("canaries/status",),
        ("patch",),
        "status written as one merge patch of the status subresource (the uid as precondition)",
    ),
    Grant(
        "flagger.app",
        ("canaries/finalizers",),
        ("update",),
        "copies carry an ownerReference to their Canary with blockOwnerDeletion, which "
        "OwnerReferencesPermissionEnforcement allows only with update on the owner's finalizers",
    ),
    Grant(
        "flagger.app",
        ("metrictemplates", "alertproviders"),
        ("list", "watch"),
        "caches read by the analysis and the alerter; the start-up check lists them",
    ),
    Grant("", ("events",), ("create", "patch"), "Events; patch raises the count of a repeat"),
    Grant(
        "",
        ("services",),
        (*WATCHED, "create", "update", "delete"),
        "`<apex>`, `-primary`, `-canary` Services: created, updated on difference (PUT), "
        "deleted and created again when an immutable field changed",
    ),
    Grant(
        "",
        ("configmaps",),
        ("get", "create", "update"),
        "tracked configs read on demand (GET, a few seconds' cache; never listed or watched) and "
        "their `-primary` copies created and updated",
    ),
    Grant(
        "",
        ("secrets",),
        ("get", "create", "update", "delete"),
        "as configmaps, plus delete: a copy whose Secret type changed is re-created; provider "
        "and alert credentials are read by GET",
    ),
    Grant(
        "apps",
        ("deployments", "daemonsets"),
        (*WATCHED, "create", "update", "patch"),
        "targets and `-primary` workloads: primary created, promoted by PUT, scaled by patch",
    ),
    Grant(
        "apps",
        ("deployments",),
        ("delete",),
        "a fresh baseline's `-baseline` Deployment, removed when its run ends",
    ),
    Grant(
        "autoscaling",
        ("horizontalpodautoscalers",),
        (*WATCHED, "create", "update"),
        "`-primary` HPA created and kept in line with the target's",
    ),
    Grant(
        "keda.sh",
        ("scaledobjects",),
        (*WATCHED, "create", "update", "patch"),
        "`-primary` ScaledObject; patch pauses and resumes the target's",
    ),
    Grant(
        "networking.k8s.io",
        ("ingresses",),
        (*WATCHED, "create", "update", "delete"),
        "NGINX and Skipper routers: the `-canary` Ingress, deleted on finalization",
    ),
    Grant(
        "networking.istio.io",
        ("virtualservices", "destinationrules"),
        (*WATCHED, "create", "update"),
        "Istio router objects",
    ),
    Grant(
        "gateway.networking.k8s.io",
        ("httproutes",),
        (*WATCHED, "create", "update"),
        "Gateway API router",
    ),
    Grant("split.smi-spec.io", ("trafficsplits",), (*WATCHED, "create", "update"), "SMI router"),
    Grant("projectcontour.io", ("httpproxies",), (*WATCHED, "create", "update"), "Contour router"),
    Grant("traefik.io", ("traefikservices",), (*WATCHED, "create", "update"), "Traefik router"),
    Grant(
        "gloo.solo.io",
        ("upstreams",),
        (*WATCHED, "create", "update"),
        "Gloo router: the copies' Upstreams; reads the one `upstreamRef` names",
    ),
    Grant("gateway.solo.io", ("routetables",), (*WATCHED, "create", "update"), "Gloo router"),
    Grant(
        "kuma.io",
        ("trafficroutes",),
        (*WATCHED, "create", "update", "delete"),
        "Kuma router: the cluster-scoped TrafficRoute, deleted on finalization",
    ),
    Grant(
        "appmesh.k8s.aws",
        ("virtualnodes", "virtualrouters", "virtualservices"),
        (*WATCHED, "create", "update"),
        "App Mesh routers (v1beta1: nodes and services; v1beta2: nodes, routers, services)",
    ),
    Grant(
        "apisix.apache.org",
        ("apisixroutes",),
        (*WATCHED, "create", "update"),
        "APISIX router: the user's route read, the `<route>-<apex>-canary` route written",
    ),
    Grant(
        "serving.knative.dev",
        ("services",),
        (*WATCHED, "update"),
        "Knative Service targets (watched once a canary needs them): the primary-revision "
        "annotation and `spec.traffic` written by PUT",
    ),
    Grant(
        "serving.knative.dev",
        ("revisions",),
        WATCHED,
        "Knative target readiness: the `Ready` condition of the primary and latest Revisions",
    ),
)

MESH_CLUSTER_ROLE: tuple[Grant, ...] = tuple(
    grant for grant in CLUSTER_ROLE if cluster_of(grant.group) == "mesh"
)
"""What the controller's identity in the mesh cluster of `--kubeconfig-service-mesh` needs: the
routing objects only (a router added to CLUSTER_ROLE lands here by its API group). A Role in each
watched namespace is enough, unless a router's kind is cluster-scoped."""

LEADER_ELECTION_ROLE: tuple[Grant, ...] = (
    Grant(
        "coordination.k8s.io",
        ("leases",),
        ("get", "list", "watch", "create", "update", "delete"),
        "in the lease namespace only: the leader-election Lease (get, create, update); with "
        "`--shards=auto` each replica's membership Lease, the group's Leases listed every "
        "round and watched between rounds, a replica's own deleted on a clean exit and those "
        "of long-dead replicas removed",
    ),
)


def as_rules(grants: tuple[Grant, ...]) -> list[dict[str, list[str]]]:
    """RBAC `rules` as the chart and the manifests write them."""
    return [
        {"apiGroups": [g.group], "resources": list(g.resources), "verbs": list(g.verbs)}
        for g in grants
    ]


def granted(grants: tuple[Grant, ...]) -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> verbs."""
    result: dict[tuple[str, str], set[str]] = {}
    for grant in grants:
        for resource in grant.resources:
            result.setdefault((grant.group, resource), set()).update(grant.verbs)
    return result
