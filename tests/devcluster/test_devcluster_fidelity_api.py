"""API-wide behaviour where devcluster once differed from kube-apiserver 1.36 (found by
`bench/fidelity.py`): deletion answers, finalizers, selectors, pagination, strict fields, watches,
Service rules, server-side apply bookkeeping and CRDs."""

from __future__ import annotations

from typing import Any

import aiohttp

from coalmine.devcluster import DevCluster

from .dchelpers import APPLY, CM, SVC, WIDGET_CRD, Raw, configmap

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def causes(reply: Any) -> list[tuple[str, str]]:
    assert reply.status == 422, reply.body
    return sorted((c["field"], c["reason"]) for c in reply.body["details"]["causes"])


async def owner_and_dependent(raw: Raw) -> None:
    owner = (await raw.post(CM, configmap("owner"))).body
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner"}
    ref["uid"] = owner["metadata"]["uid"]
    await raw.post(CM, configmap("dep", ownerReferences=[ref]))


# --- deletion ------------------------------------------------------------------------------------
async def test_a_foreground_delete_answers_with_the_marked_owner(devcluster_http: Raw) -> None:
    await owner_and_dependent(devcluster_http)
    reply = await devcluster_http.delete(f"{CM}/owner", {"propagationPolicy": "Foreground"})
    assert reply.body["kind"] == "ConfigMap"
    assert reply.body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert reply.body["metadata"]["deletionTimestamp"]
    assert (await devcluster_http.get(f"{CM}/dep")).status == 404
    assert (await devcluster_http.get(f"{CM}/owner")).status == 404


async def test_an_orphan_delete_answers_with_the_orphan_finalizer(devcluster_http: Raw) -> None:
    await owner_and_dependent(devcluster_http)
    reply = await devcluster_http.delete(f"{CM}/owner", {"propagationPolicy": "Orphan"})
    assert reply.body["metadata"]["finalizers"] == ["orphan"]
    assert (await devcluster_http.get(f"{CM}/owner")).status == 404
    dependent = await devcluster_http.get(f"{CM}/dep")
    assert "ownerReferences" not in dependent.body["metadata"]


async def test_dry_run_and_namespace_deletes_answer_as_a_real_server(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("kept"))
    dry = await devcluster_http.delete(f"{CM}/kept?dryRun=All")
    assert dry.body["kind"] == "Status"
    assert dry.body["status"] == "Success"
    assert (await devcluster_http.get(f"{CM}/kept")).status == 200
    await devcluster_http.post("/api/v1/namespaces", {"metadata": {"name": "gone"}})
    reply = await devcluster_http.delete("/api/v1/namespaces/gone")
    assert reply.body["kind"] == "Namespace"
    assert reply.body["status"]["phase"] == "Terminating"


async def test_a_crd_delete_answers_with_the_cleanup_finalizer(devcluster_http: Raw) -> None:
    await devcluster_http.post(CRDS, WIDGET_CRD)
    reply = await devcluster_http.delete(f"{CRDS}/widgets.example.com")
    assert reply.body["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert (await devcluster_http.get(f"{CRDS}/widgets.example.com")).status == 404


async def test_finalizer_names_on_built_in_kinds(devcluster_http: Raw) -> None:
    assert causes(await devcluster_http.post(CM, configmap("a", finalizers=["no-slash"]))) == [
        ("metadata.finalizers[0]", "FieldValueInvalid")
    ]
    assert causes(await devcluster_http.post(CM, configmap("b", finalizers=["Bad Name/x"]))) == [
        ("metadata.finalizers", "FieldValueInvalid")
    ]
    standard = await devcluster_http.post(CM, configmap("c", finalizers=["kubernetes"]))
    assert standard.status == 201
    await devcluster_http.post(CM, configmap("d", finalizers=["example.com/hold"]))
    await devcluster_http.delete(f"{CM}/d")
    more = {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
    assert causes(await devcluster_http.patch(f"{CM}/d", more)) == [
        ("metadata.finalizers", "FieldValueForbidden"),
        ("metadata.finalizers", "FieldValueForbidden"),
    ], "kube-apiserver 1.36 reports it twice"


# --- selectors, pagination, strict fields --------------------------------------------------------------
async def test_field_selectors_are_limited_to_the_indexed_fields(devcluster_http: Raw) -> None:
    refused = await devcluster_http.get(f"{CM}?fieldSelector=data.a%3D1")
    assert refused.status == 400
    assert refused.message == (
        '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    secrets = await devcluster_http.get("/api/v1/namespaces/default/secrets?fieldSelector=type=x")
    assert secrets.status == 200
    services = await devcluster_http.get(f"{SVC}?fieldSelector=spec.type=ClusterIP")
    assert [i["metadata"]["name"] for i in services.body["items"]] == ["kubernetes"]


async def test_remaining_item_count_only_without_selectors(devcluster_http: Raw) -> None:
    for name in ("a", "b", "c"):
        await devcluster_http.post(CM, configmap(name, labels={"x": "y"}))
    plain = await devcluster_http.get(f"{CM}?limit=1")
    assert plain.body["metadata"]["remainingItemCount"] == 2
    selected = await devcluster_http.get(f"{CM}?limit=1&labelSelector=x%3Dy")
    assert selected.body["metadata"]["continue"]
    assert "remainingItemCount" not in selected.body["metadata"]


async def test_unknown_top_level_fields_are_dropped_or_refused(devcluster_http: Raw) -> None:
    odd = {**configmap("odd"), "spec": {"x": 1}}
    strict = await devcluster_http.post(f"{CM}?fieldValidation=Strict", odd)
    assert strict.status == 400
    assert 'strict decoding error: unknown field "spec"' in strict.message
    lenient = await devcluster_http.post(CM, odd)
    assert lenient.status == 201
    assert "spec" not in lenient.body


async def test_openapi_v2_is_an_empty_document(devcluster_http: Raw) -> None:
    protobuf = await devcluster_http.get(
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    assert protobuf.status == 200
    assert protobuf.body == ""
    swagger = await devcluster_http.get("/openapi/v2")
    assert swagger.body["definitions"] == {}


async def test_a_watch_with_an_unparsable_version_is_500(devcluster_http: Raw) -> None:
    reply = await devcluster_http.get(f"{CM}?watch=1&resourceVersion=abc")
    assert reply.status == 500
    assert "reason" not in reply.body


# --- Services -----------------------------------------------------------------------------------------
def service(name: str, **spec: Any) -> dict[str, Any]:
    body = {"selector": {"app": name}, "ports": [{"port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


async def test_ip_family_rules_of_a_single_stack_cluster(devcluster_http: Raw) -> None:
    both = await devcluster_http.post(SVC, service("a", ipFamilies=["IPv4", "IPv6"]))
    assert causes(both) == [("spec.ipFamilyPolicy", "FieldValueInvalid")]
    six = await devcluster_http.post(SVC, service("b", ipFamilies=["IPv6"]))
    assert causes(six) == [("spec.ipFamilies[0]", "FieldValueInvalid")]
    required = await devcluster_http.post(SVC, service("c", ipFamilyPolicy="RequireDualStack"))
    assert causes(required) == [("spec.ipFamilyPolicy", "FieldValueInvalid")]
    unknown = await devcluster_http.post(SVC, service("d", ipFamilyPolicy="Sometimes"))
    assert causes(unknown) == [("spec.ipFamilyPolicy", "FieldValueNotSupported")]
    headless = service("e", clusterIP="None")
    del headless["spec"]["selector"]
    created = await devcluster_http.post(SVC, headless)
    assert created.body["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert created.body["spec"]["ipFamilyPolicy"] == "RequireDualStack"


async def test_service_port_and_policy_rules(devcluster_http: Raw) -> None:
    zero = await devcluster_http.post(SVC, service("z", ports=[{"port": 0}]))
    assert causes(zero) == [
        ("spec.ports[0].port", "FieldValueInvalid"),
        ("spec.ports[0].targetPort", "FieldValueInvalid"),
    ]
    local = await devcluster_http.post(SVC, service("l", externalTrafficPolicy="Local"))
    assert causes(local) == [("spec.externalTrafficPolicy", "FieldValueInvalid")]
    ports = [
        {"name": "a", "port": 80, "nodePort": 31000},
        {"name": "b", "port": 81, "nodePort": 31000},
    ]
    twice = await devcluster_http.post(SVC, service("t", type="NodePort", ports=ports))
    assert causes(twice) == [("spec.ports[1].nodePort", "FieldValueInvalid")]
    sticky = await devcluster_http.post(SVC, service("s", sessionAffinity="ClientIP"))
    assert sticky.body["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


async def test_a_load_balancer_ingress_gets_its_ip_mode(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(SVC, service("lb", type="LoadBalancer"))).body
    created["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    written = await devcluster_http.put(f"{SVC}/lb/status", created)
    assert written.body["status"]["loadBalancer"]["ingress"] == [
        {"ip": "192.0.2.1", "ipMode": "VIP"}
    ]


# --- server-side apply and CRDs ----------------------------------------------------------------------
async def test_an_update_owns_the_maps_it_creates(devcluster_http: Raw) -> None:
    created = await devcluster_http.post(f"{CM}?fieldManager=editor", configmap("a"))
    fields = created.body["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields == {"f:data": {".": {}, "f:a": {}}}
    patched = await devcluster_http.patch(f"{CM}/a?fieldManager=patcher", {"data": {"b": "2"}})
    managed = {m["manager"]: m["fieldsV1"] for m in patched.body["metadata"]["managedFields"]}
    assert managed == {
        "editor": {"f:data": {".": {}, "f:a": {}}},
        "patcher": {"f:data": {"f:b": {}}},
    }
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
    without_manager = await devcluster_http.patch(f"{CM}/a", doc, content_type=APPLY)
    assert causes(without_manager) == [("fieldManager", "FieldValueRequired")]


async def test_crd_defaults_and_required_schemas(devcluster_http: Raw) -> None:
    created = await devcluster_http.post(CRDS, WIDGET_CRD)
    assert created.body["spec"]["conversion"] == {"strategy": "None"}
    schemaless: dict[str, Any] = {**WIDGET_CRD, "metadata": {"name": "gadgets.example.com"}}
    version = {"name": "v1", "served": True, "storage": True}
    names = {"kind": "Gadget", "plural": "gadgets"}
    schemaless["spec"] = {**WIDGET_CRD["spec"], "names": names, "versions": [version]}
    assert causes(await devcluster_http.post(CRDS, schemaless)) == [
        ("spec.versions[0].schema.openAPIV3Schema", "FieldValueRequired")
    ]
    schemaless["spec"]["versions"] = []
    assert causes(await devcluster_http.post(CRDS, schemaless)) == [
        ("spec.versions", "FieldValueInvalid"),
        ("status.storedVersions", "FieldValueInvalid"),
    ]


async def test_custom_resources_accept_finalizers_without_a_domain_prefix() -> None:
    async with DevCluster(simulator=False) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(session, cluster.url)
        await raw.post(CRDS, WIDGET_CRD)
        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "finalizers": ["finalizers.example.com"]},
            "spec": {"size": 1},
        }
        created = await raw.post("/apis/example.com/v1/namespaces/default/widgets", widget)
        assert created.status == 201
