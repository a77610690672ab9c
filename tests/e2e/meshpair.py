"""A second API server holding the routing objects (`--kubeconfig-service-mesh`), on each tier.

On devcluster it is another `coalmine devcluster` process; on the real control plane another
`scripts/realcluster` (one for the session: it takes tens of seconds), where the controller
works as a ServiceAccount bound only to the routing rules of `permissions.MESH_CLUSTER_ROLE`
in the test's namespace. `pause()`/`resume()` stop and continue the server process (SIGSTOP,
SIGCONT): a mesh cluster that accepts connections and never answers, the hardest outage to see.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clusters import ROUTER_CRDS, RealClusterProcess, TestCluster, coalmine_crds
from coalmine.kube.permissions import MESH_CLUSTER_ROLE, as_rules

MESH_SA = ("coalmine-mesh", "coalmine-mesh")  # namespace, name in the mesh cluster


@dataclass
class MeshServer:
    """The mesh cluster of one test."""

    url: str
    admin_kubeconfig: Path
    controller_kubeconfig: Path
    pid: int
    real: RealClusterProcess | None = None

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def devcluster_mesh() -> Iterator[MeshServer]:
    # Imported here: pytest registers coalmine.devcluster.testing as a plugin, which must come first.
    from coalmine.devcluster.testing import start_devcluster_process, stop_devcluster_process

    with tempfile.TemporaryDirectory(prefix="mesh-") as directory:
        kubeconfig = Path(directory) / "kubeconfig"
        loads = [f"--load={path}" for path in [*coalmine_crds(), *ROUTER_CRDS]]
        server = start_devcluster_process(kubeconfig, *loads)
        mesh = MeshServer(server.url, kubeconfig, kubeconfig, server.process.pid)
        try:
            yield mesh
        finally:
            mesh.resume()
            stop_devcluster_process(server)


def apiserver_pid(real: RealClusterProcess) -> int:
    """The kube-apiserver child of `scripts/realcluster` (found through /proc, by parent)."""
    children = Path(f"/proc/{real.process.pid}/task/{real.process.pid}/children").read_text()
    for pid in children.split():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "kube-apiserver":
                return int(pid)
    raise RuntimeError(f"no kube-apiserver child of {real.process.pid}")


def real_mesh_for(real: RealClusterProcess, cluster: TestCluster, workdir: Path) -> MeshServer:
    """The test's namespace in the mesh control plane, a ServiceAccount there bound by a Role to
    the routing rules only, and a kubeconfig with its token."""
    namespace, name = MESH_SA
    ns = cluster.namespace
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "coalmine-routing", "namespace": ns},
            "rules": as_rules(MESH_CLUSTER_ROLE),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "coalmine-routing", "namespace": ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "coalmine-routing",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    real.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    token = real.kubectl("create", "token", name, "-n", namespace, "--duration=2h").strip()
    admin = yaml.safe_load(real.kubeconfig_path.read_text())
    path = workdir / f"mesh-{ns}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": name,
                        "context": {"cluster": admin["clusters"][0]["name"], "user": name},
                    }
                ],
                "current-context": name,
            }
        )
    )
    return MeshServer(real.url, real.kubeconfig_path, path, apiserver_pid(real), real)


def mesh_denied(mesh: MeshServer, since: int) -> list[str]:
    """Requests of the mesh ServiceAccount the mesh control plane refused (real tier only)."""
    if mesh.real is None or not mesh.real.audit_log.exists():
        return []
    user = f"system:serviceaccount:{MESH_SA[0]}:{MESH_SA[1]}"
    denied = []
    with mesh.real.audit_log.open() as log:
        log.seek(since)
        for line in log:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if (
                    entry.get("user", {}).get("username") == user
                    and entry.get("responseStatus", {}).get("code") == 403
                ):
                    denied.append(f"{entry['verb']} {entry['requestURI']}")
    return denied
