"""The two API servers the end-to-end tier runs on: devcluster and the real control plane.

A test asks for the `cluster` fixture (parametrized over both) and gets a `TestCluster`: an admin
kubeconfig for the test's own requests, the kubeconfig the controller must use, and the namespace
to work in. On devcluster each test gets a fresh server and works in `default`, with an admin
controller. On the real control plane one `scripts/realcluster` serves the whole session, each test
gets its own namespace, and the controller runs as the `coalmine` ServiceAccount bound to the exact
ClusterRole in `deploy/manifests/coalmine.yaml`, so every test is also a least-privilege test: the
API server's audit log records every request the controller made, and `denied_requests()` lists
those that were refused.

`COALMINE_TEST_CLUSTERS` picks the tiers (`devcluster,realcluster`, the default, or one of them).
Without Go the real tier is skipped with a printed reason, and fails in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine.devcluster.crds import crd_path

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "deploy" / "crds"
RBAC_MANIFEST = ROOT / "deploy" / "manifests" / "coalmine.yaml"
CONTROLLER_SA = ("coalmine", "coalmine")  # namespace, name: no test may delete either
# The official CRDs of the routing and scaling objects the tests write to, served by both tiers.
ROUTER_CRDS = [
    crd_path("istio/networking.istio.io_virtualservices.yaml"),
    crd_path("istio/networking.istio.io_destinationrules.yaml"),
    crd_path("gateway-api/gateway.networking.k8s.io_httproutes.yaml"),
    crd_path("linkerd-smi/split.smi-spec.io_trafficsplits.yaml"),
    crd_path("contour/projectcontour.io_httpproxies.yaml"),
    crd_path("traefik/traefik.io_traefikservices.yaml"),
]
# CRDs a test installs itself on devcluster (another test there needs them absent); the real
# control plane of the session serves them from the start.
OPTIONAL_CRDS = [crd_path("keda/keda.sh_scaledobjects.yaml")]


def tiers() -> list[str]:
    chosen = os.environ.get("COALMINE_TEST_CLUSTERS", "devcluster,realcluster")
    return [tier.strip() for tier in chosen.split(",") if tier.strip()]


def tiers_for(definition: pytest.Function) -> list[str]:
    """The tiers a test runs on: all chosen ones, or only devcluster when it is marked
    `devcluster_only(reason)` (it needs one of devcluster's own test hooks), or only the real
    control plane when marked `realcluster_only(reason)` (TLS, authentication, RBAC)."""
    chosen = tiers()
    if definition.get_closest_marker("devcluster_only"):
        chosen = [tier for tier in chosen if tier == "devcluster"]
    if definition.get_closest_marker("realcluster_only"):
        chosen = [tier for tier in chosen if tier == "realcluster"]
    return chosen


def coalmine_crds() -> list[Path]:
    return [path for path in sorted(CRD_DIR.glob("*.yaml")) if path.name != "kustomization.yaml"]


@dataclass
class TestCluster:
    """One API server as a test sees it."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    kind: str
    url: str
    kubeconfig_path: Path
    controller_kubeconfig: Path
    namespace: str = "default"
    controller_flags: tuple[str, ...] = ()
    audit_log: Path | None = None
    audit_offset: int = 0

    @property
    def real(self) -> bool:
        return self.kind == "realcluster"

    def denied_requests(self) -> list[str]:
        """Requests of the controller's ServiceAccount that the API server refused with 403
        since this test started (real control plane only)."""
        return [
            f"{entry['verb']} {entry['requestURI']}: {entry['responseStatus'].get('message', '')}"
            for entry in self.controller_audit()
            if entry.get("responseStatus", {}).get("code") == 403
        ]

    def controller_audit(self) -> list[dict[str, Any]]:
        if self.audit_log is None or not self.audit_log.exists():
            return []
        user = f"system:serviceaccount:{CONTROLLER_SA[0]}:{CONTROLLER_SA[1]}"
        entries = []
        with self.audit_log.open() as log:
            log.seek(self.audit_offset)
            for line in log:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("user", {}).get("username") == user:
                        entries.append(entry)
        return entries


# --- the real control plane ----------------------------------------------------------------------


@dataclass
class RealClusterProcess:
    url: str
    kubeconfig_path: Path
    process: subprocess.Popen[str]
    workdir: Path
    audit_log: Path
    namespaces: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={self.kubeconfig_path}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout


def kubectl_binary() -> str:
    bin_dir = os.environ.get("COALMINE_KUBE_BIN")
    if bin_dir:
        return str(Path(bin_dir) / "kubectl")
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is not on the PATH (scripts/test puts the built one there)")
    return found


def require_go() -> None:
    if shutil.which("go") is None and not os.environ.get("COALMINE_KUBE_BIN"):
        message = "the real control plane needs Go to build (tools/kube); install Go 1.26+"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def start_realcluster(workdir: Path, *loads: Path) -> RealClusterProcess:
    """`scripts/realcluster` with coalmine's and the routers' CRDs, the controller's RBAC, and an
    audit log of every ServiceAccount request."""
    kubeconfig = workdir / "admin.kubeconfig"
    audit_log = workdir / "audit.log"
    process = subprocess.Popen(
        [
            str(ROOT / "scripts" / "realcluster"),
            "--port=0",
            f"--kubeconfig-out={kubeconfig}",
            f"--audit-log={audit_log}",
            *(f"--load={path}" for path in [*coalmine_crds(), *ROUTER_CRDS, *loads]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("https://"):
        process.kill()
        _, err = process.communicate(timeout=30)
        raise RuntimeError(f"scripts/realcluster did not start: {line!r}\n{err[-4000:]}")
    cluster = RealClusterProcess(line, kubeconfig, process, workdir, audit_log)
    install_controller_rbac(cluster)
    return cluster


def stop_realcluster(cluster: RealClusterProcess) -> None:
    cluster.process.send_signal(signal.SIGTERM)
    try:
        cluster.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        cluster.process.kill()
        cluster.process.wait()


def rbac_objects() -> list[dict[str, Any]]:
    """The ServiceAccount and its (Cluster)Roles and bindings exactly as deploy/ ships them."""
    keep = {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    }
    objects = []
    for document in yaml.safe_load_all(RBAC_MANIFEST.read_text()):
        if not document:
            continue
        items = document["items"] if document.get("kind") == "List" else [document]
        objects += [item for item in items if item["kind"] in keep]
    return objects


def install_controller_rbac(cluster: RealClusterProcess) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": rbac_objects()}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def controller_kubeconfig(cluster: RealClusterProcess, path: Path) -> Path:
    """A kubeconfig with a bound token of the controller's ServiceAccount (TokenRequest API)."""
    namespace, name = CONTROLLER_SA
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=24h").strip()
    admin = yaml.safe_load(cluster.kubeconfig_path.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "coalmine", "user": {"token": token}}],
        "contexts": [
            {
                "name": "coalmine",
                "context": {"cluster": admin["clusters"][0]["name"], "user": "coalmine"},
            }
        ],
        "current-context": "coalmine",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def namespace_for_test(cluster: RealClusterProcess, sa_kubeconfig: Path) -> TestCluster:
    """A fresh namespace, with the leader-election Role bound there too: a controller started with
    `--namespace` keeps its Lease in the namespace it watches, as Flagger's does."""
    namespace = f"e2e-{next(cluster.namespaces)}"
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    ]
    for item in rbac_objects():
        if item["kind"] in ("Role", "RoleBinding"):
            copy = json.loads(json.dumps(item))
            copy["metadata"] = {"name": item["metadata"]["name"], "namespace": namespace}
            objects.append(copy)
    cluster.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    deadline = time.monotonic() + 30
    while True:  # the ServiceAccount controller creates `default` shortly after the namespace
        with contextlib.suppress(RuntimeError):
            cluster.kubectl("get", "serviceaccount", "default", "-n", namespace)
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {namespace} after 30s")
        time.sleep(0.2)
    return TestCluster(
        kind="realcluster",
        url=cluster.url,
        kubeconfig_path=cluster.kubeconfig_path,
        controller_kubeconfig=sa_kubeconfig,
        namespace=namespace,
        controller_flags=(f"--namespace={namespace}",),
        audit_log=cluster.audit_log,
        audit_offset=cluster.audit_log.stat().st_size if cluster.audit_log.exists() else 0,
    )


@contextlib.contextmanager
def devcluster_for_test(*extra: Path) -> Iterator[TestCluster]:
    """devcluster with coalmine's CRDs (and `extra` manifests) loaded, as `--load` does."""
    # Imported here: pytest registers coalmine.devcluster.testing as a plugin, which must come first.
    from coalmine.devcluster.testing import start_devcluster_process, stop_devcluster_process

    with tempfile.TemporaryDirectory(prefix="e2e-") as directory:
        kubeconfig = Path(directory) / "kubeconfig"
        loads = [f"--load={path}" for path in [*coalmine_crds(), *ROUTER_CRDS, *extra]]
        server = start_devcluster_process(kubeconfig, *loads, "--rollout-delay", "0.05")
        try:
            yield TestCluster("devcluster", server.url, kubeconfig, kubeconfig)
        finally:
            stop_devcluster_process(server)
