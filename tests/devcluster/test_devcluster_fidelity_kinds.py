"""Per-kind behaviour where devcluster once differed from kube-apiserver 1.36 (found by
`bench/fidelity.py`): each test pins the real server's answer."""

from __future__ import annotations

from typing import Any

from .dchelpers import CM, DEPLOY, SVC, Raw, configmap, deployment

NS = "/api/v1/namespaces/default"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


def causes(reply: Any) -> list[tuple[str, str]]:
    assert reply.status == 422, reply.body
    return sorted((c["field"], c["reason"]) for c in reply.body["details"]["causes"])


# --- generation and initial status ---------------------------------------------------------------
async def test_only_kinds_with_a_generation_get_one(devcluster_http: Raw) -> None:
    created = await devcluster_http.post(CM, configmap("plain"))
    assert "generation" not in created.body["metadata"]
    changed = await devcluster_http.patch(f"{CM}/plain", {"data": {"a": "2"}})
    assert "generation" not in changed.body["metadata"]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    service["spec"] = {"ports": [{"port": 80}]}
    assert "generation" not in (await devcluster_http.post(SVC, service)).body["metadata"]
    assert (await devcluster_http.post(DEPLOY, deployment("d"))).body["metadata"]["generation"] == 1


async def test_a_deployments_annotations_move_its_generation(devcluster_http: Raw) -> None:
    await devcluster_http.post(DEPLOY, deployment("web"))
    labelled = await devcluster_http.patch(f"{DEPLOY}/web", {"metadata": {"labels": {"x": "y"}}})
    assert labelled.body["metadata"]["generation"] == 1
    annotated = await devcluster_http.patch(
        f"{DEPLOY}/web", {"metadata": {"annotations": {"a": "b"}}}
    )
    assert annotated.body["metadata"]["generation"] == 2


async def test_a_new_deployment_has_an_empty_status(devcluster_http: Raw) -> None:
    created = await devcluster_http.post(DEPLOY, deployment("web"))
    assert created.body["status"] == {}


# --- workloads ---------------------------------------------------------------------------------
async def test_workload_rules(devcluster_http: Raw) -> None:
    empty = deployment("a")
    empty["spec"]["selector"] = {}
    assert causes(await devcluster_http.post(DEPLOY, empty)) == [
        ("spec.selector", "FieldValueInvalid")
    ]
    assert causes(await devcluster_http.post(DEPLOY, deployment("b", replicas=-1))) == [
        ("spec.replicas", "FieldValueInvalid")
    ]
    no_image = deployment("c")
    no_image["spec"]["template"]["spec"]["containers"] = [{"name": "app"}]
    assert causes(await devcluster_http.post(DEPLOY, no_image)) == [
        ("spec.template.spec.containers[0].image", "FieldValueRequired")
    ]
    recreate = deployment("d")
    recreate["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    assert causes(await devcluster_http.post(DEPLOY, recreate)) == [
        ("spec.strategy.rollingUpdate", "FieldValueForbidden")
    ]
    stuck = deployment("e")
    stuck["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0},
    }
    assert causes(await devcluster_http.post(DEPLOY, stuck)) == [
        ("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid")
    ]


async def test_a_workloads_selector_is_immutable(devcluster_http: Raw) -> None:
    await devcluster_http.post(DEPLOY, deployment("web"))
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "web", "v": "2"}},
            "template": {"metadata": {"labels": {"app": "web", "v": "2"}}},
        }
    }
    reply = await devcluster_http.patch(f"{DEPLOY}/web", patch)
    assert causes(reply) == [("spec.selector", "FieldValueInvalid")]
    assert "field is immutable" in reply.message


async def test_statefulsets_are_served_with_their_defaults(devcluster_http: Raw) -> None:
    body = {**deployment("db"), "kind": "StatefulSet"}
    created = await devcluster_http.post("/apis/apps/v1/namespaces/default/statefulsets", body)
    assert created.status == 201
    assert created.body["spec"]["podManagementPolicy"] == "OrderedReady"
    assert created.body["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 0}


# --- ConfigMaps and Secrets ----------------------------------------------------------------------
async def test_configmap_keys_and_immutability(devcluster_http: Raw) -> None:
    assert causes(await devcluster_http.post(CM, configmap("k", {"bad key": "v"}))) == [
        ("data[bad key]", "FieldValueInvalid")
    ]
    binary = await devcluster_http.post(
        CM, {**configmap("b"), "data": {}, "binaryData": {"x": "AAE="}}
    )
    assert "data" not in binary.body, "an empty map is omitted, as Go's omitempty does"
    await devcluster_http.post(CM, {**configmap("frozen"), "immutable": True})
    reply = await devcluster_http.patch(f"{CM}/frozen", {"data": {"a": "2"}})
    assert causes(reply) == [("data", "FieldValueForbidden")]


async def test_secret_string_data_type_and_encoding(devcluster_http: Raw) -> None:
    secrets = f"{NS}/secrets"
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    created = await devcluster_http.post(secrets, {**body, "stringData": {"token": "abc"}})
    assert created.body["data"] == {"token": "YWJj"}
    assert created.body["type"] == "Opaque"
    assert "stringData" not in created.body
    bad = await devcluster_http.post(
        secrets, {**body, "metadata": {"name": "b"}, "data": {"a": "!"}}
    )
    assert bad.status == 400
    tls = {**body, "metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {}}
    assert causes(await devcluster_http.post(secrets, tls)) == [
        ("data[tls.crt]", "FieldValueRequired"),
        ("data[tls.key]", "FieldValueRequired"),
    ]
    retyped = await devcluster_http.patch(f"{secrets}/s", {"type": "example.com/x"})
    assert causes(retyped) == [("type", "FieldValueInvalid")]


# --- autoscaling, coordination, events, namespaces --------------------------------------------------
def hpa(name: str, **spec: Any) -> dict[str, Any]:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    body = {"scaleTargetRef": target, "maxReplicas": 3, **spec}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": body,
    }


async def test_hpa_defaults_and_bounds(devcluster_http: Raw) -> None:
    created = await devcluster_http.post(HPAS, hpa("web", behavior={"scaleDown": {}}))
    spec = created.body["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert spec["behavior"]["scaleUp"]["policies"][0] == {
        "type": "Pods",
        "value": 4,
        "periodSeconds": 15,
    }
    assert created.body["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    inverted = await devcluster_http.post(HPAS, hpa("a", minReplicas=5, maxReplicas=2))
    assert causes(inverted) == [("spec.maxReplicas", "FieldValueInvalid")]
    zero = await devcluster_http.post(HPAS, hpa("b", minReplicas=0))
    assert causes(zero) == [
        ("spec.metrics", "FieldValueForbidden"),
        ("spec.minReplicas", "FieldValueInvalid"),
    ]


async def test_a_put_creates_a_missing_lease(devcluster_http: Raw) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a"},
    }
    assert (await devcluster_http.put(f"{LEASES}/leader", lease)).status == 201
    zero = {**lease, "metadata": {"name": "z"}, "spec": {"leaseDurationSeconds": 0}}
    assert causes(await devcluster_http.post(LEASES, zero)) == [
        ("spec.leaseDurationSeconds", "FieldValueInvalid")
    ]
    assert (await devcluster_http.put(f"{CM}/missing", configmap("missing"))).status == 404


async def test_events_carry_their_non_optional_fields(devcluster_http: Raw) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e.1"},
        "involvedObject": {"kind": "Canary", "name": "p", "namespace": "default"},
        "reason": "Synced",
        "message": "m",
        "type": "Odd types are accepted",
    }
    created = await devcluster_http.post(f"{NS}/events", event)
    assert created.status == 201
    assert created.body["eventTime"] is None
    assert created.body["reportingComponent"] == ""
    view = await devcluster_http.get("/apis/events.k8s.io/v1/namespaces/default/events/e.1")
    assert view.body["deprecatedSource"] == {}
    assert "reportingController" not in view.body
    elsewhere = {**event, "metadata": {"name": "e.2"}}
    elsewhere["involvedObject"] = {**event["involvedObject"], "namespace": "other"}
    assert causes(await devcluster_http.post(f"{NS}/events", elsewhere)) == [
        ("involvedObject.namespace", "FieldValueInvalid")
    ]


async def test_namespaces_get_their_name_label(devcluster_http: Raw) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    created = await devcluster_http.post("/api/v1/namespaces", body)
    assert created.body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    resources = (await devcluster_http.get("/api/v1")).body["resources"]
    namespaces = next(r for r in resources if r["name"] == "namespaces")
    assert "deletecollection" not in namespaces["verbs"]


# --- RBAC and EndpointSlices --------------------------------------------------------------------------
def binding(role_kind: str = "Role", role: str = "reader") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "coalmine"}],
    }


async def test_rbac_objects_are_stored_and_validated(devcluster_http: Raw) -> None:
    groups = (await devcluster_http.get("/apis")).body["groups"]
    assert "rbac.authorization.k8s.io" in [g["name"] for g in groups]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    assert (await devcluster_http.post(f"{RBAC}/clusterroles", role)).status == 201
    bindings = f"{RBAC}/namespaces/default/rolebindings"
    assert (await devcluster_http.post(bindings, binding())).status == 201
    changed = {"roleRef": {**binding()["roleRef"], "name": "writer"}}
    assert causes(await devcluster_http.patch(f"{bindings}/b", changed)) == [
        ("roleRef", "FieldValueInvalid")
    ]
    wrong = {**binding("Deployment"), "metadata": {"name": "c"}}
    assert causes(await devcluster_http.post(bindings, wrong)) == [
        ("roleRef.kind", "FieldValueNotSupported")
    ]
    no_verbs = {**role, "metadata": {"name": "x"}, "rules": [{"apiGroups": [""]}]}
    assert ("rules[0].verbs", "FieldValueRequired") in causes(
        await devcluster_http.post(f"{RBAC}/clusterroles", no_verbs)
    )


async def test_endpoint_slices_are_served(devcluster_http: Raw) -> None:
    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.5"]}],
        "ports": [{"name": "http", "port": 80}],
    }
    created = await devcluster_http.post(SLICES, body)
    assert created.status == 201
    assert created.body["ports"][0]["protocol"] == "TCP"
    assert created.body["metadata"]["generation"] == 1
    moved = await devcluster_http.patch(f"{SLICES}/s", {"addressType": "IPv6"})
    assert causes(moved) == [("addressType", "FieldValueInvalid")]
    missing = {k: v for k, v in body.items() if k != "addressType"}
    missing["metadata"] = {"name": "t"}
    assert causes(await devcluster_http.post(SLICES, missing)) == [
        ("addressType", "FieldValueRequired")
    ]


async def test_autoscaling_v1_is_a_view_of_the_v2_objects(devcluster_http: Raw) -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 70,
        },
    }
    path = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
    created = await devcluster_http.post(path, v1)
    assert created.status == 201
    assert created.body["spec"]["targetCPUUtilizationPercentage"] == 70
    assert created.body["spec"]["minReplicas"] == 1
    assert created.body["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    v2 = (await devcluster_http.get(f"{HPAS}/web")).body
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    patched = await devcluster_http.patch(f"{path}/web", {"spec": {"maxReplicas": 5}})
    assert patched.body["spec"]["targetCPUUtilizationPercentage"] == 70
    assert (await devcluster_http.get(f"{HPAS}/web")).body["spec"]["maxReplicas"] == 5
