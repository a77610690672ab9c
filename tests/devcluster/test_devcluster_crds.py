"""CustomResourceDefinitions: serving, discovery, schema validation, pruning, defaults, deletion."""

from __future__ import annotations

import yaml

from coalmine.devcluster import DevCluster

from .dchelpers import JSON_PATCH, STRATEGIC, WIDGET_CRD, WIDGETS, Raw, widget

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def install(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(CRDS, WIDGET_CRD)
    assert reply.status == 201, reply.body


async def test_created_crd_is_established_and_discoverable(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    crd = (await devcluster_http.get(f"{CRDS}/widgets.example.com")).body
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    groups = (await devcluster_http.get("/apis")).body["groups"]
    group = next(g for g in groups if g["name"] == "example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert {v["version"] for v in group["versions"]} == {"v1", "v1beta1"}
    resources = (await devcluster_http.get("/apis/example.com/v1")).body["resources"]
    by_name = {r["name"]: r for r in resources}
    assert by_name["widgets"]["kind"] == "Widget"
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["categories"] == ["all"]
    assert "widgets/status" in by_name
    assert "widgets/scale" in by_name


async def test_custom_resource_is_pruned_and_defaulted(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    reply = await devcluster_http.post(WIDGETS, widget("w", junk=True, extra={"kept": 1}))
    assert reply.status == 201
    assert reply.body["spec"] == {"size": 3, "replicas": 1, "color": "red", "extra": {"kept": 1}}


async def test_invalid_custom_resource_is_422_with_field_causes(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    reply = await devcluster_http.post(WIDGETS, widget("bad", size=0, color="green"))
    assert reply.status == 422
    assert reply.message.startswith('Widget.example.com "bad" is invalid: [')
    fields = {c["field"]: c["reason"] for c in reply.body["details"]["causes"]}
    assert fields == {"spec.size": "FieldValueInvalid", "spec.color": "FieldValueNotSupported"}
    assert reply.body["details"]["group"] == "example.com"
    assert reply.body["details"]["kind"] == "Widget"


async def test_not_found_custom_resource_names_the_group(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    reply = await devcluster_http.get(f"{WIDGETS}/x")
    assert reply.message == 'widgets.example.com "x" not found'


async def test_every_served_version_reads_the_same_objects(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("both"))
    beta = await devcluster_http.get("/apis/example.com/v1beta1/namespaces/default/widgets/both")
    assert beta.status == 200
    assert beta.body["apiVersion"] == "example.com/v1beta1"
    assert beta.body["spec"]["size"] == 3


async def test_status_subresource_of_custom_resource(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("st"))
    ignored = await devcluster_http.patch(f"{WIDGETS}/st", {"status": {"replicas": 4}})
    assert "status" not in ignored.body
    written = await devcluster_http.patch(
        f"{WIDGETS}/st/status", {"status": {"replicas": 4}, "spec": {"size": 9}}
    )
    assert written.body["status"] == {"replicas": 4}
    assert written.body["spec"]["size"] == 3
    assert written.body["metadata"]["generation"] == 1


async def test_scale_subresource_of_custom_resource(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("sc"))
    await devcluster_http.patch(
        f"{WIDGETS}/sc/status", {"status": {"replicas": 1, "selector": "app=sc"}}
    )
    scale = await devcluster_http.get(f"{WIDGETS}/sc/scale")
    assert scale.body["spec"] == {"replicas": 1}
    assert scale.body["status"] == {"replicas": 1, "selector": "app=sc"}
    reply = await devcluster_http.patch(f"{WIDGETS}/sc/scale", {"spec": {"replicas": 3}})
    assert reply.status == 200
    assert (await devcluster_http.get(f"{WIDGETS}/sc")).body["spec"]["replicas"] == 3


async def test_strategic_merge_patch_on_custom_resource_is_415(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("smp"))
    reply = await devcluster_http.patch(
        f"{WIDGETS}/smp", {"spec": {"size": 4}}, content_type=STRATEGIC
    )
    assert reply.status == 415


async def test_json_patch_result_is_validated_against_the_schema(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("jp"))
    ops = [{"op": "replace", "path": "/spec/size", "value": "big"}]
    reply = await devcluster_http.patch(f"{WIDGETS}/jp", ops, content_type=JSON_PATCH)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "spec.size"


async def test_deleting_the_crd_deletes_its_objects_and_stops_serving(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("gone"))
    assert (await devcluster_http.delete(f"{CRDS}/widgets.example.com")).status == 200
    assert (await devcluster_http.get(WIDGETS)).status == 404
    assert "example.com" not in {
        g["name"] for g in (await devcluster_http.get("/apis")).body["groups"]
    }
    await install(devcluster_http)
    assert (await devcluster_http.get(WIDGETS)).body["items"] == []


async def test_crd_name_must_be_plural_dot_group(devcluster_http: Raw) -> None:
    body = {**WIDGET_CRD, "metadata": {"name": "wrong.example.com"}}
    reply = await devcluster_http.post(CRDS, body)
    assert reply.status == 422
    assert (
        'metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group'
        in reply.message
    )


async def test_cluster_scoped_crd_serves_cluster_paths(devcluster_http: Raw) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Gizmo", "plural": "gizmos"},
            "scope": "Cluster",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    assert (await devcluster_http.post(CRDS, crd)).status == 201
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g"},
        "anything": 1,
    }
    reply = await devcluster_http.post("/apis/example.com/v1/gizmos", body)
    assert reply.status == 201
    assert "namespace" not in reply.body["metadata"]
    assert reply.body["anything"] == 1


async def test_status_writes_ignore_metadata_changes(devcluster_http: Raw) -> None:
    await install(devcluster_http)
    await devcluster_http.post(WIDGETS, widget("meta"))
    reply = await devcluster_http.patch(
        f"{WIDGETS}/meta/status", {"metadata": {"labels": {"x": "y"}}, "status": {"replicas": 2}}
    )
    assert reply.status == 200
    assert reply.body["status"] == {"replicas": 2}
    assert "labels" not in reply.body["metadata"]


async def test_apply_manifests_takes_yaml_with_crds_after_their_objects(
    devcluster: DevCluster,
) -> None:
    text = yaml.safe_dump_all(
        [
            widget("from-yaml"),
            WIDGET_CRD,
            {"apiVersion": "v1", "kind": "List", "items": [widget("in-list")]},
        ]
    )
    applied = devcluster.apply_manifests(text)
    assert [doc["kind"] for doc in applied] == ["CustomResourceDefinition", "Widget", "Widget"]
    names = [w["metadata"]["name"] for w in devcluster.store.list("widgets", "default")]
    assert names == ["from-yaml", "in-list"]
    again = devcluster.apply_manifests([widget("from-yaml", size=5)])
    assert again[0]["spec"]["size"] == 5
