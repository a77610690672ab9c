"""A real Kubernetes control plane on loopback, with devcluster's launcher contract.

`scripts/realcluster --port 0 --kubeconfig-out PATH` starts etcd, kube-apiserver (TLS, Node and RBAC
authorizers, ServiceAccount tokens, the default admission plugins), kube-controller-manager,
kube-scheduler and kwok (fake Nodes whose Pods become Running and Ready), writes an admin kubeconfig,
prints the API URL on one line once the server is ready and the `default` namespace and
ServiceAccount exist, and on SIGTERM/SIGINT stops everything it started and removes its data.

Why a separate process per component rather than an in-process test server: the point is to run the
binaries users run, with their admission, garbage collection, controllers and authorization.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64decode, b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
SERVICE_RANGES = "10.96.0.0/16,fd00:10:96::/112"
READY_TIMEOUT = 180.0


class StartError(RuntimeError):
    """A component failed to start; the message names it and quotes its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PKI -----------------------------------------------------------------------------------------


@dataclass
class KeyPair:
    cert: bytes
    key: bytes


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: x509.Name,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    server_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """An EC P-256 certificate: fast to generate, accepted by every component."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        purposes = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _name(common: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


@dataclass
class Pki:
    ca: KeyPair
    server: KeyPair
    clients: dict[str, KeyPair]
    service_account_key: bytes
    service_account_pub: bytes


CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("kwok", "system:masters"),
}


def make_pki() -> Pki:
    ca_cert, ca_key = _issue(_name("coalmine-realcluster-ca"), None)
    issuer = (ca_cert.subject, ca_key)

    def pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    dns.append("kubernetes.default.svc.cluster.local")
    server = pair(*_issue(_name("kube-apiserver"), issuer, server_names=dns,
                          ips=["127.0.0.1", "::1", "10.96.0.1"]))  # fmt: skip
    clients = {
        role: pair(*_issue(_name(common, org), issuer)) for role, (common, org) in CLIENTS.items()
    }
    sa_key = ec.generate_private_key(ec.SECP256R1())
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Pki(pair(ca_cert, ca_key), server, clients, _pem_key(sa_key), sa_pub)


def stored_pki(data: Path) -> Pki:
    """The data dir's PKI, made on its first start: a restart from the same dir (with or without
    its etcd, as after an etcd restore) keeps the CA and every client's identity, so kubeconfigs
    and ServiceAccount tokens issued before stay valid."""
    path = data / "pki.json"
    if path.exists():
        raw = json.loads(path.read_text())

        def pair(entry: dict[str, str]) -> KeyPair:
            return KeyPair(b64decode(entry["cert"]), b64decode(entry["key"]))

        return Pki(
            pair(raw["ca"]),
            pair(raw["server"]),
            {role: pair(entry) for role, entry in raw["clients"].items()},
            b64decode(raw["service_account_key"]),
            b64decode(raw["service_account_pub"]),
        )
    pki = make_pki()

    def encoded(value: KeyPair) -> dict[str, str]:
        return {"cert": b64encode(value.cert).decode(), "key": b64encode(value.key).decode()}

    raw = {
        "ca": encoded(pki.ca),
        "server": encoded(pki.server),
        "clients": {role: encoded(value) for role, value in pki.clients.items()},
        "service_account_key": b64encode(pki.service_account_key).decode(),
        "service_account_pub": b64encode(pki.service_account_pub).decode(),
    }
    write(path, json.dumps(raw))
    return pki


def kubeconfig(url: str, ca: bytes, client: KeyPair, user: str) -> dict[str, Any]:
    def data(raw: bytes) -> str:
        return b64encode(raw).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "realcluster",
                "cluster": {"server": url, "certificate-authority-data": data(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": data(client.cert),
                    "client-key-data": data(client.key),
                },
            }
        ],
        "contexts": [{"name": "realcluster", "context": {"cluster": "realcluster", "user": user}}],
        "current-context": "realcluster",
    }


# --- kwok stages: our own minimal lifecycle (nodes Ready, pods Running and Ready, deletion) ------

STAGES = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: NotIn, values: [Running]}
  next:
    statusTemplate: |
      phase: Running
      conditions:
      - type: Ready
        status: "True"
        reason: KubeletReady
        message: kwok simulates this node
        lastHeartbeatTime: {{ Now | Quote }}
        lastTransitionTime: {{ Now | Quote }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      allocatable: {cpu: "64", memory: 256Gi, pods: "250"}
      capacity: {cpu: "64", memory: 256Gi, pods: "250"}
      nodeInfo: {kubeletVersion: kwok, architecture: amd64, operatingSystem: linux}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Pending]}
  next:
    statusTemplate: |
      phase: Running
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ Now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ Now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ Now | Quote }}}
      - {type: PodScheduled, status: "True", lastTransitionTime: {{ Now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ Now | Quote }}}}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
      startTime: {{ Now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    finalizers: {empty: true}
    delete: true
"""


def node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
    }


# --- processes -----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Children get SIGTERM when realcluster dies, even by SIGKILL: nothing outlives a test run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class RealCluster:
    bin_dir: Path
    data: Path
    port: int
    nodes: int
    audit_log: Path | None = None
    components: list[Component] = field(default_factory=list)
    url: str = ""

    def start(self, name: str, *args: str) -> Component:
        log = self.data / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # no threads exist yet
            )
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def check_alive(self) -> None:
        for component in self.components:
            code = component.process.poll()
            if code is not None:
                raise StartError(f"{component.name} exited with {code}:\n{component.tail()}")

    def stop(self) -> None:
        for component in reversed(self.components):
            if component.process.poll() is None:
                component.process.terminate()
        deadline = time.monotonic() + 5  # its data is removed next: nothing to flush
        for component in reversed(self.components):
            try:
                component.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                component.process.kill()
                component.process.wait()


def write(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


class Api:
    """Minimal admin HTTPS client for start-up: readiness, Nodes and namespaces (no dependencies
    beyond the standard library, so the launcher runs before anything else is installed)."""

    def __init__(self, url: str, pki: Pki, directory: Path) -> None:
        self.url = url
        context = ssl.create_default_context(cadata=pki.ca.cert.decode())
        cert = write(directory / "admin-client.crt", pki.clients["admin"].cert)
        key = write(directory / "admin-client.key", pki.clients["admin"].key)
        context.load_cert_chain(str(cert), str(key))
        self.context = context

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as reply:
                raw = reply.read()
                status = reply.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


def wait_for(
    cluster: RealCluster, what: str, probe: Callable[[], bool], timeout: float = READY_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        with contextlib.suppress(OSError, ValueError):
            if probe():
                return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name}\n{c.tail(10)}" for c in cluster.components)
            raise StartError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(0.2)


def etcd_healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
        return bool(json.loads(reply.read()).get("health") == "true")


AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  userGroups: ["system:serviceaccounts:kube-system"]
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
"""


def audit_flags(data: Path, audit_log: Path | None) -> list[str]:
    """Every request made by a ServiceAccount outside kube-system, one JSON line each: how a test
    proves that a workload's RBAC allows every request it makes."""
    if audit_log is None:
        return []
    policy = write(data / "audit-policy.yaml", AUDIT_POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxsize=0",
    ]


def boot(cluster: RealCluster) -> Api:
    """Start every component in dependency order and wait until the cluster is usable."""
    data = cluster.data
    pki = stored_pki(data)
    files = {
        "ca.crt": pki.ca.cert,
        "ca.key": pki.ca.key,
        "server.crt": pki.server.cert,
        "server.key": pki.server.key,
        "sa.key": pki.service_account_key,
        "sa.pub": pki.service_account_pub,
    }
    paths = {name: write(data / name, content) for name, content in files.items()}

    etcd_port, peer_port = free_port(), free_port()
    peer = f"http://127.0.0.1:{peer_port}"
    cluster.start(
        "etcd",
        f"--data-dir={data / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    )
    wait_for(cluster, "etcd", lambda: etcd_healthy(etcd_port), 60)

    port = cluster.port or free_port()
    cluster.url = f"https://127.0.0.1:{port}"
    cluster.start(
        "kube-apiserver",
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={paths['server.crt']}",
        f"--tls-private-key-file={paths['server.key']}",
        f"--client-ca-file={paths['ca.crt']}",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={paths['sa.pub']}",
        f"--service-account-signing-key-file={paths['sa.key']}",
        f"--service-cluster-ip-range={SERVICE_RANGES}",
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
        *audit_flags(data, cluster.audit_log),
    )
    api = Api(cluster.url, pki, data)
    wait_for(cluster, "kube-apiserver /readyz", lambda: api.call("GET", "/readyz")[0] == 200)

    configs = {}
    for role in ("controller-manager", "scheduler", "kwok"):
        config = kubeconfig(cluster.url, pki.ca.cert, pki.clients[role], role)
        configs[role] = write(data / f"{role}.kubeconfig", yaml.safe_dump(config))
    cluster.start(
        "kube-controller-manager",
        f"--kubeconfig={configs['controller-manager']}",
        "--leader-elect=false",
        "--secure-port=0",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={paths['sa.key']}",
        f"--root-ca-file={paths['ca.crt']}",
        f"--cluster-signing-cert-file={paths['ca.crt']}",
        f"--cluster-signing-key-file={paths['ca.key']}",
        f"--service-cluster-ip-range={SERVICE_RANGES}",
        "--profiling=false",
    )
    cluster.start(
        "kube-scheduler",
        f"--kubeconfig={configs['scheduler']}",
        "--leader-elect=false",
        "--secure-port=0",
        "--profiling=false",
    )
    stages = write(data / "kwok-stages.yaml", STAGES)
    cluster.start(
        "kwok",
        f"--kubeconfig={configs['kwok']}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16",
        "--node-ip=10.0.0.1",
        "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{free_port()}",
    )
    for index in range(cluster.nodes):
        status, body = api.call("POST", "/api/v1/nodes", node_manifest(f"kwok-node-{index}"))
        if status not in (201, 409):
            raise StartError(f"creating Node kwok-node-{index}: {status} {body}")
    wait_for(
        cluster,
        "the default ServiceAccount",
        lambda: api.call("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
    )
    wait_for(cluster, "Ready nodes", lambda: ready_nodes(api) >= cluster.nodes)
    return api


def ready_nodes(api: Api) -> int:
    status, body = api.call("GET", "/api/v1/nodes")
    if status != 200:
        return 0
    count = 0
    for node in body.get("items", []):
        conditions = node.get("status", {}).get("conditions", [])
        count += any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return count


def crds_served(api: Api) -> bool:
    """Every CRD lists: Established is not enough, a new CRD answers 503 "storage is
    (re)initializing" for a moment after it."""
    status, body = api.call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    if status != 200:
        return False
    for crd in body.get("items", []):
        spec = crd["spec"]
        served = [v["name"] for v in spec["versions"] if v.get("served")]
        path = f"/apis/{spec['group']}/{served[0]}/{spec['names']['plural']}?limit=1"
        if api.call("GET", path)[0] != 200:
            return False
    return True


def load(cluster: RealCluster, api: Api, kubeconfig_path: Path, files: list[str]) -> None:
    """`--load FILE` as devcluster has it: `kubectl apply --server-side`, CRDs waited for."""
    kubectl = [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig_path}"]
    for file in files:
        result = subprocess.run(
            [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", file],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StartError(f"--load {file} failed: {result.stderr.strip()}")
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
        capture_output=True,
        check=False,
    )
    wait_for(cluster, "the loaded CRDs to be served", lambda: crds_served(api), 60)


def build() -> Path:
    """The cached binaries; a cold build takes tens of minutes, so say so on stderr."""
    result = subprocess.run([str(HERE / "build")], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise StartError(
            f"tools/kube/build failed (exit {result.returncode}); see its message above"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realcluster", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="API port (0: a free port)")
    parser.add_argument("--kubeconfig-out", metavar="PATH", help="write the admin kubeconfig here")
    parser.add_argument("--nodes", type=int, default=3, help="kwok nodes to create (default 3)")
    parser.add_argument("--load", action="append", default=[], metavar="FILE",
                        help="apply this manifest file once ready (repeatable)")  # fmt: skip
    parser.add_argument("--data-dir", metavar="DIR",
                        help="keep data here (default: a temp dir); a restart from the same dir "
                             "keeps its PKI, and its state unless DIR/etcd was removed")  # fmt: skip
    parser.add_argument("--audit-log", metavar="PATH",
                        help="log every ServiceAccount request here (JSON lines)")  # fmt: skip
    parser.add_argument("--print-bin-dir", action="store_true", help="build, print the bin dir")
    args = parser.parse_args(argv)

    try:
        bin_dir = build()
    except StartError as error:
        print(f"realcluster: {error}", file=sys.stderr)
        return 3
    if args.print_bin_dir:
        print(bin_dir)
        return 0
    data = Path(args.data_dir or tempfile.mkdtemp(prefix="realcluster-"))
    data.mkdir(parents=True, exist_ok=True)
    audit = Path(args.audit_log).resolve() if args.audit_log else None
    cluster = RealCluster(bin_dir, data, args.port, args.nodes, audit)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        api = boot(cluster)
        kubeconfig_path = Path(args.kubeconfig_out or data / "admin.kubeconfig")
        pki_admin = kubeconfig_from_files(cluster, data)
        write(kubeconfig_path, yaml.safe_dump(pki_admin))
        load(cluster, api, kubeconfig_path, args.load)
        print(f"realcluster: kubeconfig {kubeconfig_path}; logs in {data}", file=sys.stderr)
        print(cluster.url, flush=True)
        parent = os.getppid()
        while True:
            cluster.check_alive()
            if os.getppid() != parent:
                # Whoever started us is gone (a test run killed with -9): nothing is left behind.
                print("realcluster: the parent process exited; stopping", file=sys.stderr)
                return 0
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    except StartError as error:
        if not stopping:
            print(f"realcluster: {error}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        if not args.data_dir:
            shutil.rmtree(data, ignore_errors=True)


def kubeconfig_from_files(cluster: RealCluster, data: Path) -> dict[str, Any]:
    client = KeyPair(
        (data / "admin-client.crt").read_bytes(), (data / "admin-client.key").read_bytes()
    )
    return kubeconfig(cluster.url, (data / "ca.crt").read_bytes(), client, "admin")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
