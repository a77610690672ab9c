"""The Helm chart as users install it: linted, rendered, and installed into the real control plane,
where kube-controller-manager rolls out the controller's Deployment and kwok runs its Pods."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from binaries import require_binary
from clusters import RealClusterProcess

CHART = Path(__file__).resolve().parents[2] / "deploy" / "chart" / "coalmine"


def helm(cluster: RealClusterProcess | None, *args: str) -> subprocess.CompletedProcess[str]:
    kube = [f"--kubeconfig={cluster.kubeconfig_path}"] if cluster else []
    return subprocess.run(
        [require_binary("helm"), *kube, *args], capture_output=True, text=True, timeout=300
    )


def test_helm_lint_finds_no_error_in_the_chart() -> None:
    result = helm(None, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_the_chart_installs_and_its_deployment_becomes_available(
    realcluster_session: tuple[RealClusterProcess, Path],
) -> None:
    cluster, _ = realcluster_session
    release, namespace = "chart-test", "coalmine-chart"
    installed = helm(
        cluster, "install", release, str(CHART), f"--namespace={namespace}", "--create-namespace",
        "--wait", "--timeout=180s",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    deployment = json.loads(
        cluster.kubectl("get", "deployment", release, f"--namespace={namespace}", "-o", "json")
    )
    conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert conditions["Available"] == "True", deployment["status"]
    assert deployment["status"]["readyReplicas"] == deployment["spec"]["replicas"]
    pods = json.loads(cluster.kubectl("get", "pods", f"--namespace={namespace}", "-o", "json"))
    assert {pod["spec"]["serviceAccountName"] for pod in pods["items"]} == {release}
    # The chart's ClusterRole is bound to the ServiceAccount the Pods run as.
    binding = json.loads(cluster.kubectl("get", "clusterrolebinding", release, "-o", "json"))
    assert binding["roleRef"]["name"] == release
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": release, "namespace": namespace}
    ]
    uninstalled = helm(cluster, "uninstall", release, f"--namespace={namespace}", "--wait")
    assert uninstalled.returncode == 0, uninstalled.stderr


FLAGGER_VALUES = Path(__file__).with_name("flagger-values.yaml")
DEPLOY = CHART.parents[1]


def test_the_chart_installs_with_a_flagger_values_file(
    realcluster_session: tuple[RealClusterProcess, Path],
) -> None:
    cluster, _ = realcluster_session
    release, namespace = "flagger", "flagger-values"
    installed = helm(
        cluster, "install", release, str(CHART), f"--namespace={namespace}", "--create-namespace",
        "-f", str(FLAGGER_VALUES), "--set", "podPriorityClassName=",
        "--wait", "--timeout=180s",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    deployment = json.loads(
        cluster.kubectl("get", "deployment", release, f"--namespace={namespace}", "-o", "json")
    )
    assert deployment["status"]["readyReplicas"] == 3  # leaderElection.replicaCount
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["COALMINE_MESH_PROVIDER"] == "gatewayapi:v1"
    assert container["ports"][0]["containerPort"] == 9090
    account = json.loads(
        cluster.kubectl(
            "get", "serviceaccount", "flagger", f"--namespace={namespace}", "-o", "json"
        )
    )
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("/flagger")
    budget = json.loads(
        cluster.kubectl("get", "pdb", release, f"--namespace={namespace}", "-o", "json")
    )
    assert budget["spec"]["minAvailable"] == 1
    uninstalled = helm(cluster, "uninstall", release, f"--namespace={namespace}", "--wait")
    assert uninstalled.returncode == 0, uninstalled.stderr


def test_the_kustomize_base_applies_and_the_manifest_directory_applies_with_f(
    realcluster_session: tuple[RealClusterProcess, Path],
) -> None:
    cluster, _ = realcluster_session
    # `kubectl apply -f` of the directories reads the manifests and not their kustomizations.
    applied = cluster.kubectl(
        "apply", "--server-side", "-f", str(DEPLOY / "crds"), "-f", str(DEPLOY / "manifests")
    )
    assert "customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app" in applied
    assert "deployment.apps/coalmine serverside-applied" in applied
    kustomized = cluster.kubectl("apply", "--server-side", "-k", str(DEPLOY / "kustomize"))
    assert "deployment.apps/coalmine serverside-applied" in kustomized
    deployment = json.loads(
        cluster.kubectl("get", "deployment", "coalmine", "--namespace=coalmine", "-o", "json")
    )
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "coalmine"
    # Only the Deployment goes: the `coalmine` namespace holds the ServiceAccount whose token every
    # real-tier controller of this session uses (deleting it revokes that token for later tests).
    cluster.kubectl("delete", "deployment", "coalmine", "--namespace=coalmine", "--wait=false")
