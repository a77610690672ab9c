"""Discovery, lists (selectors, pagination, cluster-wide), tables, events views, auth and faults."""

from __future__ import annotations

import json

import aiohttp
import pytest

from coalmine.devcluster import DevCluster

from .dchelpers import CM, DEPLOY, Raw, configmap, deployment

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def test_version_and_core_discovery(devcluster_http: Raw) -> None:
    for path in ("/version", "/version/"):
        reply = await devcluster_http.get(path)
        assert reply.body["major"] == "1"
        assert reply.body["gitVersion"].startswith("v1.")
    assert (await devcluster_http.get("/api")).body["versions"] == ["v1"]
    core = {r["name"]: r for r in (await devcluster_http.get("/api/v1")).body["resources"]}
    for name in (
        "namespaces",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "pods",
        "events",
    ):
        assert name in core
    assert core["pods"]["verbs"] == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert core["services"]["shortNames"] == ["svc"]
    assert core["namespaces"]["namespaced"] is False


@pytest.mark.parametrize(
    ("group_version", "plural"),
    [
        ("apps/v1", "deployments"),
        ("apps/v1", "daemonsets"),
        ("apps/v1", "replicasets"),
        ("autoscaling/v2", "horizontalpodautoscalers"),
        ("coordination.k8s.io/v1", "leases"),
        ("networking.k8s.io/v1", "ingresses"),
        ("events.k8s.io/v1", "events"),
        ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
    ],
)
async def test_group_discovery_lists_built_in_resources(
    devcluster_http: Raw, group_version: str, plural: str
) -> None:
    reply = await devcluster_http.get(f"/apis/{group_version}")
    assert reply.body["kind"] == "APIResourceList"
    assert plural in {r["name"] for r in reply.body["resources"]}


async def test_default_namespaces_exist(devcluster_http: Raw) -> None:
    names = {
        n["metadata"]["name"]
        for n in (await devcluster_http.get("/api/v1/namespaces")).body["items"]
    }
    assert {"default", "kube-system"} <= names


async def test_list_has_kind_version_and_numeric_resource_version(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("l1"))
    reply = await devcluster_http.get(CM)
    assert reply.body["kind"] == "ConfigMapList"
    assert reply.body["apiVersion"] == "v1"
    assert int(reply.body["metadata"]["resourceVersion"]) > 0


async def test_list_filters_by_label_and_field_selectors(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("x1", labels={"app": "a", "tier": "web"}))
    await devcluster_http.post(CM, configmap("x2", labels={"app": "b"}))
    await devcluster_http.post(CM, configmap("x3", labels={"app": "a"}))

    async def names(query: str) -> list[str]:
        return [
            o["metadata"]["name"]
            for o in (await devcluster_http.get(f"{CM}?{query}")).body["items"]
        ]

    assert await names("labelSelector=app%3Da") == ["x1", "x3"]
    assert await names("labelSelector=app%20in%20(a,b),!tier") == ["x2", "x3"]
    assert await names("fieldSelector=metadata.name%3Dx2") == ["x2"]
    assert await names("fieldSelector=metadata.name!%3Dx2&labelSelector=app") == ["x1", "x3"]
    bad = await devcluster_http.get(f"{CM}?labelSelector=%3D%3D")
    assert bad.status == 400


async def test_pagination_with_limit_and_continue(devcluster_http: Raw) -> None:
    for index in range(5):
        await devcluster_http.post(CM, configmap(f"page-{index}"))
    seen: list[str] = []
    query = "limit=2&labelSelector="
    token = ""
    while True:
        reply = await devcluster_http.get(f"{CM}?{query}" + (f"&continue={token}" if token else ""))
        seen += [o["metadata"]["name"] for o in reply.body["items"]]
        token = reply.body["metadata"].get("continue", "")
        if not token:
            break
        assert reply.body["metadata"]["remainingItemCount"] > 0
    assert seen == [f"page-{i}" for i in range(5)]


async def test_cluster_wide_list_of_a_namespaced_kind(devcluster_http: Raw) -> None:
    await devcluster_http.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
    )
    await devcluster_http.post(CM, configmap("here"))
    await devcluster_http.post("/api/v1/namespaces/other/configmaps", configmap("there"))
    reply = await devcluster_http.get("/api/v1/configmaps")
    found = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in reply.body["items"]}
    assert {("default", "here"), ("other", "there")} <= found
    filtered = await devcluster_http.get(
        "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother"
    )
    assert [o["metadata"]["name"] for o in filtered.body["items"]] == ["there"]


async def test_table_output_for_kubectl(devcluster_http: Raw) -> None:
    await devcluster_http.post(DEPLOY, deployment("tbl", replicas=2))
    reply = await devcluster_http.get(DEPLOY, headers={"Accept": TABLE})
    assert reply.body["kind"] == "Table"
    columns = [c["name"] for c in reply.body["columnDefinitions"]]
    assert columns == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    row = reply.body["rows"][0]
    assert row["cells"][0] == "tbl"
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_core_and_events_v1_are_two_views_of_one_store(devcluster_http: Raw) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
        "reason": "Synced",
        "message": "all good",
        "type": "Normal",
    }
    assert (await devcluster_http.post("/api/v1/namespaces/default/events", event)).status == 201
    new_style = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.2"},
        "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
        "reason": "Rolled",
        "note": "rolled out",
        "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "action": "Rollout",
        "reportingController": "coalmine",
        "reportingInstance": "coalmine-1",
    }
    assert (
        await devcluster_http.post("/apis/events.k8s.io/v1/namespaces/default/events", new_style)
    ).status == 201
    core = (
        await devcluster_http.get(
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb"
        )
    ).body
    assert {(e["metadata"]["name"], e["message"]) for e in core["items"]} == {
        ("web.1", "all good"),
        ("web.2", "rolled out"),
    }
    view = (
        await devcluster_http.get("/apis/events.k8s.io/v1/namespaces/default/events/web.1")
    ).body
    assert view["apiVersion"] == "events.k8s.io/v1"
    assert view["note"] == "all good"
    assert view["regarding"]["name"] == "web"


async def test_unknown_paths_are_404_as_kube_apiserver_words_them(devcluster_http: Raw) -> None:
    for path in ("/api/v1/namespaces/default/nothings", "/api/v2"):
        reply = await devcluster_http.get(path)
        assert reply.status == 404
        assert reply.body["kind"] == "Status"
    for path in ("/apis/nope.io/v1", "/apis/apps/v9/deployments"):
        reply = await devcluster_http.get(path)
        assert reply.status == 404
        assert reply.body == "404 page not found\n", "outside every group/version: plain text"


async def test_bearer_token_is_required_when_configured() -> None:
    async with (
        DevCluster(token="s3cret", simulator=False) as cluster,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{cluster.url}/api/v1/namespaces") as missing:
            assert missing.status == 401
            assert (await missing.json())["reason"] == "Unauthorized"
        async with session.get(
            f"{cluster.url}/api/v1/namespaces", headers={"Authorization": "Bearer nope"}
        ) as wrong:
            assert wrong.status == 401
        async with session.get(
            f"{cluster.url}/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"}
        ) as right:
            assert right.status == 200
        assert "token: s3cret" in cluster.kubeconfig_path.read_text()


async def test_injected_error_fails_the_next_matching_requests(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    await devcluster_http.post(CM, configmap("f"))
    devcluster.faults.inject_error(
        503, "ServiceUnavailable", "try later", verb="patch", resource="configmaps", count=2
    )
    for _ in range(2):
        reply = await devcluster_http.patch(f"{CM}/f", {"data": {"b": "1"}})
        assert reply.status == 503
        assert reply.body["reason"] == "ServiceUnavailable"
        assert reply.message == "try later"
    assert (await devcluster_http.get(f"{CM}/f")).status == 200
    assert (await devcluster_http.patch(f"{CM}/f", {"data": {"b": "1"}})).status == 200


async def test_faults_over_http(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("h"))
    rule = {
        "type": "error",
        "code": 500,
        "reason": "InternalError",
        "message": "boom",
        "verb": "get",
        "resource": "configmaps",
        "name": "h",
        "count": None,
    }
    assert (await devcluster_http.post("/devcluster/faults", rule)).status == 201
    latency = {"type": "latency", "seconds": 0.01, "resource": "configmaps"}
    assert (await devcluster_http.post("/devcluster/faults", latency)).status == 201
    assert len((await devcluster_http.get("/devcluster/faults")).body["rules"]) == 2
    assert (await devcluster_http.get(f"{CM}/h")).status == 500
    assert (await devcluster_http.get(f"{CM}/h")).status == 500
    assert (await devcluster_http.delete("/devcluster/faults")).status == 200
    assert (await devcluster_http.get(f"{CM}/h")).status == 200
    bad = await devcluster_http.post("/devcluster/faults", {"type": "nonsense"})
    assert bad.status == 400


async def test_a_fault_rate_fails_only_a_share_of_matching_requests_and_counts_them(
    devcluster_http: Raw,
) -> None:
    await devcluster_http.post(CM, configmap("r"))
    rule = {"type": "error", "verb": "get", "resource": "configmaps", "count": None, "rate": 0.5}
    assert (await devcluster_http.post("/devcluster/faults", rule)).status == 201
    statuses = [(await devcluster_http.get(f"{CM}/r")).status for _ in range(100)]
    failed = statuses.count(500)
    assert 0 < failed < 100
    assert failed + statuses.count(200) == 100
    rules = (await devcluster_http.get("/devcluster/faults")).body["rules"]
    assert rules[0]["injected"] == failed
    assert rules[0]["count"] is None


async def test_a_spared_request_uses_up_no_count_and_rate_zero_never_fails(
    devcluster: DevCluster, devcluster_http: Raw
) -> None:
    await devcluster_http.post(CM, configmap("z"))
    never = devcluster.faults.inject_error(verb="get", resource="configmaps", count=3, rate=0.0)
    assert all([(await devcluster_http.get(f"{CM}/z")).status == 200 for _ in range(20)])
    assert (never.count, never.injected) == (3, 0)


async def test_a_fault_rate_outside_zero_to_one_is_refused(devcluster_http: Raw) -> None:
    for rate in (1.5, -0.1, "often"):
        reply = await devcluster_http.post("/devcluster/faults", {"type": "error", "rate": rate})
        assert reply.status == 400
        assert "rate" in reply.message or "often" in reply.message
    assert (await devcluster_http.get("/devcluster/faults")).body["rules"] == []


async def test_unsupported_protobuf_body_is_415_saying_to_send_json(devcluster_http: Raw) -> None:
    # a k8s protobuf envelope whose type is a kind devcluster does not decode (batch/v1 Job)
    type_meta = b"\x0a\x08batch/v1\x12\x03Job"
    body = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12\x00"
    reply = await devcluster_http.post(
        "/apis/apps/v1/namespaces/default/deployments",
        body,
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert reply.status == 415
    assert "send JSON instead" in reply.message


async def test_dry_run_create_of_a_service_keeps_nothing(devcluster_http: Raw) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dry"},
        "spec": {"clusterIP": "10.96.9.9", "ports": [{"port": 80}]},
    }
    reply = await devcluster_http.post("/api/v1/namespaces/default/services?dryRun=All", service)
    assert reply.status == 201
    assert reply.body["spec"]["clusterIP"] == "10.96.9.9"
    assert (await devcluster_http.get("/api/v1/namespaces/default/services/dry")).status == 404
    real = await devcluster_http.post("/api/v1/namespaces/default/services", service)
    assert real.status == 201


async def test_watch_with_table_accept_streams_table_rows(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("tw"))
    response = await devcluster_http.session.get(
        f"{devcluster_http.url}{CM}?watch=1&resourceVersion=0", headers={"Accept": TABLE}
    )
    line = await response.content.readline()
    response.close()
    event = json.loads(line)
    assert event["type"] == "ADDED"
    assert event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "tw"


async def test_metadata_only_clients_get_partial_object_metadata(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("meta-only", labels={"k": "v"}))
    accept = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    listed = await devcluster_http.get(CM, headers=accept)
    assert listed.body["kind"] == "PartialObjectMetadataList"
    item = next(i for i in listed.body["items"] if i["metadata"]["name"] == "meta-only")
    assert item["kind"] == "PartialObjectMetadata"
    assert item["metadata"]["labels"] == {"k": "v"}
    assert "data" not in item
    single = await devcluster_http.get(
        f"{CM}/meta-only",
        headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
    )
    assert single.body["kind"] == "PartialObjectMetadata"
