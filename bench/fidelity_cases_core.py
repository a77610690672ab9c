"""CRUD of the kinds coalmine reads and writes: ConfigMaps, Secrets, Deployments, DaemonSets, HPAs,
Events, Leases, RBAC, EndpointSlices, and discovery."""

from __future__ import annotations

from typing import Any

from fidelity_battery import (
    APPS,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    add,
    case,
    configmap,
    daemonset,
    deployment,
)

# --- discovery -------------------------------------------------------------------------------------
GROUPS = (
    "apps",
    "autoscaling",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
)


@case("discovery: the groups coalmine uses and their preferred versions")
async def _groups(r: Any) -> None:
    def pick(body: Any) -> Any:
        groups = {g["name"]: g["preferredVersion"]["version"] for g in body["groups"]}
        return {name: groups.get(name) for name in GROUPS}

    await r.req("GET", "/apis", pick=pick)


@case("discovery: /api")
async def _api(r: Any) -> None:
    await r.req("GET", "/api", pick=lambda b: b["versions"])


def _resources(wanted: tuple[str, ...]) -> Any:
    def pick(body: Any) -> Any:
        found = {res["name"]: res for res in body["resources"]}
        return {
            name: {
                k: sorted(v) if isinstance(v, list) else v
                for k, v in found[name].items()
                if k in ("kind", "namespaced", "verbs", "shortNames", "group", "version")
            }
            if name in found
            else None
            for name in wanted
        }

    return pick


DISCOVERY = {
    "/api/v1": (
        "services",
        "services/status",
        "configmaps",
        "secrets",
        "events",
        "namespaces",
        "endpoints",
        "serviceaccounts",
    ),
    "/apis/apps/v1": (
        "deployments",
        "deployments/scale",
        "deployments/status",
        "daemonsets",
        "daemonsets/status",
        "replicasets",
    ),
    "/apis/autoscaling/v2": ("horizontalpodautoscalers", "horizontalpodautoscalers/status"),
    "/apis/coordination.k8s.io/v1": ("leases",),
    "/apis/discovery.k8s.io/v1": ("endpointslices",),
    "/apis/events.k8s.io/v1": ("events",),
    "/apis/rbac.authorization.k8s.io/v1": (
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ),
    "/apis/apiextensions.k8s.io/v1": (
        "customresourcedefinitions",
        "customresourcedefinitions/status",
    ),
    "/apis/networking.k8s.io/v1": ("ingresses",),
}


def _discovery_case(path: str, wanted: tuple[str, ...]) -> Any:
    async def run(r: Any) -> None:
        await r.req("GET", path, pick=_resources(wanted))

    return run


for _path, _wanted in DISCOVERY.items():
    add(f"discovery: {_path}", _discovery_case(_path, _wanted))


@case("discovery: an unknown group is 404")
async def _unknown_group(r: Any) -> None:
    await r.req("GET", "/apis/nothing.example.com/v1", pick=lambda b: None)
    await r.req("GET", "/api/v2", pick=lambda b: None)


# --- ConfigMaps and Secrets --------------------------------------------------------------------------
@case("configmap: create, get, create again")
async def _cm_create(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"x": "y"}))
    await r.req("GET", r.path("configmaps", "a"))
    await r.req("POST", r.path("configmaps"), configmap("a"))


@case("configmap: get a missing one")
async def _cm_missing(r: Any) -> None:
    await r.req("GET", r.path("configmaps", "missing"))


@case("configmap: update with a stale resourceVersion")
async def _cm_stale(r: Any) -> None:
    created = await r.req("POST", r.path("configmaps"), configmap("a"))
    stale = created.body
    await r.req("PUT", r.path("configmaps", "a"), {**stale, "data": {"a": "2"}})
    await r.req("PUT", r.path("configmaps", "a"), {**stale, "data": {"a": "3"}})


@case("configmap: update without a resourceVersion")
async def _cm_unconditional(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    await r.req("PUT", r.path("configmaps", "a"), configmap("a", {"b": "2"}))


@case("configmap: merge, json and strategic patches")
async def _cm_patches(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", {"a": "1", "b": "2"}))
    await r.req("PATCH", r.path("configmaps", "a"), {"data": {"a": None, "c": "3"}}, MERGE)
    patch = [{"op": "add", "path": "/data/d", "value": "4"}]
    await r.req("PATCH", r.path("configmaps", "a"), patch, JSON_PATCH)
    await r.req("PATCH", r.path("configmaps", "a"), {"data": {"e": "5"}}, STRATEGIC)


@case("configmap: json patch whose test fails")
async def _cm_test_op(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    patch = [{"op": "test", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/a"}]
    await r.req("PATCH", r.path("configmaps", "a"), patch, JSON_PATCH)


@case("configmap: json patch removing a missing path")
async def _cm_remove_missing(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    patch = [{"op": "remove", "path": "/data/zzz"}]
    await r.req("PATCH", r.path("configmaps", "a"), patch, JSON_PATCH)


@case("configmap: merge patch with a stale resourceVersion")
async def _cm_patch_stale(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    patch = {"metadata": {"resourceVersion": "1"}, "data": {"a": "2"}}
    await r.req("PATCH", r.path("configmaps", "a"), patch, MERGE)


@case("configmap: patch of a missing object")
async def _cm_patch_missing(r: Any) -> None:
    await r.req("PATCH", r.path("configmaps", "missing"), {"data": {"a": "2"}}, MERGE)


@case("configmap: delete, then delete again")
async def _cm_delete(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    await r.req("DELETE", r.path("configmaps", "a"))
    await r.req("DELETE", r.path("configmaps", "a"))


@case("configmap: invalid names, labels and annotations")
async def _cm_invalid(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("Upper_Case"))
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"bad key!": "v"}))
    await r.req("POST", r.path("configmaps"), configmap("b", labels={"k": "bad value!"}))
    await r.req("POST", r.path("configmaps"), configmap("c", annotations={"-x": "v"}))
    await r.req("POST", r.path("configmaps"), configmap("d", {"bad key": "v"}))
    await r.req("POST", r.path("configmaps"), {"apiVersion": "v1", "kind": "ConfigMap"})


@case("configmap: generateName")
async def _cm_generate(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("", generateName="gen-"))


@case("configmap: namespace in the body differs from the path")
async def _cm_ns_mismatch(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", namespace="default"))


@case("configmap: create in a missing namespace")
async def _cm_missing_ns(r: Any) -> None:
    await r.req("POST", r.path("configmaps", ns="no-such-namespace-fid"), configmap("a"))


@case("configmap: immutable data")
async def _cm_immutable(r: Any) -> None:
    body = {**configmap("a"), "immutable": True}
    await r.req("POST", r.path("configmaps"), body)
    await r.req("PATCH", r.path("configmaps", "a"), {"data": {"a": "2"}}, MERGE)
    await r.req("PATCH", r.path("configmaps", "a"), {"metadata": {"labels": {"x": "y"}}}, MERGE)


@case("configmap: name in the body differs from the path")
async def _cm_name_mismatch(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"))
    await r.req("PUT", r.path("configmaps", "a"), configmap("b"))


@case("configmap: wrong kind in the body")
async def _cm_wrong_kind(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), {**configmap("a"), "kind": "Secret"})


@case("configmap: binaryData")
async def _cm_binary(r: Any) -> None:
    body = {**configmap("a", {}), "binaryData": {"b": "AAEC"}}
    await r.req("POST", r.path("configmaps"), body)


@case("secret: stringData becomes data, type defaults to Opaque")
async def _secret_create(r: Any) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"token": "abc"},
        "data": {"other": "eA=="},
    }
    await r.req("POST", r.path("secrets"), body)
    await r.req("GET", r.path("secrets", "s"))


@case("secret: data that is not base64")
async def _secret_bad_b64(r: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "!!"}}
    await r.req("POST", r.path("secrets"), body)


@case("secret: kubernetes.io/tls without its keys")
async def _secret_tls(r: Any) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "kubernetes.io/tls",
        "data": {},
    }
    await r.req("POST", r.path("secrets"), body)


@case("secret: type is immutable")
async def _secret_type(r: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}}
    await r.req("POST", r.path("secrets"), body)
    await r.req("PATCH", r.path("secrets", "s"), {"type": "example.com/custom"}, MERGE)


# --- Deployments ------------------------------------------------------------------------------------
DEPLOY = "apps/v1"


@case("deployment: create and the defaults it gets")
async def _deploy_create(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web", 2))
    await r.req("GET", r.path("deployments", "web", group=DEPLOY))


@case("deployment: selector does not match the template")
async def _deploy_mismatch(r: Any) -> None:
    body = deployment("web")
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: missing selector")
async def _deploy_no_selector(r: Any) -> None:
    body = deployment("web")
    del body["spec"]["selector"]
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: empty selector")
async def _deploy_empty_selector(r: Any) -> None:
    body = deployment("web")
    body["spec"]["selector"] = {}
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: selector is immutable")
async def _deploy_selector_immutable(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "web", "v": "2"}},
            "template": {"metadata": {"labels": {"app": "web", "v": "2"}}},
        }
    }
    await r.req("PATCH", r.path("deployments", "web", group=DEPLOY), patch, MERGE)


@case("deployment: negative replicas")
async def _deploy_negative(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web", -1))


@case("deployment: container without image or name")
async def _deploy_no_image(r: Any) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"] = [{"name": "app"}]
    await r.req("POST", r.path("deployments", group=DEPLOY), body)
    body["spec"]["template"]["spec"]["containers"] = [{"image": "nginx"}]
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: no containers")
async def _deploy_no_containers(r: Any) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"] = []
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: Recreate with rollingUpdate parameters")
async def _deploy_recreate(r: Any) -> None:
    body = deployment("web", strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: maxSurge and maxUnavailable both zero")
async def _deploy_zero_zero(r: Any) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web", strategy=strategy))


@case("deployment: Recreate strategy")
async def _deploy_recreate_ok(r: Any) -> None:
    body = deployment("web", strategy={"type": "Recreate"})
    await r.req("POST", r.path("deployments", group=DEPLOY), body)


@case("deployment: generation moves with the spec, not with labels")
async def _deploy_generation(r: Any) -> None:
    path = r.path("deployments", "web", group=DEPLOY)
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    pick = lambda b: b["metadata"].get("generation")
    await r.req("PATCH", path, {"metadata": {"labels": {"x": "y"}}}, MERGE, pick=pick)
    await r.req("PATCH", path, {"spec": {"replicas": 3}}, MERGE, pick=pick)
    await r.req("PATCH", path, {"metadata": {"annotations": {"a": "b"}}}, MERGE, pick=pick)


@case("deployment: scale subresource get, put, patch", keep_status=False)
async def _deploy_scale(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web", 2))
    scale_path = r.path("deployments", "web", group=DEPLOY, sub="scale")
    pick = lambda b: {
        "kind": b.get("kind"),
        "spec": b.get("spec"),
        "sel": (b.get("status") or {}).get("selector"),
    }
    scale = await r.req("GET", scale_path, pick=pick)
    # without its resourceVersion: the deployment controller writes status in between
    meta = {k: v for k, v in scale.body["metadata"].items() if k != "resourceVersion"}
    body = {**scale.body, "metadata": meta, "spec": {"replicas": 4}}
    await r.req("PUT", scale_path, body, pick=pick)
    await r.req("PATCH", scale_path, {"spec": {"replicas": 5}}, MERGE, pick=pick)
    await r.req(
        "GET", r.path("deployments", "web", group=DEPLOY), pick=lambda b: b["spec"]["replicas"]
    )


@case("deployment: scale with a stale resourceVersion and negative replicas")
async def _deploy_scale_bad(r: Any) -> None:
    created = await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    scale_path = r.path("deployments", "web", group=DEPLOY, sub="scale")
    await r.req(
        "PATCH",
        r.path("deployments", "web", group=DEPLOY),
        {"spec": {"replicas": 2}},
        MERGE,
        record=False,
    )
    stale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": "web",
            "namespace": r.ns,
            "resourceVersion": created.body["metadata"]["resourceVersion"],
        },
        "spec": {"replicas": 3},
    }
    await r.req("PUT", scale_path, stale)
    await r.req("PATCH", scale_path, {"spec": {"replicas": -1}}, MERGE)


@case("deployment: scale of a missing deployment")
async def _deploy_scale_missing(r: Any) -> None:
    await r.req("GET", r.path("deployments", "missing", group=DEPLOY, sub="scale"))


@case("deployment: a status write keeps the spec; a spec write keeps the status", keep_status=True)
async def _deploy_status(r: Any) -> None:
    created = await r.req(
        "POST",
        r.path("deployments", group=DEPLOY),
        deployment("web"),
        pick=lambda b: b.get("status"),
    )
    body = dict(created.body)
    body["spec"] = {**body["spec"], "replicas": 7}
    body["status"] = {"observedGeneration": 42, "replicas": 9}
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "resourceVersion"}
    pick = lambda b: {
        "replicas": b["spec"]["replicas"],
        "observed": (b.get("status") or {}).get("observedGeneration"),
    }
    await r.req("PUT", r.path("deployments", "web", group=DEPLOY, sub="status"), body, pick=pick)


@case("deployment: strategic merge of containers by name")
async def _deploy_smp_containers(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    path = r.path("deployments", "web", group=DEPLOY)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:2"},
                        {
                            "name": "sidecar",
                            "image": "busybox:1",
                            "env": [{"name": "A", "value": "1"}],
                        },
                    ]
                }
            }
        }
    }
    await r.req(
        "PATCH", path, patch, STRATEGIC, pick=lambda b: b["spec"]["template"]["spec"]["containers"]
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "env": [{"name": "B", "value": "2"}]},
                    ]
                }
            }
        }
    }
    await r.req(
        "PATCH", path, patch, STRATEGIC, pick=lambda b: b["spec"]["template"]["spec"]["containers"]
    )
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    await r.req(
        "PATCH", path, patch, STRATEGIC, pick=lambda b: b["spec"]["template"]["spec"]["containers"]
    )


@case("deployment: strategic merge of ports, volumes and $setElementOrder")
async def _deploy_smp_ports(r: Any) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "name": "http"}
    ]
    await r.req("POST", r.path("deployments", group=DEPLOY), body)
    path = r.path("deployments", "web", group=DEPLOY)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "ports": [{"containerPort": 9090, "name": "metrics"}]}
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                }
            }
        }
    }
    pick = lambda b: {k: b["spec"]["template"]["spec"].get(k) for k in ("containers", "volumes")}
    await r.req("PATCH", path, patch, STRATEGIC, pick=pick)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [
                        {
                            "name": "app",
                            "$setElementOrder/ports": [
                                {"containerPort": 9090},
                                {"containerPort": 80},
                            ],
                            "ports": [{"containerPort": 9090}],
                        }
                    ],
                }
            }
        }
    }
    await r.req("PATCH", path, patch, STRATEGIC, pick=pick)


@case("deployment: strategic merge replaces a list under $patch replace")
async def _deploy_smp_replace(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    path = r.path("deployments", "web", group=DEPLOY)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "other", "image": "busybox:1"}, {"$patch": "replace"}]
                }
            }
        }
    }
    await r.req(
        "PATCH",
        path,
        patch,
        STRATEGIC,
        pick=lambda b: [c["name"] for c in b["spec"]["template"]["spec"]["containers"]],
    )


@case("deployment: strategic merge with $retainKeys on the strategy")
async def _deploy_retain(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    path = r.path("deployments", "web", group=DEPLOY)
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    await r.req("PATCH", path, patch, STRATEGIC, pick=lambda b: b["spec"]["strategy"])


@case("deployment: json patch adding a container")
async def _deploy_json(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    patch = [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/-",
            "value": {"name": "b", "image": "busybox:1"},
        }
    ]
    await r.req(
        "PATCH",
        r.path("deployments", "web", group=DEPLOY),
        patch,
        JSON_PATCH,
        pick=lambda b: b["spec"]["template"]["spec"]["containers"],
    )


@case("deployment: unknown patch content type")
async def _deploy_bad_patch_type(r: Any) -> None:
    await r.req("POST", r.path("deployments", group=DEPLOY), deployment("web"))
    await r.req("PATCH", r.path("deployments", "web", group=DEPLOY), {"spec": {}}, "text/plain")


@case("deployment: PUT to a missing deployment")
async def _deploy_put_missing(r: Any) -> None:
    await r.req("PUT", r.path("deployments", "web", group=DEPLOY), deployment("web"))


@case("replicaset: create and scale")
async def _rs(r: Any) -> None:
    body = deployment("rs")
    body["kind"] = "ReplicaSet"
    del body["spec"]["replicas"]
    await r.req("POST", r.path("replicasets", group=APPS), body)
    await r.req(
        "GET", r.path("replicasets", "rs", group=APPS, sub="scale"), pick=lambda b: b.get("spec")
    )


# --- DaemonSets ---------------------------------------------------------------------------------------
@case("daemonset: create and the defaults it gets")
async def _ds_create(r: Any) -> None:
    await r.req("POST", r.path("daemonsets", group=APPS), daemonset("agent"))


@case("daemonset: selector is immutable")
async def _ds_selector(r: Any) -> None:
    await r.req("POST", r.path("daemonsets", group=APPS), daemonset("agent"))
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "agent", "v": "2"}},
            "template": {"metadata": {"labels": {"app": "agent", "v": "2"}}},
        }
    }
    await r.req("PATCH", r.path("daemonsets", "agent", group=APPS), patch, MERGE)


@case("daemonset: OnDelete strategy and a strategic merge of the nodeSelector")
async def _ds_ondelete(r: Any) -> None:
    await r.req(
        "POST",
        r.path("daemonsets", group=APPS),
        daemonset("agent", updateStrategy={"type": "OnDelete"}),
    )
    patch = {
        "spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": "true"}}}}
    }
    await r.req("PATCH", r.path("daemonsets", "agent", group=APPS), patch, STRATEGIC)


@case("daemonset: status write", keep_status=True)
async def _ds_status(r: Any) -> None:
    created = await r.req(
        "POST", r.path("daemonsets", group=APPS), daemonset("agent"), record=False
    )
    status = {
        "currentNumberScheduled": 1,
        "desiredNumberScheduled": 1,
        "numberMisscheduled": 0,
        "numberReady": 1,
    }
    body = {**created.body, "status": status}
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "resourceVersion"}
    await r.req(
        "PUT",
        r.path("daemonsets", "agent", group=APPS, sub="status"),
        body,
        pick=lambda b: b.get("status"),
    )


# --- HPAs, Events, Leases ---------------------------------------------------------------------------
HPA = "autoscaling/v2"


def hpa(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 2,
        "maxReplicas": 4,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ],
    }
    body.update(spec)
    body = {k: v for k, v in body.items() if v is not None}
    return {
        "apiVersion": HPA,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": body,
    }


@case("hpa: create v2 and the defaults it gets")
async def _hpa_create(r: Any) -> None:
    await r.req("POST", r.path("horizontalpodautoscalers", group=HPA), hpa("web"))


@case("hpa: create without metrics or minReplicas")
async def _hpa_defaults(r: Any) -> None:
    await r.req(
        "POST",
        r.path("horizontalpodautoscalers", group=HPA),
        hpa("web", metrics=None, minReplicas=None),
    )


@case("hpa: behavior defaults")
async def _hpa_behavior(r: Any) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    await r.req(
        "POST", r.path("horizontalpodautoscalers", group=HPA), hpa("web", behavior=behavior)
    )


@case("hpa: maxReplicas below minReplicas, minReplicas zero")
async def _hpa_invalid(r: Any) -> None:
    await r.req(
        "POST",
        r.path("horizontalpodautoscalers", group=HPA),
        hpa("a", minReplicas=5, maxReplicas=2),
    )
    await r.req("POST", r.path("horizontalpodautoscalers", group=HPA), hpa("b", minReplicas=0))


@case("hpa: through autoscaling/v1")
async def _hpa_v1(r: Any) -> None:
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
        },
    }
    await r.req("POST", r.path("horizontalpodautoscalers", group="autoscaling/v1"), body)


def core_event(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {
            "kind": "Canary",
            "apiVersion": "flagger.app/v1beta1",
            "name": "podinfo",
            "namespace": ns,
        },
        "reason": "Synced",
        "message": "Advance podinfo canary weight 10",
        "type": "Normal",
        "source": {"component": "coalmine"},
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }


@case("event: core/v1 create, patch count, list by involvedObject")
async def _event_core(r: Any) -> None:
    await r.req("POST", r.path("events"), core_event("podinfo.1", r.ns))
    await r.req(
        "PATCH",
        r.path("events", "podinfo.1"),
        {"count": 2, "lastTimestamp": "2026-01-01T00:01:00Z"},
        STRATEGIC,
    )
    await r.req(
        "GET",
        r.path("events") + "?fieldSelector=involvedObject.name=podinfo",
        pick=lambda b: [i["metadata"]["name"] for i in b["items"]],
    )


@case("event: events.k8s.io/v1 create and its core/v1 view")
async def _event_v1(r: Any) -> None:
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "x.1"},
        "regarding": {"kind": "Deployment", "name": "x", "namespace": r.ns},
        "reason": "Synced",
        "note": "hello",
        "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "action": "Sync",
        "reportingController": "coalmine",
        "reportingInstance": "coalmine-1",
    }
    await r.req("POST", r.path("events", group="events.k8s.io/v1"), body)
    await r.req("GET", r.path("events", "x.1"))


@case("event: missing involvedObject namespace and invalid type")
async def _event_invalid(r: Any) -> None:
    body = core_event("bad.1", r.ns)
    body["type"] = "Weird"
    await r.req("POST", r.path("events"), body)
    body = core_event("bad.2", "other-namespace")
    await r.req("POST", r.path("events"), body)


LEASES = "coordination.k8s.io/v1"


@case("lease: create, renew, conflict on a stale update")
async def _lease(r: Any) -> None:
    body = {
        "apiVersion": LEASES,
        "kind": "Lease",
        "metadata": {"name": "coalmine-leader"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z",
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "leaseTransitions": 0,
        },
    }
    created = await r.req("POST", r.path("leases", group=LEASES), body)
    renewed = {
        **created.body,
        "spec": {**created.body["spec"], "renewTime": "2026-01-01T00:00:05.000000Z"},
    }
    await r.req("PUT", r.path("leases", "coalmine-leader", group=LEASES), renewed)
    taken = {**created.body, "spec": {**created.body["spec"], "holderIdentity": "b"}}
    await r.req("PUT", r.path("leases", "coalmine-leader", group=LEASES), taken)


@case("lease: PUT to a missing lease")
async def _lease_put_missing(r: Any) -> None:
    body = {
        "apiVersion": LEASES,
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a"},
    }
    await r.req("PUT", r.path("leases", "l", group=LEASES), body)


@case("lease: invalid durations")
async def _lease_invalid(r: Any) -> None:
    body = {
        "apiVersion": LEASES,
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"leaseDurationSeconds": 0},
    }
    await r.req("POST", r.path("leases", group=LEASES), body)


@case("serviceaccount: create and get")
async def _sa(r: Any) -> None:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coalmine"}}
    await r.req("POST", r.path("serviceaccounts"), body)
    await r.req("GET", r.path("serviceaccounts", "coalmine"))


@case("namespace: create, invalid name, status")
async def _ns(r: Any) -> None:
    name = r.unique("nsx")
    await r.req(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    await r.req(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad.Name"}},
    )
    await r.req(
        "DELETE",
        f"/api/v1/namespaces/{name}",
        pick=lambda b: {"phase": (b.get("status") or {}).get("phase"), "spec": b.get("spec")},
    )
    await r.req("DELETE", "/api/v1/namespaces/default", pick=lambda b: None)


# --- RBAC -------------------------------------------------------------------------------------------
RBAC = "rbac.authorization.k8s.io/v1"


def role(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": {"name": name},
        "rules": [
            {
                "apiGroups": ["flagger.app"],
                "resources": ["canaries"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }


def binding(kind: str, name: str, role_kind: str, role_name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "coalmine", "namespace": ns}],
    }


@case("rbac: Role and RoleBinding")
async def _rbac_role(r: Any) -> None:
    await r.req("POST", r.path("roles", group=RBAC), role("Role", "reader"))
    await r.req(
        "POST",
        r.path("rolebindings", group=RBAC),
        binding("RoleBinding", "reader", "Role", "reader", r.ns),
    )
    await r.req("GET", r.path("rolebindings", "reader", group=RBAC))


@case("rbac: ClusterRole and ClusterRoleBinding")
async def _rbac_cluster(r: Any) -> None:
    name = r.unique("cr")
    await r.req("POST", r.path("clusterroles", group=RBAC, ns="-"), role("ClusterRole", name))
    await r.req(
        "POST",
        r.path("clusterrolebindings", group=RBAC, ns="-"),
        binding("ClusterRoleBinding", name, "ClusterRole", name, r.ns),
    )
    await r.req("GET", r.path("clusterroles", name, group=RBAC, ns="-"))
    await r.req(
        "DELETE",
        r.path("clusterrolebindings", name, group=RBAC, ns="-"),
        pick=lambda b: b.get("status"),
    )
    await r.req(
        "DELETE", r.path("clusterroles", name, group=RBAC, ns="-"), pick=lambda b: b.get("status")
    )


@case("rbac: roleRef is immutable")
async def _rbac_roleref(r: Any) -> None:
    await r.req(
        "POST",
        r.path("rolebindings", group=RBAC),
        binding("RoleBinding", "b", "Role", "reader", r.ns),
    )
    patch = {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"}}
    await r.req("PATCH", r.path("rolebindings", "b", group=RBAC), patch, MERGE)


@case("rbac: invalid roleRef and rules")
async def _rbac_invalid(r: Any) -> None:
    await r.req(
        "POST",
        r.path("rolebindings", group=RBAC),
        binding("RoleBinding", "b", "Deployment", "x", r.ns),
    )
    body = role("Role", "empty")
    body["rules"] = [{"apiGroups": [""], "resources": ["pods"]}]
    await r.req("POST", r.path("roles", group=RBAC), body)
    body = binding("RoleBinding", "c", "Role", "reader", r.ns)
    body["subjects"] = [{"kind": "ServiceAccount", "name": "coalmine"}]
    await r.req("POST", r.path("rolebindings", group=RBAC), body)


@case("rbac: aggregated ClusterRole")
async def _rbac_aggregate(r: Any) -> None:
    name = r.unique("agg")
    body = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"fid/agg": name}}]},
    }
    await r.req(
        "POST",
        r.path("clusterroles", group=RBAC, ns="-"),
        body,
        pick=lambda b: {k: v for k, v in b.items() if k != "metadata"},
    )
    await r.req("DELETE", r.path("clusterroles", name, group=RBAC, ns="-"), record=False)


# --- EndpointSlices -----------------------------------------------------------------------------------
SLICES = "discovery.k8s.io/v1"


def endpoint_slice(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": SLICES,
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "podinfo"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 9898, "protocol": "TCP"}],
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@case("endpointslice: create, list by service name")
async def _slice(r: Any) -> None:
    await r.req("POST", r.path("endpointslices", group=SLICES), endpoint_slice("podinfo-abc"))
    query = "?labelSelector=kubernetes.io/service-name=podinfo"
    await r.req(
        "GET",
        r.path("endpointslices", group=SLICES) + query,
        pick=lambda b: [i["metadata"]["name"] for i in b["items"]],
    )


@case("endpointslice: missing or unknown addressType")
async def _slice_invalid(r: Any) -> None:
    await r.req(
        "POST", r.path("endpointslices", group=SLICES), endpoint_slice("a", addressType=None)
    )
    await r.req(
        "POST", r.path("endpointslices", group=SLICES), endpoint_slice("b", addressType="IPv5")
    )


@case("endpointslice: addressType is immutable")
async def _slice_immutable(r: Any) -> None:
    await r.req("POST", r.path("endpointslices", group=SLICES), endpoint_slice("a"))
    await r.req(
        "PATCH",
        r.path("endpointslices", "a", group=SLICES),
        {"addressType": "IPv6", "endpoints": []},
        MERGE,
    )


@case("ingress: create")
async def _ingress(r: Any) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    await r.req("POST", r.path("ingresses", group="networking.k8s.io/v1"), body)
