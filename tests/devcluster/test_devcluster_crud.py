"""Create, read, update and patch through raw HTTP, with the Status errors of a real server."""

from __future__ import annotations

from coalmine.devcluster import DevCluster

from .dchelpers import APPLY, CM, DEPLOY, JSON_PATCH, STRATEGIC, Raw, configmap, deployment


async def test_create_sets_server_fields_and_namespace_from_url(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(CM, configmap("settings"))
    assert reply.status == 201
    meta = reply.body["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert "generation" not in meta  # ConfigMaps have none on a real server
    assert int(meta["resourceVersion"]) > 0
    got = await devcluster_http.get(f"{CM}/settings")
    assert got.status == 200
    assert got.body == reply.body


async def test_generate_name_appends_a_random_suffix(devcluster_http: Raw) -> None:
    body = configmap("")
    body["metadata"] = {"generateName": "job-"}
    reply = await devcluster_http.post(CM, body)
    assert reply.status == 201
    name = reply.body["metadata"]["name"]
    assert name.startswith("job-")
    assert len(name) == len("job-") + 5


async def test_create_twice_is_409_already_exists(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("dup"))
    reply = await devcluster_http.post(CM, configmap("dup"))
    assert reply.status == 409
    assert reply.body["reason"] == "AlreadyExists"
    assert reply.message == 'configmaps "dup" already exists'
    assert reply.body["details"] == {"name": "dup", "kind": "configmaps"}


async def test_invalid_name_is_422_with_the_dns_1123_message(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(CM, configmap("Bad_Name"))
    assert reply.status == 422
    assert reply.body["reason"] == "Invalid"
    assert reply.message.startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
        "RFC 1123 subdomain"
    )
    cause = reply.body["details"]["causes"][0]
    assert cause["field"] == "metadata.name"
    assert cause["reason"] == "FieldValueInvalid"


async def test_missing_object_is_404_worded_like_kube(devcluster_http: Raw) -> None:
    reply = await devcluster_http.get(f"{DEPLOY}/nope")
    assert reply.status == 404
    assert reply.body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


async def test_create_in_missing_namespace_is_404(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post("/api/v1/namespaces/ghost/configmaps", configmap("x"))
    assert reply.status == 404
    assert reply.message == 'namespaces "ghost" not found'


async def test_put_with_stale_resource_version_is_409_conflict(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(CM, configmap("cas"))).body
    first = dict(created, data={"a": "2"})
    assert (await devcluster_http.put(f"{CM}/cas", first)).status == 200
    stale = dict(created, data={"a": "3"})
    reply = await devcluster_http.put(f"{CM}/cas", stale)
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"
    assert reply.message == (
        'Operation cannot be fulfilled on configmaps "cas": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


async def test_put_without_resource_version_is_unconditional(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("free"))
    reply = await devcluster_http.put(f"{CM}/free", configmap("free", {"b": "2"}))
    assert reply.status == 200
    assert reply.body["data"] == {"b": "2"}


async def test_put_to_a_missing_object_is_404(devcluster_http: Raw) -> None:
    reply = await devcluster_http.put(f"{CM}/absent", configmap("absent"))
    assert reply.status == 404


async def test_noop_update_keeps_the_resource_version(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(CM, configmap("same"))).body
    reply = await devcluster_http.put(f"{CM}/same", created)
    assert reply.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_merge_patch_merges_and_null_deletes(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("m", {"a": "1", "b": "2"}))
    reply = await devcluster_http.patch(f"{CM}/m", {"data": {"a": None, "c": "3"}})
    assert reply.status == 200
    assert reply.body["data"] == {"b": "2", "c": "3"}


async def test_json_patch_applies_and_a_failed_test_is_422(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("j", {"a": "1"}))
    ops = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/b", "value": "2"},
    ]
    reply = await devcluster_http.patch(f"{CM}/j", ops, content_type=JSON_PATCH)
    assert reply.status == 200
    assert reply.body["data"] == {"a": "1", "b": "2"}
    failing = [{"op": "test", "path": "/data/a", "value": "9"}]
    reply = await devcluster_http.patch(f"{CM}/j", failing, content_type=JSON_PATCH)
    assert reply.status == 422
    assert reply.body["kind"] == "Status"


async def test_strategic_merge_patch_merges_containers_by_name(devcluster_http: Raw) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    await devcluster_http.post(DEPLOY, body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}
    reply = await devcluster_http.patch(f"{DEPLOY}/web", patch, content_type=STRATEGIC)
    assert reply.status == 200
    containers = reply.body["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("app", "nginx:2"),
        ("sidecar", "envoy:1"),
    ]


async def test_unknown_patch_content_type_is_415(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("t"))
    reply = await devcluster_http.patch(f"{CM}/t", {"data": {}}, content_type="text/plain")
    assert reply.status == 415
    assert reply.body["reason"] == "UnsupportedMediaType"


async def test_generation_increments_only_when_the_spec_changes(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(DEPLOY, deployment("gen"))).body
    assert created["metadata"]["generation"] == 1
    labelled = await devcluster_http.patch(f"{DEPLOY}/gen", {"metadata": {"labels": {"x": "y"}}})
    assert labelled.body["metadata"]["generation"] == 1
    status = await devcluster_http.patch(f"{DEPLOY}/gen/status", {"status": {"replicas": 1}})
    assert status.body["metadata"]["generation"] == 1
    scaled = await devcluster_http.patch(f"{DEPLOY}/gen", {"spec": {"replicas": 3}})
    assert scaled.body["metadata"]["generation"] == 2


async def test_main_resource_writes_ignore_status_and_status_writes_ignore_spec(
    devcluster_http: Raw,
) -> None:
    await devcluster_http.post(DEPLOY, deployment("sub"))
    reply = await devcluster_http.patch(
        f"{DEPLOY}/sub", {"spec": {"replicas": 2}, "status": {"replicas": 9}}
    )
    assert reply.body["spec"]["replicas"] == 2
    assert reply.body.get("status", {}).get("replicas") != 9
    reply = await devcluster_http.patch(
        f"{DEPLOY}/sub/status", {"spec": {"replicas": 7}, "status": {"replicas": 5}}
    )
    assert reply.body["spec"]["replicas"] == 2
    assert reply.body["status"]["replicas"] == 5


async def test_scale_subresource_reads_and_writes_replicas(devcluster_http: Raw) -> None:
    await devcluster_http.post(DEPLOY, deployment("sc", replicas=2))
    scale = await devcluster_http.get(f"{DEPLOY}/sc/scale")
    assert scale.body["kind"] == "Scale"
    assert scale.body["apiVersion"] == "autoscaling/v1"
    assert scale.body["spec"] == {"replicas": 2}
    assert scale.body["status"]["selector"] == "app=sc"
    scale.body["spec"]["replicas"] = 5
    assert (await devcluster_http.put(f"{DEPLOY}/sc/scale", scale.body)).status == 200
    assert (await devcluster_http.get(f"{DEPLOY}/sc")).body["spec"]["replicas"] == 5
    patched = await devcluster_http.patch(f"{DEPLOY}/sc/scale", {"spec": {"replicas": 1}})
    assert patched.body["spec"]["replicas"] == 1


async def test_server_side_apply_creates_then_removes_fields_no_longer_applied(
    devcluster_http: Raw,
) -> None:
    first = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: '2'\n"
    reply = await devcluster_http.patch(f"{CM}/ssa?fieldManager=tool", first, content_type=APPLY)
    assert reply.status == 201
    managers = reply.body["metadata"]["managedFields"]
    assert managers[0]["manager"] == "tool"
    assert managers[0]["operation"] == "Apply"
    assert managers[0]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    second = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    reply = await devcluster_http.patch(f"{CM}/ssa?fieldManager=tool", second, content_type=APPLY)
    assert reply.status == 200
    assert reply.body["data"] == {"a": "1"}


async def test_server_side_apply_conflicts_unless_forced(devcluster_http: Raw) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\ndata:\n  a: '{}'\n"
    await devcluster_http.patch(f"{CM}/own?fieldManager=one", doc.format(1), content_type=APPLY)
    reply = await devcluster_http.patch(
        f"{CM}/own?fieldManager=two", doc.format(2), content_type=APPLY
    )
    assert reply.status == 409
    assert reply.message == 'Apply failed with 1 conflict: conflict with "one" using v1: .data.a'
    forced = await devcluster_http.patch(
        f"{CM}/own?fieldManager=two&force=true", doc.format(2), content_type=APPLY
    )
    assert forced.status == 200
    assert forced.body["data"] == {"a": "2"}
    assert [m["manager"] for m in forced.body["metadata"]["managedFields"]] == ["two"]


async def test_server_side_apply_requires_a_field_manager(devcluster_http: Raw) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nofm\n"
    reply = await devcluster_http.patch(f"{CM}/nofm", doc, content_type=APPLY)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "fieldManager"


async def test_in_process_store_api_matches_http(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    store = devcluster.store
    created = store.create(configmap("inproc"), namespace="default")
    assert (await devcluster_http.get(f"{CM}/inproc")).body == created
    created["data"] = {"z": "9"}
    store.update(created)
    patched = store.patch("configmaps", "inproc", {"data": {"y": "8"}}, namespace="default")
    assert patched["data"] == {"z": "9", "y": "8"}
    assert [
        o["metadata"]["name"]
        for o in store.list("cm", "default", field_selector="metadata.name=inproc")
    ] == ["inproc"]
    seen: list[str] = []
    unsubscribe = store.subscribe(lambda change: seen.append(change.type))
    store.delete("configmaps", "inproc", namespace="default")
    unsubscribe()
    assert seen == ["DELETED"]


async def test_apply_of_an_unchanged_list_with_server_defaults_is_no_conflict(
    devcluster_http: Raw,
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shared"},
        "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]},
    }
    path = "/api/v1/namespaces/default/services"
    created = await devcluster_http.post(f"{path}?fieldManager=creator", service)
    assert created.body["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: shared\nspec:\n  ports:\n  - port: {port}\n"
    same = await devcluster_http.patch(
        f"{path}/shared?fieldManager=applier", doc.format(port=80), content_type=APPLY
    )
    assert same.status == 200
    assert same.body["spec"] == created.body["spec"]
    managers = {m["manager"] for m in same.body["metadata"]["managedFields"]}
    assert managers == {"creator", "applier"}
    changed = await devcluster_http.patch(
        f"{path}/shared?fieldManager=applier", doc.format(port=81), content_type=APPLY
    )
    assert changed.status == 409
    assert 'conflict with "creator" using v1: .spec.ports' in changed.message


async def test_invalid_label_keys_and_values_are_422(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(CM, configmap("lbl", labels={"ok": "x" * 64}))
    assert reply.status == 422
    assert reply.message.startswith(
        'ConfigMap "lbl" is invalid: metadata.labels: Invalid value: "'
        + "x" * 64
        + '": must be no more than 63 characters'
    )
    reply = await devcluster_http.post(CM, configmap("ann", annotations={"bad key": "any value"}))
    assert reply.status == 422
    assert (
        'metadata.annotations: Invalid value: "bad key": name part must consist of' in reply.message
    )
    fine = await devcluster_http.post(
        CM, configmap("fine", labels={"app.kubernetes.io/name": "web"}, annotations={"a/b": "x y"})
    )
    assert fine.status == 201
