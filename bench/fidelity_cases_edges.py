"""Edges: server-side apply, watches, selectors, pagination, finalizers and deletion, CRDs and
Canaries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from fidelity import send
from fidelity_battery import APPLY, APPS, MERGE, STRATEGIC, case, configmap, deployment

ROOT = Path(__file__).resolve().parent.parent
CRD = "apiextensions.k8s.io/v1"


# --- server-side apply --------------------------------------------------------------------------------
def apply_path(
    r: Any, plural: str, name: str, manager: str, force: bool = False, group: str = ""
) -> str:
    return (
        r.path(plural, name, group=group)
        + f"?fieldManager={manager}"
        + ("&force=true" if force else "")
    )


def managers(body: Any) -> Any:
    return sorted(
        (
            m.get("manager"),
            m.get("operation"),
            m.get("subresource", ""),
            json.dumps(m.get("fieldsV1"), sort_keys=True),
        )
        for m in body["metadata"].get("managedFields") or []
    )


@case("apply: create, re-apply, field ownership", keep_managed=True)
async def _apply_create(r: Any) -> None:
    doc = configmap("a", {"a": "1", "b": "2"})
    await r.req("PATCH", apply_path(r, "configmaps", "a", "alice"), doc, APPLY)
    await r.req("PATCH", apply_path(r, "configmaps", "a", "alice"), doc, APPLY)


@case("apply: a second manager's conflicting field", keep_managed=True)
async def _apply_conflict(r: Any) -> None:
    await r.req(
        "PATCH", apply_path(r, "configmaps", "a", "alice"), configmap("a", {"a": "1"}), APPLY
    )
    await r.req("PATCH", apply_path(r, "configmaps", "a", "bob"), configmap("a", {"a": "2"}), APPLY)
    await r.req(
        "PATCH",
        apply_path(r, "configmaps", "a", "bob", force=True),
        configmap("a", {"a": "2"}),
        APPLY,
    )


@case("apply: shared ownership of an equal value", keep_managed=True)
async def _apply_shared(r: Any) -> None:
    await r.req(
        "PATCH", apply_path(r, "configmaps", "a", "alice"), configmap("a", {"a": "1"}), APPLY
    )
    await r.req(
        "PATCH",
        apply_path(r, "configmaps", "a", "bob"),
        configmap("a", {"a": "1", "b": "2"}),
        APPLY,
    )


@case("apply: a field the manager stops applying is removed", keep_managed=True)
async def _apply_remove(r: Any) -> None:
    await r.req(
        "PATCH",
        apply_path(r, "configmaps", "a", "alice"),
        configmap("a", {"a": "1", "b": "2"}),
        APPLY,
    )
    await r.req(
        "PATCH", apply_path(r, "configmaps", "a", "alice"), configmap("a", {"a": "1"}), APPLY
    )


@case("apply: conflict with an update's field", keep_managed=True)
async def _apply_vs_update(r: Any) -> None:
    await r.req("POST", r.path("configmaps") + "?fieldManager=editor", configmap("a", {"a": "1"}))
    await r.req(
        "PATCH", apply_path(r, "configmaps", "a", "alice"), configmap("a", {"a": "2"}), APPLY
    )


@case("apply: without a fieldManager")
async def _apply_no_manager(r: Any) -> None:
    await r.req("PATCH", r.path("configmaps", "a"), configmap("a"), APPLY)


@case("apply: a deployment's containers merge by name", keep_managed=True)
async def _apply_containers(r: Any) -> None:
    path = apply_path(r, "deployments", "web", "alice", group=APPS)
    await r.req("PATCH", path, deployment("web"), APPLY, pick=managers)
    sidecar = deployment("web")
    sidecar["spec"] = {
        "template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1"}]}}
    }
    sidecar["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    sidecar["spec"]["template"]["metadata"] = {"labels": {"app": "web"}}
    path_b = apply_path(r, "deployments", "web", "bob", group=APPS)
    await r.req(
        "PATCH",
        path_b,
        sidecar,
        APPLY,
        pick=lambda b: sorted(c["name"] for c in b["spec"]["template"]["spec"]["containers"]),
    )


@case("apply: an invalid object is rejected")
async def _apply_invalid(r: Any) -> None:
    body = deployment("web")
    body["spec"]["template"]["metadata"]["labels"] = {"app": "nope"}
    await r.req("PATCH", apply_path(r, "deployments", "web", "alice", group=APPS), body, APPLY)


@case("apply: the status subresource", keep_status=True, keep_managed=True)
async def _apply_status(r: Any) -> None:
    await r.req(
        "PATCH",
        apply_path(r, "deployments", "web", "alice", group=APPS),
        deployment("web"),
        APPLY,
        record=False,
    )
    status = {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "status": {"observedGeneration": 5},
    }
    path = r.path("deployments", "web", group=APPS, sub="status") + "?fieldManager=ctl&force=true"
    await r.req(
        "PATCH",
        path,
        status,
        APPLY,
        pick=lambda b: (
            b["status"].get("observedGeneration"),
            [m["manager"] for m in b["metadata"]["managedFields"]],
        ),
    )


@case("apply: yaml body", keep_managed=True)
async def _apply_yaml(r: Any) -> None:
    text = yaml.safe_dump(configmap("a", {"k": "v"}))
    await r.req("PATCH", apply_path(r, "configmaps", "a", "alice"), text, APPLY)


@case("update: managedFields of a plain update", keep_managed=True)
async def _update_managed(r: Any) -> None:
    await r.req("POST", r.path("configmaps") + "?fieldManager=editor", configmap("a"))
    await r.req(
        "PATCH", r.path("configmaps", "a") + "?fieldManager=patcher", {"data": {"b": "2"}}, MERGE
    )


# --- watches -----------------------------------------------------------------------------------------
async def watch_events(r: Any, path: str, count: int, timeout: float = 10.0) -> list[Any]:
    events: list[Any] = []
    cluster = r.cluster
    url = cluster.url + path
    try:
        async with cluster.session.get(url, headers=cluster.headers, timeout=timeout) as response:
            if response.status != 200:
                return [{"code": response.status, "body": await response.json()}]
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    if event["type"] != "BOOKMARK":
                        events.append(event)
                if len(events) >= count:
                    break
    except TimeoutError:
        pass
    return events


def summarise(events: list[Any]) -> list[Any]:
    out = []
    for event in events:
        if "type" not in event:
            out.append(event)
            continue
        obj = event["object"]
        if event["type"] == "ERROR":
            out.append(["ERROR", obj.get("code"), obj.get("reason")])
        else:
            out.append([event["type"], obj["metadata"].get("name"), obj.get("data")])
    return out


@case("watch: from a list's resourceVersion sees create, update, delete")
async def _watch_sequence(r: Any) -> None:
    listed = await r.req("GET", r.path("configmaps") + "?labelSelector=w=1", record=False)
    rv = listed.body["metadata"]["resourceVersion"]
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"w": "1"}), record=False)
    await r.req("PATCH", r.path("configmaps", "a"), {"data": {"a": "2"}}, MERGE, record=False)
    await r.req("DELETE", r.path("configmaps", "a"), record=False)
    events = await watch_events(
        r, r.path("configmaps") + f"?watch=1&labelSelector=w=1&resourceVersion={rv}", 3
    )
    r.note("events", summarise(events))


@case("watch: resume in the middle")
async def _watch_resume(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"w": "1"}), record=False)
    middle = await r.req(
        "PATCH", r.path("configmaps", "a"), {"data": {"a": "2"}}, MERGE, record=False
    )
    rv = middle.body["metadata"]["resourceVersion"]
    await r.req("PATCH", r.path("configmaps", "a"), {"data": {"a": "3"}}, MERGE, record=False)
    events = await watch_events(r, r.path("configmaps") + f"?watch=1&resourceVersion={rv}", 1)
    r.note("events", summarise(events))


@case("watch: resourceVersion 0 starts with ADDED events")
async def _watch_zero(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"w": "1"}), record=False)
    events = await watch_events(
        r, r.path("configmaps") + "?watch=1&labelSelector=w=1&resourceVersion=0", 1
    )
    r.note("events", summarise(events))


@case("watch: a single object by fieldSelector")
async def _watch_field(r: Any) -> None:
    listed = await r.req("GET", r.path("configmaps"), record=False)
    rv = listed.body["metadata"]["resourceVersion"]
    await r.req("POST", r.path("configmaps"), configmap("a"), record=False)
    await r.req("POST", r.path("configmaps"), configmap("b"), record=False)
    events = await watch_events(
        r, r.path("configmaps") + f"?watch=1&fieldSelector=metadata.name=b&resourceVersion={rv}", 1
    )
    r.note("events", summarise(events))


@case("watch: a label change moves an object out of a selector")
async def _watch_leave(r: Any) -> None:
    listed = await r.req("GET", r.path("configmaps"), record=False)
    rv = listed.body["metadata"]["resourceVersion"]
    await r.req("POST", r.path("configmaps"), configmap("a", labels={"w": "1"}), record=False)
    await r.req(
        "PATCH",
        r.path("configmaps", "a"),
        {"metadata": {"labels": {"w": "2"}}},
        MERGE,
        record=False,
    )
    events = await watch_events(
        r, r.path("configmaps") + f"?watch=1&labelSelector=w=1&resourceVersion={rv}", 2
    )
    r.note("events", summarise(events))


@case("watch: an invalid resourceVersion")
async def _watch_bad_rv(r: Any) -> None:
    events = await watch_events(r, r.path("configmaps") + "?watch=1&resourceVersion=abc", 1, 5)
    r.note("events", [e.get("code") if "code" in e else e.get("type") for e in events])


# --- selectors and pagination --------------------------------------------------------------------------
async def _seed(r: Any) -> None:
    for name, labels in (
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "web", "env": "dev"}),
        ("c", {"tier": "db"}),
        ("d", {}),
        ("e", {"env": "prod"}),
    ):
        await r.req("POST", r.path("configmaps"), configmap(name, labels=labels), record=False)


SELECTORS = {
    "equality": "labelSelector=tier=web",
    "double equals": "labelSelector=tier==web",
    "inequality": "labelSelector=tier!=web",
    "set in": "labelSelector=env+in+(prod,dev)",
    "set notin": "labelSelector=env+notin+(prod)",
    "exists": "labelSelector=env",
    "does not exist": "labelSelector=!env",
    "conjunction": "labelSelector=tier=web,env=prod",
    "malformed label selector": "labelSelector=tier%3D%3D%3Dweb",
    "field metadata.name": "fieldSelector=metadata.name=c",
    "field metadata.name !=": "fieldSelector=metadata.name!=c",
    "field metadata.namespace": "fieldSelector=metadata.namespace%3D{ns}",
    "unsupported field": "fieldSelector=data.a=1",
    "malformed field selector": "fieldSelector=metadata.name",
    "label and field": "labelSelector=env=prod&fieldSelector=metadata.name!=a",
}


def _selector_case(query: str) -> Any:
    async def run(r: Any) -> None:
        await _seed(r)
        q = query.replace("{ns}", r.ns)
        await r.req(
            "GET",
            r.path("configmaps") + "?" + q,
            pick=lambda b: [
                i["metadata"]["name"]
                for i in b["items"]
                if i["metadata"]["name"] != "kube-root-ca.crt"
            ],
        )

    return run


from fidelity_battery import add  # noqa: E402

for _name, _query in SELECTORS.items():
    add(f"selector: {_name}", _selector_case(_query))


@case("selector: field selectors other kinds support")
async def _field_kinds(r: Any) -> None:
    await r.req(
        "GET",
        r.path("services") + "?fieldSelector=spec.type=ClusterIP",
        pick=lambda b: len(b["items"]),
    )
    await r.req(
        "GET", r.path("events") + "?fieldSelector=reason=Synced", pick=lambda b: len(b["items"])
    )
    await r.req(
        "GET",
        r.path("deployments", group=APPS) + "?fieldSelector=spec.replicas=1",
        pick=lambda b: len(b["items"]),
    )
    await r.req(
        "GET", r.path("secrets") + "?fieldSelector=type=Opaque", pick=lambda b: len(b["items"])
    )
    await r.req(
        "GET",
        r.path("pods") + "?fieldSelector=status.phase=Running,spec.nodeName=x",
        pick=lambda b: len(b["items"]),
    )


@case("pagination: limit and continue")
async def _pages(r: Any) -> None:
    await _seed(r)
    base = r.path("configmaps") + "?labelSelector=tier+in+(web,db)"
    pick = lambda b: {
        "names": [i["metadata"]["name"] for i in b["items"]],
        "continue": bool(b["metadata"].get("continue")),
        "remaining": b["metadata"].get("remainingItemCount"),
    }
    first = await r.req("GET", base + "&limit=2", pick=pick)
    token = first.body["metadata"].get("continue", "")
    await r.req("GET", base + f"&limit=2&continue={token}", pick=pick)


@case("pagination: limit larger than the list")
async def _pages_all(r: Any) -> None:
    await _seed(r)
    pick = lambda b: {"n": len(b["items"]), "continue": b["metadata"].get("continue")}
    await r.req("GET", r.path("configmaps") + "?labelSelector=tier&limit=50", pick=pick)


@case("pagination: an invalid continue token")
async def _pages_bad(r: Any) -> None:
    await r.req("GET", r.path("configmaps") + "?limit=1&continue=garbage")


@case("pagination: cluster-wide list with limit")
async def _pages_cluster(r: Any) -> None:
    await _seed(r)
    pick = lambda b: {
        "kind": b["kind"],
        "n": len(b["items"]),
        "continue": bool(b["metadata"].get("continue")),
    }
    await r.req("GET", "/api/v1/configmaps?limit=1", pick=pick)


@case("list: kind, apiVersion and items of an empty list")
async def _empty_list(r: Any) -> None:
    await r.req("GET", r.path("leases", group="coordination.k8s.io/v1"))


# --- finalizers and deletion ----------------------------------------------------------------------------
@case("finalizer: delete marks, removing the finalizer deletes")
async def _finalizer(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", finalizers=["example.com/hold"]))
    pick = lambda b: {
        "deleting": bool(b["metadata"].get("deletionTimestamp")),
        "grace": b["metadata"].get("deletionGracePeriodSeconds"),
        "finalizers": b["metadata"].get("finalizers"),
        "generation": b["metadata"].get("generation"),
    }
    await r.req("DELETE", r.path("configmaps", "a"), pick=pick)
    await r.req("DELETE", r.path("configmaps", "a"), pick=pick)
    await r.req(
        "PATCH",
        r.path("configmaps", "a"),
        {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}},
        MERGE,
    )
    await r.req(
        "PATCH",
        r.path("configmaps", "a"),
        {"metadata": {"finalizers": None}},
        MERGE,
        pick=lambda b: b.get("kind"),
    )
    await r.req("GET", r.path("configmaps", "a"))


@case("finalizer: invalid finalizer name")
async def _finalizer_invalid(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a", finalizers=["no-slash"]))
    await r.req("POST", r.path("configmaps"), configmap("b", finalizers=["Bad Name/x"]))


async def _owner_and_dependent(r: Any) -> Any:
    owner = await r.req("POST", r.path("configmaps"), configmap("owner"), record=False)
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.body["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    await r.req("POST", r.path("configmaps"), configmap("dep", ownerReferences=[ref]), record=False)
    return owner


def gone(reply: Any) -> bool:
    return bool(reply.status == 404)


@case("deletion: background deletes dependents")
async def _background(r: Any) -> None:
    await _owner_and_dependent(r)
    await r.req(
        "DELETE",
        r.path("configmaps", "owner") + "?propagationPolicy=Background",
        pick=lambda b: b.get("status"),
    )
    await r.poll("GET", r.path("configmaps", "dep"), gone)


@case("deletion: foreground waits for dependents")
async def _foreground(r: Any) -> None:
    await _owner_and_dependent(r)
    pick = lambda b: {
        "finalizers": b["metadata"].get("finalizers"),
        "deleting": bool(b["metadata"].get("deletionTimestamp")),
    }
    await r.req(
        "DELETE", r.path("configmaps", "owner"), {"propagationPolicy": "Foreground"}, pick=pick
    )
    await r.poll("GET", r.path("configmaps", "dep"), gone)
    await r.poll("GET", r.path("configmaps", "owner"), gone)


@case("deletion: orphan keeps dependents and drops their ownerReferences")
async def _orphan(r: Any) -> None:
    await _owner_and_dependent(r)
    await r.req(
        "DELETE",
        r.path("configmaps", "owner"),
        {"propagationPolicy": "Orphan"},
        pick=lambda b: b.get("kind"),
    )
    await r.poll("GET", r.path("configmaps", "owner"), gone, pick=lambda b: b.get("reason"))
    await r.poll(
        "GET",
        r.path("configmaps", "dep"),
        lambda reply: not reply.body["metadata"].get("ownerReferences"),
        pick=lambda b: b["metadata"].get("ownerReferences"),
    )


@case("deletion: an unknown propagationPolicy")
async def _bad_policy(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"), record=False)
    await r.req("DELETE", r.path("configmaps", "a") + "?propagationPolicy=Sideways")


@case("deletion: preconditions on uid and resourceVersion")
async def _preconditions(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"), record=False)
    await r.req(
        "DELETE",
        r.path("configmaps", "a"),
        {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}},
    )
    await r.req("DELETE", r.path("configmaps", "a"), {"preconditions": {"resourceVersion": "1"}})


@case("deletion: delete collection by label")
async def _delete_collection(r: Any) -> None:
    await _seed(r)
    await r.req(
        "DELETE",
        r.path("configmaps") + "?labelSelector=tier=web",
        pick=lambda b: (b.get("kind"), sorted(i["metadata"]["name"] for i in b.get("items", []))),
    )
    await r.req(
        "GET",
        r.path("configmaps") + "?labelSelector=tier",
        pick=lambda b: [i["metadata"]["name"] for i in b["items"]],
    )


@case("deletion: dryRun keeps the object")
async def _dry_run(r: Any) -> None:
    await r.req("POST", r.path("configmaps"), configmap("a"), record=False)
    await r.req("DELETE", r.path("configmaps", "a") + "?dryRun=All", pick=lambda b: b.get("status"))
    await r.req("GET", r.path("configmaps", "a"), pick=lambda b: b["metadata"]["name"])
    await r.req("POST", r.path("configmaps") + "?dryRun=All", configmap("b"))
    await r.req("GET", r.path("configmaps", "b"))


@case("namespace: a terminating namespace refuses new objects")
async def _terminating(r: Any) -> None:
    name = r.unique("term")
    await r.req("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, record=False)
    await r.req(
        "POST",
        f"/api/v1/namespaces/{name}/configmaps",
        configmap("held", finalizers=["example.com/hold"]),
        record=False,
    )
    await r.req(
        "DELETE", f"/api/v1/namespaces/{name}", pick=lambda b: b.get("status", {}).get("phase")
    )
    await asyncio.sleep(0.5)
    await r.req("POST", f"/api/v1/namespaces/{name}/configmaps", configmap("new"))
    await r.req(
        "PATCH",
        f"/api/v1/namespaces/{name}/configmaps/held",
        {"metadata": {"finalizers": None}},
        MERGE,
        record=False,
    )
    await r.poll("GET", f"/api/v1/namespaces/{name}", gone, pick=lambda b: b.get("reason"))


@case("namespace: deleting one deletes its objects")
async def _ns_cascade(r: Any) -> None:
    name = r.unique("casc")
    await r.req("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, record=False)
    await r.req("POST", f"/api/v1/namespaces/{name}/configmaps", configmap("x"), record=False)
    await r.req("DELETE", f"/api/v1/namespaces/{name}", record=False)
    await r.poll(
        "GET", f"/api/v1/namespaces/{name}/configmaps/x", gone, pick=lambda b: b.get("reason")
    )
    await r.poll("GET", f"/api/v1/namespaces/{name}", gone, pick=lambda b: b.get("reason"))


# --- CRDs and Canaries ------------------------------------------------------------------------------------
def widget_crd(group: str, **version_extra: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "default": 1},
                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                    "port": {"x-kubernetes-int-or-string": True},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string", "default": "x"}},
                        },
                    },
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "selector": {"type": "string"},
                    "phase": {"type": "string"},
                },
            },
        },
    }
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        **version_extra,
    }
    return {
        "apiVersion": CRD,
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "versions": [version],
        },
    }


async def with_widgets(r: Any) -> str:
    group = r.unique("g") + ".example.com"
    r.tokens[group] = "<group>"
    crd = await r.req(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        widget_crd(group),
        record=False,
    )
    if crd.status >= 300:
        r.note("crd create failed", crd.status)
        return group
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    for _ in range(100):  # the real server serves a new CRD after it is Established
        if (await send(r.cluster, "GET", path)).status == 200:
            break
        await asyncio.sleep(0.1)
    return group


def widget(name: str, group: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": 2, **spec},
    }


@case("crd: create; status conditions and accepted names", keep_status=True)
async def _crd_create(r: Any) -> None:
    group = await with_widgets(r)
    name = f"widgets.{group}"
    await r.poll(
        "GET",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
        lambda reply: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in reply.body.get("status", {}).get("conditions", [])
        ),
        pick=lambda b: {
            "accepted": b["status"].get("acceptedNames"),
            "conditions": sorted((c["type"], c["status"]) for c in b["status"]["conditions"]),
            "spec": b["spec"],
        },
    )
    await send(
        r.cluster, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    )


@case("crd: defaults and pruning of a custom resource")
async def _cr_defaults(r: Any) -> None:
    group = await with_widgets(r)
    body = widget("w", group, unknown="dropped", extra={"kept": {"deep": 1}}, items=[{}])
    await r.req("POST", f"/apis/{group}/v1/namespaces/{r.ns}/widgets", body)
    await send(
        r.cluster,
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
    )


@case("crd: schema violations")
async def _cr_invalid(r: Any) -> None:
    group = await with_widgets(r)
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    await r.req("POST", path, widget("a", group, size=0))
    await r.req("POST", path, widget("b", group, size="big"))
    await r.req("POST", path, widget("c", group, color="green"))
    body = widget("d", group)
    del body["spec"]["size"]
    await r.req("POST", path, body)
    await r.req("POST", path, widget("e", group, port="http"))
    await send(
        r.cluster,
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
    )


@case("crd: status and scale subresources of a custom resource", keep_status=True)
async def _cr_subresources(r: Any) -> None:
    group = await with_widgets(r)
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    created = await r.req("POST", path, {**widget("w", group), "status": {"phase": "ignored"}})
    status = {
        **created.body,
        "status": {"replicas": 1, "selector": "app=w", "phase": "Ready"},
        "spec": {"size": 9},
    }
    await r.req("PUT", f"{path}/w/status", status)
    await r.req(
        "GET",
        f"{path}/w/scale",
        pick=lambda b: {k: b.get(k) for k in ("kind", "apiVersion", "spec", "status")},
    )
    await r.req(
        "PATCH", f"{path}/w/scale", {"spec": {"replicas": 3}}, MERGE, pick=lambda b: b.get("spec")
    )
    await r.req("GET", f"{path}/w", pick=lambda b: b["spec"])
    await send(
        r.cluster,
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
    )


@case("crd: strategic merge patch of a custom resource is 415")
async def _cr_smp(r: Any) -> None:
    group = await with_widgets(r)
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    await r.req("POST", path, widget("w", group), record=False)
    await r.req("PATCH", f"{path}/w", {"spec": {"size": 3}}, STRATEGIC)
    await send(
        r.cluster,
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
    )


@case("crd: generation of a custom resource moves with spec only")
async def _cr_generation(r: Any) -> None:
    group = await with_widgets(r)
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    await r.req("POST", path, widget("w", group), record=False)
    pick = lambda b: b["metadata"].get("generation")
    await r.req("PATCH", f"{path}/w", {"metadata": {"labels": {"a": "b"}}}, MERGE, pick=pick)
    await r.req("PATCH", f"{path}/w", {"spec": {"size": 5}}, MERGE, pick=pick)
    await r.req("PATCH", f"{path}/w/status", {"status": {"phase": "x"}}, MERGE, pick=pick)
    await send(
        r.cluster,
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
    )


@case("crd: invalid definitions")
async def _crd_invalid(r: Any) -> None:
    group = r.unique("bad") + ".example.com"
    body = widget_crd(group)
    body["metadata"]["name"] = "wrong.name.example.com"
    await r.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    body = widget_crd(group)
    body["spec"]["versions"] = []
    await r.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    body = widget_crd(group)
    body["spec"]["versions"][0]["schema"] = None
    await r.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)


@case("crd: deleting a CRD deletes its resources")
async def _crd_delete(r: Any) -> None:
    group = await with_widgets(r)
    path = f"/apis/{group}/v1/namespaces/{r.ns}/widgets"
    await r.req("POST", path, widget("w", group), record=False)
    await r.req(
        "DELETE",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
        pick=lambda b: bool(b.get("metadata", {}).get("deletionTimestamp")),
    )
    await r.poll(
        "GET",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
        gone,
        pick=lambda b: b.get("reason"),
    )
    await r.poll("GET", f"{path}/w", gone, pick=lambda b: b.get("reason"))


async def with_canary_crd(r: Any) -> bool:
    for doc in yaml.safe_load_all((ROOT / "deploy" / "crds" / "canaries.yaml").read_text()):
        await send(
            r.cluster, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc
        )
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries"
    for _ in range(100):
        if (await send(r.cluster, "GET", path)).status == 200:
            return True
        await asyncio.sleep(0.1)
    return False


def canary(name: str, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                **analysis,
            },
        },
    }


@case("canary: create, status write, list")
async def _canary(r: Any) -> None:
    await with_canary_crd(r)
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries"
    created = await r.req("POST", path, canary("podinfo"))
    if created.status < 300:
        status = {
            **created.body,
            "status": {
                "phase": "Progressing",
                "canaryWeight": 10,
                "failedChecks": 0,
                "iterations": 0,
            },
        }
        await r.req("PUT", f"{path}/podinfo/status", status, pick=lambda b: b.get("status"))
        await r.req(
            "PATCH",
            f"{path}/podinfo/status",
            {"status": {"canaryWeight": 20}},
            MERGE,
            pick=lambda b: b.get("status"),
        )
    await r.req("GET", path, pick=lambda b: [i["metadata"]["name"] for i in b["items"]])


@case("canary: unknown fields are pruned, wrong types rejected")
async def _canary_invalid(r: Any) -> None:
    await with_canary_crd(r)
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries"
    await r.req("POST", path, canary("a", unknownField=1))
    await r.req("POST", path, canary("b", threshold="five"))


@case("canary: server-side apply of a Canary", keep_managed=True)
async def _canary_apply(r: Any) -> None:
    await with_canary_crd(r)
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries/podinfo?fieldManager=kubectl&force=true"
    await r.req("PATCH", path, canary("podinfo"), APPLY, pick=managers)
    await r.req(
        "PATCH", path, canary("podinfo", stepWeight=20), APPLY, pick=lambda b: b["spec"]["analysis"]
    )


@case("canary: finalizer, delete, remove finalizer")
async def _canary_finalizer(r: Any) -> None:
    await with_canary_crd(r)
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries"
    await r.req(
        "POST",
        path,
        {**canary("c"), "metadata": {"name": "c", "finalizers": ["finalizers.flagger.app"]}},
        record=False,
    )
    await r.req(
        "DELETE",
        f"{path}/c",
        pick=lambda b: (
            bool(b["metadata"].get("deletionTimestamp")),
            b["metadata"].get("finalizers"),
        ),
    )
    await r.req(
        "PATCH", f"{path}/c", {"metadata": {"finalizers": []}}, MERGE, pick=lambda b: b.get("kind")
    )
    await r.req("GET", f"{path}/c", pick=lambda b: b.get("reason"))


@case("canary: ownerReference to a Canary on a Service")
async def _canary_owner(r: Any) -> None:
    await with_canary_crd(r)
    path = f"/apis/flagger.app/v1beta1/namespaces/{r.ns}/canaries"
    created = await r.req("POST", path, canary("podinfo"), record=False)
    ref = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "name": "podinfo",
        "uid": created.body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo-canary", "ownerReferences": [ref]},
        "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 9898}]},
    }
    await r.req(
        "POST", r.path("services"), svc, pick=lambda b: b["metadata"].get("ownerReferences")
    )
    await r.req("DELETE", f"{path}/podinfo", record=False)
    # kube-controller-manager's garbage collector learns a new CRD's kind at its next discovery
    # resync (every 30 s), so its dependents go within a minute
    await r.poll(
        "GET",
        r.path("services", "podinfo-canary"),
        gone,
        timeout=75,
        pick=lambda b: b.get("reason"),
    )
