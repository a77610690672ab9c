"""kubectl's client-side behaviour: what our docs tell users to run (apply of the manifests and the
CRDs, get, apply --server-side, create, scale, patch, rollout, delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fidelity_battery import case, configmap, deployment, service

ROOT = Path(__file__).resolve().parent.parent


def manifest(r: Any, name: str, *docs: Any) -> str:
    path = r.workdir / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


@case("kubectl: apply -k deploy/crds and -f deploy/manifests/coalmine.yaml")
async def _apply_coalmine(r: Any) -> None:
    # the manifests are cluster-wide (namespace coalmine, ClusterRoles): render them into this run
    text = (ROOT / "deploy" / "manifests" / "coalmine.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = r.ns
        elif doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] = r.unique("coalmine")
        if meta.get("namespace"):
            meta["namespace"] = r.ns
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = r.unique("coalmine")
        for subject in doc.get("subjects", []):
            subject["namespace"] = r.ns
    # the CRDs are cluster-wide: earlier cases may have created them
    await r.kubectl("apply", "-k", str(ROOT / "deploy" / "crds"), loose=True)
    await r.kubectl("apply", "-f", manifest(r, "coalmine.yaml", *docs))
    await r.kubectl("apply", "-f", manifest(r, "coalmine.yaml", *docs))
    await r.kubectl(
        "delete", "-f", manifest(r, "coalmine.yaml", *[d for d in docs if d["kind"] != "Namespace"])
    )


@case("kubectl: apply of a v1 List")
async def _apply_list(r: Any) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [configmap("a"), service("web")]}
    await r.kubectl("apply", "-f", manifest(r, "list.yaml", doc))
    await r.kubectl("get", "configmap", "a", "-o", "json")


@case("kubectl: apply, apply unchanged, apply changed")
async def _apply_twice(r: Any) -> None:
    path = manifest(r, "app.yaml", deployment("web"), service("web"))
    await r.kubectl("apply", "-f", path)
    await r.kubectl("apply", "-f", path)
    await r.kubectl("apply", "-f", manifest(r, "app.yaml", deployment("web", 3), service("web")))
    await r.kubectl("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}")


@case("kubectl: apply --server-side and a conflict")
async def _apply_server_side(r: Any) -> None:
    path = manifest(r, "cm.yaml", configmap("a", {"a": "1"}))
    await r.kubectl("apply", "--server-side", "-f", path)
    await r.kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        manifest(r, "cm2.yaml", configmap("a", {"a": "2"})),
    )
    await r.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=other",
        "-f",
        manifest(r, "cm2.yaml", configmap("a", {"a": "2"})),
    )
    await r.kubectl("get", "configmap", "a", "-o", "jsonpath={.data.a}")


@case("kubectl: apply of an invalid object")
async def _apply_invalid(r: Any) -> None:
    await r.kubectl("apply", "-f", manifest(r, "bad.yaml", configmap("Bad_Name")))


@case("kubectl: apply of an unknown field (server-side validation)")
async def _apply_unknown(r: Any) -> None:
    body = configmap("a")
    body["spec"] = {"x": 1}
    await r.kubectl("apply", "-f", manifest(r, "unknown.yaml", body))


@case("kubectl: get of tables")
async def _get_tables(r: Any) -> None:
    await r.kubectl(
        "apply", "-f", manifest(r, "app.yaml", configmap("a", {"a": "1", "b": "2"}), service("web"))
    )
    await r.kubectl("get", "configmaps", "a")
    await r.kubectl("get", "services", "web")
    await r.kubectl("get", "service", "missing")


@case("kubectl: create generators")
async def _create(r: Any) -> None:
    await r.kubectl("create", "configmap", "settings", "--from-literal=a=b")
    await r.kubectl("create", "secret", "generic", "token", "--from-literal=k=v")
    await r.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    await r.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080")
    await r.kubectl("get", "service", "web", "-o", "jsonpath={.spec.ports}")


@case("kubectl: scale, patch, annotate, label")
async def _scale_patch(r: Any) -> None:
    await r.kubectl("apply", "-f", manifest(r, "app.yaml", deployment("web")))
    await r.kubectl("scale", "deployment", "web", "--replicas=3")
    await r.kubectl(
        "patch",
        "deployment",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}',
    )
    await r.kubectl("annotate", "deployment", "web", "example.com/note=x")
    await r.kubectl("label", "deployment", "web", "tier=web")
    await r.kubectl(
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.labels.tier}",
    )


@case("kubectl: api-resources of the groups coalmine uses")
async def _api_resources(r: Any) -> None:
    for group in ("rbac.authorization.k8s.io", "discovery.k8s.io", "apps", "coordination.k8s.io"):
        await r.kubectl("api-resources", f"--api-group={group}", "-o", "name")


@case("kubectl: delete and get of a missing object")
async def _delete(r: Any) -> None:
    await r.kubectl("create", "configmap", "a", "--from-literal=a=b")
    await r.kubectl("delete", "configmap", "a")
    await r.kubectl("delete", "configmap", "a")
    await r.kubectl("delete", "configmap", "a", "--ignore-not-found")


@case("kubectl: get of a custom resource by short name and category")
async def _get_canaries(r: Any) -> None:
    await r.kubectl("apply", "-k", str(ROOT / "deploy" / "crds"), loose=True)
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }
    await r.kubectl("apply", "-f", manifest(r, "canary.yaml", canary))
    await r.kubectl("get", "canaries")
    await r.kubectl("get", "canary", "podinfo", "-o", "jsonpath={.spec.analysis.stepWeight}")
    await r.kubectl("annotate", "canary", "podinfo", "example.com/x=y")


@case("kubectl: apply of RBAC kinds")
async def _apply_rbac(r: Any) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    await r.kubectl("apply", "-f", manifest(r, "role.yaml", role))
    await r.kubectl("get", "roles", "-o", "name")


@case("kubectl: diff")
async def _diff(r: Any) -> None:
    path = manifest(r, "cm.yaml", configmap("a", {"a": "1"}))
    await r.kubectl("apply", "-f", path)
    await r.kubectl("diff", "-f", path)
