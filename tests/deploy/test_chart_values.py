"""The chart with a values file written for Flagger's chart, and the kustomize base patched by name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from binaries import require_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "chart" / "coalmine"
FLAGGER_VALUES = Path(__file__).with_name("flagger-values.yaml")

Doc = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("helm"), *args], capture_output=True, text=True, timeout=120
    )


def rendered(*args: str) -> dict[str, Doc]:
    result = helm("template", "flagger", str(CHART), "--namespace", "flagger-system", *args)
    assert result.returncode == 0, result.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}


def env_of(deployment: Doc) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_helm_lint_strict_accepts_a_flagger_values_file() -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(FLAGGER_VALUES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_flagger_values_file_maps_to_the_controllers_flags() -> None:
    docs = rendered("-f", str(FLAGGER_VALUES))
    env = env_of(docs["Deployment"])
    assert env["COALMINE_MESH_PROVIDER"] == "gatewayapi:v1"
    assert env["COALMINE_METRICS_SERVER"] == "http://prometheus.monitoring:9090"
    assert env["COALMINE_SELECTOR_LABELS"] == (
        "app,name,app.kubernetes.io/name,app.kubernetes.io/instance"
    )
    assert env["COALMINE_LOG_LEVEL"] == "debug"
    assert env["COALMINE_CLUSTER_NAME"] == "prod-eu"
    assert env["COALMINE_INCLUDE_LABEL_PREFIX"] == "team"
    assert env["COALMINE_ENABLE_CONFIG_TRACKING"] == "false"
    assert env["COALMINE_THREADINESS"] == "4"
    assert env["COALMINE_KUBECONFIG_QPS"] == "50"
    assert env["COALMINE_KUBECONFIG_BURST"] == "100"
    assert env["COALMINE_SLACK_URL"] == "https://hooks.slack.com/services/T000/B000/XXXX"
    assert env["COALMINE_SLACK_USER"] == "flagger"
    assert env["COALMINE_SLACK_CHANNEL"] == "releases"
    assert env["COALMINE_SLACK_PROXY_URL"] == "http://proxy.internal:3128"
    assert "COALMINE_MSTEAMS_URL" not in env  # empty in the file: left out
    assert env["COALMINE_ENABLE_LEADER_ELECTION"] == "true"
    assert env["COALMINE_LEADER_ELECTION_NAMESPACE"] == "flagger-system"
    assert docs["Deployment"]["spec"]["replicas"] == 3


def test_a_flagger_values_file_sets_pod_account_and_disruption_settings() -> None:
    docs = rendered("-f", str(FLAGGER_VALUES))
    template = docs["Deployment"]["spec"]["template"]
    pod = template["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["serviceAccountName"] == "flagger"
    assert template["metadata"]["labels"]["team"] == "platform"
    assert template["metadata"]["annotations"]["appmesh.k8s.aws/sidecarInjectorWebhook"] == (
        "disabled"
    )
    # The container port (and the scrape annotation) follow the listen address.
    assert pod["containers"][0]["ports"] == [{"name": "http-metrics", "containerPort": 9090}]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    account = docs["ServiceAccount"]
    assert account["metadata"]["name"] == "flagger"
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/flagger"
    }
    assert docs["ClusterRoleBinding"]["subjects"][0]["name"] == "flagger"
    assert docs["RoleBinding"]["subjects"][0]["name"] == "flagger"
    budget = docs["PodDisruptionBudget"]
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "coalmine",
        "app.kubernetes.io/instance": "flagger",
    }


def test_image_pull_secrets_and_an_existing_service_account() -> None:
    docs = rendered(
        "--set",
        "imagePullSecrets[0].name=a",
        "--set",
        "serviceAccount.create=false",
        "--set",
        "serviceAccount.name=workload-identity",
    )
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "a"}]
    assert pod["serviceAccountName"] == "workload-identity"
    assert "ServiceAccount" not in docs
    assert "PodDisruptionBudget" not in docs


def test_an_overlay_patches_a_flag_by_name(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(ROOT / "deploy" / "kustomize", overlay)  # kustomize wants it relative
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "patches": [
                    {
                        "patch": yaml.safe_dump(
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "metadata": {"name": "coalmine", "namespace": "coalmine"},
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [
                                                {
                                                    "name": "coalmine",
                                                    "env": [
                                                        {
                                                            "name": "COALMINE_MESH_PROVIDER",
                                                            "value": "gatewayapi:v1",
                                                        }
                                                    ],
                                                }
                                            ]
                                        }
                                    }
                                },
                            }
                        )
                    }
                ],
            }
        )
    )
    result = subprocess.run(
        [require_binary("kubectl"), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    env = env_of(docs["Deployment"])
    assert env["COALMINE_MESH_PROVIDER"] == "gatewayapi:v1"
    assert env["COALMINE_METRICS_SERVER"] == "http://prometheus:9090"  # the others untouched
    assert len(env) == 6


def test_the_controller_reads_the_rendered_environment_as_its_flags() -> None:
    from coalmine.controller.settings import parse_settings

    env = env_of(rendered("-f", str(FLAGGER_VALUES))["Deployment"])
    settings = parse_settings([], environ=env)
    assert settings.mesh_provider == "gatewayapi:v1"
    assert settings.listen_address == ":9090"
    assert settings.enable_config_tracking is False
    assert settings.kubeconfig_qps == 50
    assert settings.threadiness == 4
    assert settings.slack_proxy_url == "http://proxy.internal:3128"
    assert settings.leader_election_namespace == "flagger-system"


def test_flaggers_controlplane_kubeconfig_values_mount_the_secret_for_the_mesh_flag() -> None:
    """Flagger's `controlplane.kubeconfig.{secretName,key}`: the Secret at /tmp/controlplane,
    and its key given to --kubeconfig-service-mesh."""
    docs = rendered(
        "--set",
        "controlplane.kubeconfig.secretName=mesh-kubeconfig",
        "--set",
        "controlplane.kubeconfig.key=cluster-2",
    )
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    assert env_of(docs["Deployment"])["COALMINE_KUBECONFIG_SERVICE_MESH"] == (
        "/tmp/controlplane/cluster-2"
    )
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["controlplane-kubeconfig"]["mountPath"] == "/tmp/controlplane"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["controlplane-kubeconfig"]["secret"]["secretName"] == "mesh-kubeconfig"
    without = env_of(rendered()["Deployment"])
    assert "COALMINE_KUBECONFIG_SERVICE_MESH" not in without
    older = rendered(
        "--set", "istio.kubeconfig.secretName=istio-host", "--set", "istio.kubeconfig.key=k"
    )
    assert env_of(older["Deployment"])["COALMINE_KUBECONFIG_SERVICE_MESH"] == "/tmp/controlplane/k"
