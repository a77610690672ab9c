"""kubectl 1.32, unmodified, against `coalmine devcluster` (started through the pytest fixture)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from dchelpers import WIDGET_CRD, deployment, widget

from coalmine.devcluster.testing import DevClusterProcess
from conftest import require_binary


@pytest.fixture
def kubectl(devcluster_process: DevClusterProcess, tmp_path: Path) -> KubectlRunner:
    return KubectlRunner(require_binary("kubectl"), devcluster_process.kubeconfig_path, tmp_path)


class KubectlRunner:
    def __init__(self, binary: str, kubeconfig: Path, workdir: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.workdir = workdir

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                self.binary,
                "--kubeconfig",
                str(self.kubeconfig),
                "--cache-dir",
                str(self.workdir / "cache"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def write(self, name: str, *docs: object) -> str:
        path = self.workdir / name
        path.write_text(yaml.safe_dump_all(docs))
        return str(path)


def test_apply_get_patch_delete_of_built_in_objects(kubectl: KubectlRunner) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    manifest = kubectl.write("app.yaml", deployment("web", replicas=2), service)
    applied = kubectl("apply", "-f", manifest)
    assert "deployment.apps/web created" in applied.stdout
    assert "service/web created" in applied.stdout
    again = kubectl("apply", "-f", manifest)
    assert "deployment.apps/web unchanged" in again.stdout
    table = kubectl("get", "deployments,services").stdout
    assert "deployment.apps/web" in table
    assert "READY" in table
    assert "service/web" in table
    assert "ClusterIP" in table
    body = json.loads(kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert body["spec"]["replicas"] == 2
    kubectl("patch", "deployment", "web", "--type", "merge", "-p", '{"spec":{"replicas":3}}')
    strategic = '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}}'
    kubectl("patch", "deployment", "web", "-p", strategic)
    body = json.loads(kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert body["spec"]["replicas"] == 3
    containers = body["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"], c["imagePullPolicy"]) for c in containers] == [
        ("app", "nginx:2", "IfNotPresent")
    ]
    kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=20s")
    deleted = kubectl("delete", "-f", manifest)
    assert 'deployment.apps "web" deleted' in deleted.stdout
    missing = kubectl("get", "deployment", "web", check=False)
    assert missing.returncode != 0
    assert 'deployments.apps "web" not found' in missing.stderr


def test_custom_resource_after_its_crd(kubectl: KubectlRunner) -> None:
    kubectl("apply", "-f", kubectl.write("crd.yaml", WIDGET_CRD))
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    kubectl("apply", "-f", kubectl.write("widget.yaml", widget("w1", size=2)))
    table = kubectl("get", "widgets").stdout
    assert table.split("\n")[0].split() == ["NAME", "SIZE", "READY"]
    assert table.split("\n")[1].split() == ["w1", "2"]
    short = kubectl("get", "wd", "w1", "-o", "jsonpath={.spec.color}").stdout
    assert short == "red"
    kubectl(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
    )
    kubectl("wait", "--for=condition=Ready", "widget/w1", "--timeout=10s")
    kubectl("wait", "--for=jsonpath={.spec.size}=2", "widget/w1", "--timeout=10s")
    invalid = kubectl(
        "patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":0}}', check=False
    )
    assert invalid.returncode != 0
    assert "spec.size: Invalid value: 0" in invalid.stderr
    kubectl("delete", "widget", "w1")
    assert kubectl("get", "widgets", "-o", "json", check=True).stdout.count('"name": "w1"') == 0


def test_get_events_shows_both_event_apis(kubectl: KubectlRunner) -> None:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "x.1"},
        "regarding": {"kind": "Deployment", "name": "x", "namespace": "default"},
        "reason": "Synced",
        "note": "hello from events.k8s.io",
        "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "action": "Sync",
        "reportingController": "test",
        "reportingInstance": "test-1",
    }
    kubectl("create", "-f", kubectl.write("event.yaml", event))
    output = kubectl("get", "events").stdout
    assert "hello from events.k8s.io" in output
    assert "deployment/x" in output


def test_create_generators_send_protobuf_that_devcluster_decodes(kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "team")
    kubectl("-n", "team", "create", "configmap", "settings", "--from-literal=a=b")
    kubectl("-n", "team", "create", "secret", "generic", "token", "--from-literal=k=v")
    kubectl("-n", "team", "create", "serviceaccount", "robot")
    kubectl(
        "-n", "team", "create", "deployment", "web", "--image=nginx:1", "--replicas=2", "--port=80"
    )
    kubectl(
        "-n", "team", "create", "service", "nodeport", "web", "--tcp=80:8080", "--node-port=30001"
    )
    configmap = json.loads(
        kubectl("-n", "team", "get", "configmap", "settings", "-o", "json").stdout
    )
    assert configmap["data"] == {"a": "b"}
    secret = json.loads(kubectl("-n", "team", "get", "secret", "token", "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="}
    deployment = json.loads(kubectl("-n", "team", "get", "deployment", "web", "-o", "json").stdout)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    service = json.loads(kubectl("-n", "team", "get", "service", "web", "-o", "json").stdout)
    assert service["spec"]["ports"][0]["nodePort"] == 30001
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    kubectl("delete", "namespace", "team")
    assert kubectl("get", "namespace", "team", check=False).returncode != 0
