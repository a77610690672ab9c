"""Deletion: finalizers, preconditions, propagation policies, garbage collection, namespaces."""

from __future__ import annotations

from typing import Any

from coalmine.devcluster import DevCluster

from .dchelpers import CM, Raw, configmap


def owned_by(owner: dict[str, Any], name: str) -> dict[str, Any]:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    return configmap(name, ownerReferences=[ref])


async def test_finalizers_keep_the_object_until_removed(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("fin", finalizers=["example.com/hold"]))
    reply = await devcluster_http.delete(f"{CM}/fin")
    assert reply.status == 200
    assert reply.body["metadata"]["deletionTimestamp"]
    still = await devcluster_http.get(f"{CM}/fin")
    assert still.status == 200
    assert still.body["metadata"]["finalizers"] == ["example.com/hold"]
    adding = await devcluster_http.patch(
        f"{CM}/fin", {"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}}
    )
    assert adding.status == 422
    assert "no new finalizers can be added if the object is being deleted" in adding.message
    removed = await devcluster_http.patch(f"{CM}/fin", {"metadata": {"finalizers": None}})
    assert removed.status == 200
    assert (await devcluster_http.get(f"{CM}/fin")).status == 404


async def test_delete_preconditions_on_uid_and_resource_version(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(CM, configmap("pre"))).body
    wrong = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-it"}}
    reply = await devcluster_http.delete(f"{CM}/pre", wrong)
    assert reply.status == 409
    assert "Precondition failed: UID in precondition: not-it" in reply.message
    stale = {"preconditions": {"resourceVersion": "1"}}
    assert (await devcluster_http.delete(f"{CM}/pre", stale)).status == 409
    right = {"preconditions": {"uid": created["metadata"]["uid"]}}
    reply = await devcluster_http.delete(f"{CM}/pre", right)
    assert reply.status == 200
    assert reply.body["status"] == "Success"


async def test_background_deletion_collects_dependents(devcluster_http: Raw) -> None:
    owner = (await devcluster_http.post(CM, configmap("owner"))).body
    await devcluster_http.post(CM, owned_by(owner, "child"))
    await devcluster_http.delete(f"{CM}/owner")
    assert (await devcluster_http.get(f"{CM}/child")).status == 404


async def test_dependent_with_another_live_owner_survives(devcluster_http: Raw) -> None:
    first = (await devcluster_http.post(CM, configmap("first"))).body
    second = (await devcluster_http.post(CM, configmap("second"))).body
    body = owned_by(first, "shared")
    body["metadata"]["ownerReferences"].append(
        owned_by(second, "x")["metadata"]["ownerReferences"][0]
    )
    await devcluster_http.post(CM, body)
    await devcluster_http.delete(f"{CM}/first")
    shared = await devcluster_http.get(f"{CM}/shared")
    assert shared.status == 200
    assert [r["name"] for r in shared.body["metadata"]["ownerReferences"]] == ["second"]


async def test_orphan_deletion_keeps_dependents_without_the_reference(devcluster_http: Raw) -> None:
    owner = (await devcluster_http.post(CM, configmap("o"))).body
    await devcluster_http.post(CM, owned_by(owner, "kid"))
    await devcluster_http.delete(f"{CM}/o", {"propagationPolicy": "Orphan"})
    kid = await devcluster_http.get(f"{CM}/kid")
    assert kid.status == 200
    assert "ownerReferences" not in kid.body["metadata"]


async def test_foreground_deletion_waits_for_dependents(devcluster_http: Raw) -> None:
    owner = (await devcluster_http.post(CM, configmap("fg"))).body
    await devcluster_http.post(
        CM,
        {
            **owned_by(owner, "held"),
            "metadata": {**owned_by(owner, "held")["metadata"], "finalizers": ["example.com/hold"]},
        },
    )
    reply = await devcluster_http.delete(f"{CM}/fg?propagationPolicy=Foreground")
    assert reply.status == 200
    waiting = await devcluster_http.get(f"{CM}/fg")
    assert waiting.body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert waiting.body["metadata"]["deletionTimestamp"]
    held = await devcluster_http.get(f"{CM}/held")
    assert held.body["metadata"]["deletionTimestamp"]
    await devcluster_http.patch(f"{CM}/held", {"metadata": {"finalizers": None}})
    assert (await devcluster_http.get(f"{CM}/held")).status == 404
    assert (await devcluster_http.get(f"{CM}/fg")).status == 404


async def test_deleting_a_namespace_deletes_its_objects(devcluster_http: Raw) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    assert (await devcluster_http.post("/api/v1/namespaces", ns)).status == 201
    await devcluster_http.post("/api/v1/namespaces/team/configmaps", configmap("a"))
    await devcluster_http.post(
        "/api/v1/namespaces/team/configmaps", configmap("b", finalizers=["example.com/hold"])
    )
    reply = await devcluster_http.delete("/api/v1/namespaces/team")
    assert reply.body["status"]["phase"] == "Terminating"
    assert (await devcluster_http.get("/api/v1/namespaces/team/configmaps/a")).status == 404
    blocked = await devcluster_http.post("/api/v1/namespaces/team/configmaps", configmap("c"))
    assert blocked.status == 403
    assert "because it is being terminated" in blocked.message
    await devcluster_http.patch(
        "/api/v1/namespaces/team/configmaps/b", {"metadata": {"finalizers": None}}
    )
    assert (await devcluster_http.get("/api/v1/namespaces/team")).status == 404


async def test_deletecollection_deletes_matching_objects(devcluster_http: Raw) -> None:
    await devcluster_http.post(CM, configmap("dc1", labels={"batch": "x"}))
    await devcluster_http.post(CM, configmap("dc2", labels={"batch": "x"}))
    await devcluster_http.post(CM, configmap("dc3"))
    reply = await devcluster_http.delete(f"{CM}?labelSelector=batch%3Dx")
    assert reply.status == 200
    names = [o["metadata"]["name"] for o in (await devcluster_http.get(CM)).body["items"]]
    assert "dc3" in names
    assert "dc1" not in names
    assert "dc2" not in names


async def test_in_process_delete_runs_the_same_garbage_collection(devcluster: DevCluster) -> None:
    store = devcluster.store
    owner = store.create(configmap("p"), namespace="default")
    store.create(owned_by(owner, "q"), namespace="default")
    assert store.delete("configmaps", "p", namespace="default") is None
    assert store.list("configmaps", "default", field_selector="metadata.name=q") == []


async def test_system_namespaces_may_not_be_deleted(devcluster_http: Raw) -> None:
    reply = await devcluster_http.delete("/api/v1/namespaces/default")
    assert reply.status == 403
    assert reply.message == 'namespaces "default" is forbidden: this namespace may not be deleted'
