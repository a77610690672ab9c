"""deploy/: the Helm chart, the plain manifests and the kustomize base agree with each other and
with the code, and a Kubernetes API server (devcluster, through kubectl) accepts them."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from binaries import require_binary
from coalmine.controller.settings import FLAGS, environment_name
from coalmine.devcluster.testing import (
    DevClusterProcess,
    start_devcluster_process,
    stop_devcluster_process,
)
from coalmine.kube import kinds, permissions
from coalmine.routers import gatewayapi, smi

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "chart" / "coalmine"
MANIFESTS = DEPLOY / "manifests" / "coalmine.yaml"
NAMESPACE = "coalmine"
# Defined in kinds.py but read by no controller code (checked with grep when this was written).
NOT_CALLED = {("", "namespaces")}

Doc = dict[str, Any]
# Conditional objects of the chart the plain manifests leave out: off by default, or (the signing
# Secret) created by the operator when installing without Helm.
OFF_BY_DEFAULT = {"servicemonitor.yaml", "poddisruptionbudget.yaml", "webhook-signing-secret.yaml"}


def manifests() -> list[Doc]:
    return [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def values() -> Doc:
    loaded: Doc = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def literal_yaml(template: Path) -> Doc:
    """A template's plain-YAML part: lines with template actions dropped (the rules have none)."""
    lines = [line for line in template.read_text().splitlines() if "{{" not in line]
    loaded: Doc = yaml.safe_load("\n".join(lines))
    return loaded


def expected_env(flags: Doc, namespace: str) -> list[Doc]:
    """What templates/deployment.yaml renders: each non-empty flag as COALMINE_<FLAG>, sorted."""
    env = []
    for flag in sorted(flags):
        value = flags[flag]
        if flag == "leader-election-namespace" and value in ("", None):
            value = namespace
        if value not in ("", None):
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            env.append({"name": environment_name(flag), "value": shown})
    return env


def container_of(deployment: Doc) -> Doc:
    container: Doc = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def flag_env(deployment: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container_of(deployment).get("env", []) if "value" in e}


def test_the_chart_has_a_value_for_every_controller_flag() -> None:
    assert set(values()["flags"]) == {flag.name for flag in FLAGS}


def test_the_chart_ships_the_generated_crds() -> None:
    for crd in ("canaries.yaml", "metrictemplates.yaml", "alertproviders.yaml"):
        assert (CHART / "crds" / crd).read_text() == (DEPLOY / "crds" / crd).read_text(), crd


def test_the_manifests_have_the_charts_objects_rules_and_flags() -> None:
    docs = manifests()
    chart_kinds = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = template.read_text()
        if text.startswith("{{- if") and template.name in OFF_BY_DEFAULT:
            continue
        chart_kinds.extend(re.findall(r"^kind: (\w+)$", text, re.MULTILINE))
    assert sorted(chart_kinds) == sorted(d["kind"] for d in docs if d["kind"] != "Namespace")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("ClusterRole", "coalmine") in names
    assert ("Role", "coalmine-leader-election") in names
    for kind, file_name in (("ClusterRole", "clusterrole.yaml"), ("Role", "role.yaml")):
        assert (
            by_kind(docs, kind)[0]["rules"]
            == literal_yaml(CHART / "templates" / file_name)["rules"]
        )
    (deployment,) = by_kind(docs, "Deployment")
    container = container_of(deployment)
    assert container["args"] == ["controller"]
    assert container["env"] == expected_env(values()["flags"], NAMESPACE)
    assert deployment["spec"]["replicas"] == values()["replicaCount"] == 2
    assert container["resources"] == values()["resources"]


def _granted(rules: list[Doc]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_rbac_grants_exactly_the_verbs_the_code_declares() -> None:
    docs = manifests()
    assert by_kind(docs, "ClusterRole")[0]["rules"] == permissions.as_rules(
        permissions.CLUSTER_ROLE
    )
    assert by_kind(docs, "Role")[0]["rules"] == permissions.as_rules(
        permissions.LEADER_ELECTION_ROLE
    )


def test_rbac_covers_every_kind_the_controller_uses_and_no_other() -> None:
    granted = permissions.granted(permissions.CLUSTER_ROLE)
    granted.update(permissions.granted(permissions.LEADER_ELECTION_ROLE))
    used = {
        (kind.group, kind.plural) for kind in vars(kinds).values() if isinstance(kind, kinds.Kind)
    }
    used |= {(gatewayapi.GROUP, "httproutes"), (smi.GROUP, "trafficsplits")}
    used |= {("appmesh.k8s.aws", p) for p in ("virtualnodes", "virtualrouters", "virtualservices")}
    assert used - NOT_CALLED == {(group, r.split("/")[0]) for group, r in granted}
    for (group, resource), verbs in granted.items():
        assert "*" not in verbs
        assert "*" not in (group, resource)
        assert verbs <= {"get", "list", "watch", "create", "update", "patch", "delete"}
    # Never list or watch a Secret or ConfigMap: only the few named by canaries are read.
    assert granted[("", "secrets")] & {"list", "watch"} == set()
    assert granted[("", "configmaps")] & {"list", "watch"} == set()


def test_helm_renders_the_chart_as_the_plain_manifests(tmp_path: Path) -> None:
    helm = require_binary("helm")
    rendered = subprocess.run(
        [helm, "template", "coalmine", str(CHART), "--namespace", NAMESPACE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # The chart generates the webhook signing key; with the manifests the operator creates it.
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "Secret"]
    plain = [d for d in manifests() if d["kind"] != "Namespace"]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in plain
    )
    for kind in ("ClusterRole", "Role"):
        assert by_kind(docs, kind)[0]["rules"] == by_kind(plain, kind)[0]["rules"]
    rendered, written = by_kind(docs, "Deployment")[0], by_kind(plain, "Deployment")[0]
    assert container_of(rendered)["args"] == container_of(written)["args"]
    assert container_of(rendered)["env"] == container_of(written)["env"]
    assert container_of(rendered)["ports"] == container_of(written)["ports"]


SIGNING_SECRET = "coalmine-webhook-signing"


def signing_mount(deployment: Doc) -> tuple[str, str]:
    """(Secret name, mount path) of the webhook signing key in a Deployment."""
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    return volume["secret"]["secretName"], mount["mountPath"]


def test_the_controller_mounts_the_signing_key_where_its_flag_points() -> None:
    (deployment,) = by_kind(manifests(), "Deployment")
    secret, path = signing_mount(deployment)
    assert secret == SIGNING_SECRET
    assert flag_env(deployment)["COALMINE_WEBHOOK_SIGNING_KEY_FILE"] == f"{path}/key"
    assert values()["flags"]["webhook-signing-key-file"] == f"{path}/key"
    chart = (CHART / "templates" / "deployment.yaml").read_text()
    assert f"mountPath: {path}" in chart
    assert 'secretName: {{ include "coalmine.signingSecret" . }}' in chart
    template = (CHART / "templates" / "webhook-signing-secret.yaml").read_text()
    assert "randAlphaNum 64" in template
    assert "lookup" in template, "the key survives upgrades"
    assert f"kubectl -n coalmine create secret generic {SIGNING_SECRET}" in MANIFESTS.read_text()


def test_the_load_tester_mounts_the_same_key_and_is_given_it() -> None:
    docs = {
        d["kind"]: d
        for d in yaml.safe_load_all((DEPLOY / "loadtester" / "loadtester.yaml").read_text())
    }
    secret, path = signing_mount(docs["Deployment"])
    assert secret == SIGNING_SECRET
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert f"--signing-key-file={path}/key" in container["args"]


def rbac_stand_in_crds() -> list[Doc]:
    """devcluster does not serve RBAC: structural CRDs of the fields we write stand in, so the
    server still rejects a malformed rule or binding."""
    strings = {"type": "array", "items": {"type": "string"}}
    rule = {
        "type": "object",
        "required": ["verbs"],
        "properties": {
            "apiGroups": strings,
            "resources": strings,
            "resourceNames": strings,
            "verbs": strings,
        },
    }
    role_ref = {
        "type": "object",
        "required": ["apiGroup", "kind", "name"],
        "properties": {k: {"type": "string"} for k in ("apiGroup", "kind", "name")},
    }
    subject = {
        "type": "object",
        "required": ["kind", "name"],
        "properties": {k: {"type": "string"} for k in ("kind", "name", "namespace", "apiGroup")},
    }
    crds = []
    for kind, scope, properties, required in (
        ("ClusterRole", "Cluster", {"rules": {"type": "array", "items": rule}}, []),
        ("Role", "Namespaced", {"rules": {"type": "array", "items": rule}}, []),
        (
            "ClusterRoleBinding",
            "Cluster",
            {"roleRef": role_ref, "subjects": {"type": "array", "items": subject}},
            ["roleRef"],
        ),
        (
            "RoleBinding",
            "Namespaced",
            {"roleRef": role_ref, "subjects": {"type": "array", "items": subject}},
            ["roleRef"],
        ),
    ):
        plural = kind.lower() + "s"
        schema = {
            "type": "object",
            "required": required,
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                **properties,
            },
        }
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.rbac.authorization.k8s.io"},
                "spec": {
                    "group": "rbac.authorization.k8s.io",
                    "scope": scope,
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": schema},
                        }
                    ],
                },
            }
        )
    return crds


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevClusterProcess]:
    crds = tmp_path / "rbac-crds.yaml"
    crds.write_text(yaml.safe_dump_all(rbac_stand_in_crds()))
    server = start_devcluster_process(tmp_path / "kubeconfig", f"--load={crds}")
    try:
        yield server
    finally:
        stop_devcluster_process(server)


def kubectl(cluster: DevClusterProcess, tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [
            require_binary("kubectl"),
            f"--kubeconfig={cluster.kubeconfig_path}",
            f"--cache-dir={tmp_path / 'kube-cache'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_kubectl_applies_the_plain_manifests_and_the_kustomize_base(
    cluster: DevClusterProcess, tmp_path: Path
) -> None:
    kubectl(cluster, tmp_path, "apply", "-k", str(DEPLOY / "crds"))
    applied = kubectl(cluster, tmp_path, "apply", "-f", str(MANIFESTS))
    assert "deployment.apps/coalmine created" in applied
    assert "clusterrole.rbac.authorization.k8s.io/coalmine created" in applied
    # Server-side apply: the RBAC stand-ins are custom resources to devcluster, which (like a
    # real server) refuses the strategic merge patch a client-side re-apply would send.
    kustomized = kubectl(
        cluster, tmp_path, "apply", "--server-side", "-k", str(DEPLOY / "kustomize")
    )
    assert "customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app" in kustomized
    deployment = json.loads(
        kubectl(cluster, tmp_path, "-n", NAMESPACE, "get", "deployment", "coalmine", "-o", "json")
    )
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "coalmine"
    assert flag_env(deployment)["COALMINE_ENABLE_LEADER_ELECTION"] == "true"
    role = json.loads(kubectl(cluster, tmp_path, "get", "clusterrole", "coalmine", "-o", "json"))
    assert role["rules"] == by_kind(manifests(), "ClusterRole")[0]["rules"]
    kubectl(cluster, tmp_path, "get", "canaries", "-A")  # the CRDs are served


def test_kubectl_apply_f_of_the_manifest_directories_reads_only_manifests() -> None:
    """`kubectl apply -f deploy/manifests` (and deploy/crds) reads every *.yaml, *.yml, *.json:
    the kustomizations are named `Kustomization`, which kustomize reads and apply -f skips."""
    for directory in (DEPLOY / "manifests", DEPLOY / "crds"):
        assert (directory / "Kustomization").exists()
        for path in [
            *directory.glob("*.yaml"),
            *directory.glob("*.yml"),
            *directory.glob("*.json"),
        ]:
            for document in yaml.safe_load_all(path.read_text()):
                if document:
                    assert document["kind"] != "Kustomization", path


def test_no_image_is_unpinned() -> None:
    for path in DEPLOY.rglob("*.yaml"):
        for match in re.findall(r"image:\s*\"?([^\s\"{]+)", path.read_text()):
            assert ":" in match, f"{path}: {match}"
            assert not match.endswith(":latest"), f"{path}: {match}"


def test_the_dockerfile_runs_as_non_root_without_writing() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert 'ENTRYPOINT ["python", "-m", "coalmine"]' in text
    (deployment,) = by_kind(manifests(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "coalmine.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_the_dashboard_queries_only_metrics_the_controller_exports() -> None:
    from coalmine.controller.metrics import ControllerMetrics

    metrics = ControllerMetrics("istio")
    metrics.set_status("podinfo", "test", "Progressing")
    metrics.set_weights("podinfo", "test", 90, 10)
    metrics.set_metric_value("podinfo", "test", "request-success-rate", 99)
    metrics.observe_duration("podinfo", "test", 0.1)
    metrics.count_success("podinfo", "test", "canary", skipped=False)
    metrics.count_failure("podinfo", "test", "canary")
    metrics.set_canary_totals({"test": 1})
    metrics.set_canaries(
        [
            {
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {"targetRef": {"name": "podinfo"}},
                "status": {
                    "failedChecks": 1,
                    "conditions": [{"type": "Valid", "status": "False", "reason": "InvalidSpec"}],
                },
            }
        ]
    )
    metrics.count_webhook_failure("podinfo", "test", "acceptance", "rollout")
    metrics.watch_api_requests({"get canaries": 1})
    exported = set(re.findall(r"^([a-z_]+)(?:\{| )", metrics.exposition().decode(), re.MULTILINE))
    for query in dashboard_queries():
        for name in re.findall(r"\b((?:flagger|coalmine)_[a-z_]+)", query):
            assert name in exported, name


def test_the_dashboard_has_panels_for_refusals_checks_webhooks_and_primary_vs_canary() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "coalmine.json").read_text())
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    assert "coalmine_canary_refused" in panels["Refused canaries"]["targets"][0]["expr"]
    assert "reason" in panels["Refused canaries and why"]["targets"][0]["expr"]
    assert "coalmine_canary_failed_checks" in str(panels["Failed checks (run in progress)"])
    assert "coalmine_canary_webhook_failures_total" in str(panels["Webhook failures"])
    for title in (
        "Success rate: primary vs canary (Istio)",
        "Latency p99: primary vs canary (Istio)",
    ):
        legends = [target["legendFormat"] for target in panels[title]["targets"]]
        assert legends == ["primary", "canary"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = [
        {
            "record": f"coalmine:dashboard_{i}",
            "expr": query.replace("$__range", "1h")
            .replace("$namespace", ".*")
            .replace("$name", ".*"),
        }
        for i, query in enumerate(dashboard_queries())
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mesh_cluster_identity_may_touch_only_the_routing_objects() -> None:
    """deploy/mesh-cluster/rbac.yaml, applied in the cluster of --kubeconfig-service-mesh."""
    docs = [
        d for d in yaml.safe_load_all((ROOT / "deploy/mesh-cluster/rbac.yaml").read_text()) if d
    ]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    expected = permissions.as_rules(permissions.MESH_CLUSTER_ROLE)
    assert role["rules"] == expected, (
        "set the ClusterRole rules of deploy/mesh-cluster/rbac.yaml to:\n"
        + yaml.safe_dump(expected)
    )
    groups = {rule["apiGroups"][0] for rule in role["rules"]}
    assert groups
    assert not groups & {"", "apps", "flagger.app", "coordination.k8s.io", "networking.k8s.io"}
