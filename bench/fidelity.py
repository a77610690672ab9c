"""Fidelity of devcluster, measured: the same battery of requests against devcluster and against
the real kube-apiserver, compared request by request.

    PYTHONPATH=src python bench/fidelity.py                       # starts both clusters itself
    PYTHONPATH=src python bench/fidelity.py --real-kubeconfig KC  # a real cluster already running
    PYTHONPATH=src python bench/fidelity.py -k service -v         # only cases matching, with diffs

Each case (`fidelity_battery`) runs once against each cluster in a namespace of its own and records
what it observed: per request the status code, the Status `reason` and the `details.causes`
(field, reason) pairs, and the resulting object, normalised (uid, resourceVersion, timestamps,
managedFields, allocated IPs and node ports, generated names and the status of controller-driven
kinds dropped or replaced by placeholders, unless the case is about them); kubectl cases record the
exit code and normalised output. A case agrees when both records are equal. Prints the agreement
score (cases agreeing / total) and each difference; exits 0 whatever the score (it measures, it
does not pass or fail). The clusters are started by their launchers (`python -m coalmine
devcluster` and `scripts/realcluster`, the same contract: `--port 0 --kubeconfig-out PATH`, one
line with the URL when ready, SIGTERM to stop).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
IP = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")
TIME_KEYS = {
    "creationTimestamp",
    "deletionTimestamp",
    "lastTransitionTime",
    "lastUpdateTime",
    "lastHeartbeatTime",
    "lastProbeTime",
    "eventTime",
    "firstTimestamp",
    "lastTimestamp",
    "renewTime",
    "acquireTime",
    "time",
}
DROPPED_META = {"uid", "resourceVersion", "selfLink", "managedFields", "creationTimestamp"}
# Written by controllers on their own schedule (kube-controller-manager vs the devcluster
# simulator): compared only by cases that are about them.
CONTROLLER_STATUS_KINDS = {"Deployment", "DaemonSet", "ReplicaSet", "HorizontalPodAutoscaler"}
CONTROLLER_ANNOTATIONS = {
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
}


# --- talking to a cluster ------------------------------------------------------------------------
@dataclass
class Cluster:
    """One API server: its URL, an aiohttp session with the kubeconfig's credentials, its kubeconfig."""

    name: str
    url: str
    kubeconfig: Path
    session: aiohttp.ClientSession
    headers: dict[str, str]


def _materialise(user_or_cluster: dict[str, Any], key: str, workdir: Path) -> str | None:
    if user_or_cluster.get(key):
        return str(user_or_cluster[key])
    data = user_or_cluster.get(f"{key}-data")
    if not data:
        return None
    path = workdir / f"{key}-{secrets.token_hex(4)}.pem"
    path.write_bytes(base64.b64decode(data))
    return str(path)


def open_cluster(name: str, kubeconfig: Path, workdir: Path) -> Cluster:
    config = yaml.safe_load(kubeconfig.read_text())
    context_name = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(
        (u["user"] for u in config.get("users", []) if u["name"] == context.get("user")), {}
    )
    user = user or {}
    headers = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    ssl_context: ssl.SSLContext | bool = False
    if cluster["server"].startswith("https"):
        ca = _materialise(cluster, "certificate-authority", workdir)
        ssl_context = ssl.create_default_context(cafile=ca)
        if cluster.get("insecure-skip-tls-verify"):
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        cert = _materialise(user, "client-certificate", workdir)
        key = _materialise(user, "client-key", workdir)
        if cert and key:
            ssl_context.load_cert_chain(cert, key)
    connector = aiohttp.TCPConnector(ssl=ssl_context, limit=8)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
    return Cluster(name, cluster["server"].rstrip("/"), kubeconfig, session, headers)


@dataclass
class Reply:
    status: int
    body: Any
    text: str


async def send(
    cluster: Cluster,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    data: bytes | None = None
    all_headers = dict(cluster.headers)
    all_headers.update(headers or {})
    if body is not None:
        data = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        all_headers["Content-Type"] = content_type
    async with cluster.session.request(
        method, cluster.url + path, data=data, headers=all_headers
    ) as response:
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Reply(response.status, parsed, text)


# --- recording -----------------------------------------------------------------------------------
@dataclass
class Step:
    label: str
    observed: Any
    message: str = ""


@dataclass
class Options:
    keep_status: bool = False
    keep_managed: bool = False
    keep: tuple[str, ...] = ()


class Run:
    """A case's view of one cluster: requests, kubectl, and what they showed (normalised)."""

    def __init__(self, cluster: Cluster, namespace: str, run_id: str, base_ip: str) -> None:
        self.cluster = cluster
        self.ns = namespace
        self.run_id = run_id
        self.steps: list[Step] = []
        self.tokens: dict[str, str] = {}
        self.opts = Options()
        self._base_ip = base_ip
        self.workdir = Path(tempfile.mkdtemp(prefix="fidelity-"))

    # names and values that must read the same on both sides
    def ip(self, index: int) -> str:
        """A requested ClusterIP inside the cluster's service range (recorded as `<ip-N>`)."""
        # a third octet of this run's own, so a long-lived cluster has none of them taken
        a, b, _, _ = self._base_ip.split(".")
        value = f"{a}.{b}.{20 + int(self.run_id, 16) % 200}.{200 + index}"
        self.tokens[value] = f"<ip-{index}>"
        return value

    def port(self, index: int) -> int:
        value = 32000 + (int(self.run_id, 16) % 50) * 10 + index
        self.tokens[str(value)] = f"<port-{index}>"
        return value

    def unique(self, stem: str) -> str:
        """A cluster-scoped name unique to this run (recorded as `<stem>`)."""
        value = f"{stem}-{self.run_id}-{self.ns.rsplit('-', 1)[-1]}"
        self.tokens[value] = f"<{stem}>"
        return value

    def path(
        self, plural: str, name: str = "", group: str = "", sub: str = "", ns: str = ""
    ) -> str:
        prefix = f"/apis/{group}" if group else "/api/v1"
        if group and "/" not in group:
            raise ValueError("group must be group/version")
        namespace = ns or self.ns
        out = (
            f"{prefix}/namespaces/{namespace}/{plural}"
            if namespace != "-"
            else f"{prefix}/{plural}"
        )
        if name:
            out += f"/{name}"
        if sub:
            out += f"/{sub}"
        return out

    async def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        label: str = "",
        record: bool = True,
        headers: dict[str, str] | None = None,
        pick: Callable[[Any], Any] | None = None,
    ) -> Reply:
        reply = await send(self.cluster, method, path, body, content_type, headers)
        if record:
            self.record(label or f"{method} {path}", reply, pick)
        return reply

    def record(self, label: str, reply: Reply, pick: Callable[[Any], Any] | None = None) -> None:
        body = reply.body
        message = body.get("message", "") if isinstance(body, dict) else ""
        if reply.status >= 300 and not (isinstance(body, dict) and body.get("kind") == "Status"):
            observed: Any = {"code": reply.status, "body": "(not a Status)"}
        elif isinstance(body, dict) and body.get("kind") == "Status" and reply.status >= 300:
            details = body.get("details") or {}
            causes = sorted(
                (c.get("field", ""), c.get("reason", "")) for c in details.get("causes") or []
            )
            observed = {"code": reply.status, "reason": body.get("reason"), "causes": causes}
        else:
            shown = pick(body) if pick is not None else body
            observed = {"code": reply.status, "body": self.normalise(shown)}
        self.steps.append(Step(label, observed, str(message)))

    def note(self, label: str, value: Any) -> None:
        """Record a derived observation (already reduced to what must agree)."""
        self.steps.append(Step(label, self.normalise(value)))

    async def poll(
        self,
        method: str,
        path: str,
        until: Callable[[Reply], bool],
        label: str = "",
        timeout: float = 20.0,
        pick: Callable[[Any], Any] | None = None,
    ) -> Reply:
        """Repeat a read until `until` holds (controllers of a real cluster act asynchronously);
        records only the final reply."""
        deadline = time.monotonic() + timeout
        while True:
            reply = await send(self.cluster, method, path)
            if until(reply) or time.monotonic() > deadline:
                self.record(label or f"{method} {path} (settled)", reply, pick)
                return reply
            await asyncio.sleep(0.2)

    async def kubectl(
        self, *args: str, stdin: str | None = None, label: str = "", loose: bool = False
    ) -> str:
        """Run kubectl against this cluster; `loose` records `created`, `configured` and
        `unchanged` alike (for cluster-wide objects an earlier case may have made)."""
        binary = os.environ.get("FIDELITY_KUBECTL", "kubectl")
        command = [binary, "--kubeconfig", str(self.cluster.kubeconfig), "-n", self.ns, *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "KUBECACHEDIR": str(self.workdir / "cache")},
        )
        out, err = await process.communicate(stdin.encode() if stdin else None)
        stdout = out.decode()
        observed: dict[str, Any] = {"exit": process.returncode}
        if (args and args[-1] in ("json",)) or "-ojson" in args:
            try:
                observed["json"] = self.normalise(json.loads(stdout))
            except ValueError:
                observed["stdout"] = self._text(stdout)
        else:
            observed["stdout"] = self._text(stdout)
        if loose and "stdout" in observed:
            observed["stdout"] = [
                re.sub(r" (created|configured|unchanged)$", " <applied>", line)
                for line in observed["stdout"]
            ]
        self.steps.append(Step(label or "kubectl " + " ".join(args), observed, err.decode()[:300]))
        return stdout

    def _text(self, text: str) -> list[str]:
        lines = []
        for line in text.splitlines():
            for value, token in self.tokens.items():
                line = line.replace(value, token)
            line = line.replace(self.ns, "<ns>")
            line = re.sub(r"\b(\d{1,3}\.){3}\d{1,3}\b", "<ip>", line)
            line = re.sub(r"\b\d+(\.\d+)?(s|m|h|d)\d*(s|m)?\b", "<age>", line)
            line = re.sub(r"<unknown>|<invalid>", "<age>", line)
            line = re.sub(r"\b3\d{4}/", "<port>/", line)
            lines.append(" ".join(line.split()))
        return lines

    # --- normalisation -----------------------------------------------------------------------
    def normalise(self, value: Any, key: str = "", parent: str = "") -> Any:
        if isinstance(value, dict):
            return self._normalise_dict(value, key)
        if isinstance(value, list):
            return [self.normalise(v, key, parent) for v in value]
        if isinstance(value, str):
            if value in self.tokens:
                return self.tokens[value]
            if key in TIME_KEYS and value:
                return "<time>"
            if key == "uid":
                return "<uid>"
            if IP.match(value):
                return "<ip>"
            if key == "continue" and value:
                return "<continue>"
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if str(value) in self.tokens and key in ("nodePort", "healthCheckNodePort"):
                return self.tokens[str(value)]
            if key in ("nodePort", "healthCheckNodePort"):
                return "<port>"
        return value

    def _normalise_dict(self, value: dict[str, Any], key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind = value.get("kind")
        for k, v in value.items():
            if k in self.opts.keep:
                out[k] = v
                continue
            if key == "metadata" or (k in DROPPED_META and key == ""):
                if k in DROPPED_META and not (k == "managedFields" and self.opts.keep_managed):
                    continue
                if k == "managedFields":
                    out[k] = [self._managed(entry) for entry in v or []]
                    continue
                if k == "annotations" and isinstance(v, dict):
                    v = {a: b for a, b in v.items() if a not in CONTROLLER_ANNOTATIONS}
                    if not v:
                        continue
                if k == "name" and value.get("generateName"):
                    out[k] = "<generated>"
                    continue
            if k == "status" and kind in CONTROLLER_STATUS_KINDS and not self.opts.keep_status:
                continue
            if k == "resourceVersion":
                continue
            out[k] = self.normalise(v, k, key)
        return out

    @staticmethod
    def _managed(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in entry.items()
            if k in ("manager", "operation", "apiVersion", "subresource", "fieldsV1")
        }


CaseFn = Callable[[Run], Awaitable[None]]


@dataclass
class Case:
    name: str
    fn: CaseFn
    options: Options = field(default_factory=Options)


# --- the clusters ----------------------------------------------------------------------------------
@dataclass
class Launched:
    process: subprocess.Popen[str]
    kubeconfig: Path
    url: str


def launch(command: list[str], workdir: Path, name: str, timeout: float) -> Launched:
    kubeconfig = workdir / f"{name}.kubeconfig"
    log = (workdir / f"{name}.log").open("w")
    process = subprocess.Popen(
        [*command, "--port", "0", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline and not line:
        line = process.stdout.readline().strip()
        if process.poll() is not None and not line:
            break
    if not line:
        process.terminate()
        raise SystemExit(f"fidelity: {name} did not start; see {workdir / (name + '.log')}")
    return Launched(process, kubeconfig, line)


def stop(launched: Launched) -> None:
    launched.process.send_signal(signal.SIGTERM)
    try:
        launched.process.wait(30)
    except subprocess.TimeoutExpired:
        launched.process.kill()


# --- running and comparing -------------------------------------------------------------------------
async def kubernetes_ip(cluster: Cluster) -> str:
    reply = await send(cluster, "GET", "/api/v1/namespaces/default/services/kubernetes")
    return str(reply.body["spec"]["clusterIP"])


async def run_case(case: Case, cluster: Cluster, index: int, run_id: str, base_ip: str) -> Run:
    namespace = f"fid-{run_id}-{index}"
    run = Run(cluster, namespace, run_id, base_ip)
    run.opts = case.options
    run.tokens[namespace] = "<ns>"
    await send(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        await case.fn(run)
    except Exception as error:  # a case that breaks records how
        run.steps.append(Step("exception", f"{type(error).__name__}: {error}"))
    return run


def first_difference(left: Run, right: Run) -> str:
    for index in range(max(len(left.steps), len(right.steps))):
        a = left.steps[index] if index < len(left.steps) else None
        b = right.steps[index] if index < len(right.steps) else None
        if a is None or b is None or a.observed != b.observed:
            label = (a or b).label  # type: ignore[union-attr]
            return (
                f"    step {index + 1}: {label}\n"
                f"      devcluster: {_show(a)}\n"
                f"      real:       {_show(b)}\n"
                + "".join(f"      {p}\n" for p in _paths(a and a.observed, b and b.observed)[:6])
            )
    return ""


def _show(step: Step | None) -> str:
    if step is None:
        return "(no such step)"
    text = json.dumps(step.observed, sort_keys=True)
    if len(text) > 400:
        text = text[:400] + "…"
    return text + (f"  [{step.message[:160]}]" if step.message else "")


def _paths(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                out.extend(
                    _paths(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{prefix}.{key}")
                )
        return out
    if a == b:
        return []
    return [f"{prefix or '.'}: devcluster {json.dumps(a)[:150]} | real {json.dumps(b)[:150]}"]


async def battery(args: argparse.Namespace, dev_kc: Path, real_kc: Path, workdir: Path) -> int:
    from fidelity_battery import CASES

    cases = [c for c in CASES if not args.k or any(k in c.name for k in args.k)]
    dev = open_cluster("devcluster", dev_kc, workdir)
    real = open_cluster("real", real_kc, workdir)
    run_id = secrets.token_hex(2)
    try:
        dev_ip, real_ip = await kubernetes_ip(dev), await kubernetes_ip(real)
        agreeing = 0
        differences: list[str] = []
        for index, case in enumerate(cases):
            left, right = await asyncio.gather(
                run_case(case, dev, index, run_id, dev_ip),
                run_case(case, real, index, run_id, real_ip),
            )
            same = [s.observed for s in left.steps] == [s.observed for s in right.steps]
            agreeing += same
            if not same:
                differences.append(f"  {case.name}\n{first_difference(left, right)}")
            if args.verbose:
                print(("agree   " if same else "DIFFER  ") + case.name, flush=True)
        total = len(cases)
        print(
            f"\nfidelity: {agreeing}/{total} cases agree ({100 * agreeing / max(total, 1):.1f} %)"
        )
        if differences:
            print(f"\n{len(differences)} differences (devcluster vs kube-apiserver):")
            print("\n".join(differences))
        if args.cleanup:
            for index in range(len(cases)):
                for cluster in (dev, real):
                    await send(cluster, "DELETE", f"/api/v1/namespaces/fid-{run_id}-{index}")
        return 0
    finally:
        await dev.session.close()
        await real.session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-kubeconfig", type=Path, help="a running devcluster's kubeconfig")
    parser.add_argument(
        "--real-kubeconfig", type=Path, help="a running kube-apiserver's kubeconfig"
    )
    parser.add_argument(
        "--real-command",
        default=str(ROOT / "scripts" / "realcluster"),
        help="launcher of the real control plane (default scripts/realcluster)",
    )
    parser.add_argument(
        "-k", action="append", default=[], help="run only cases whose name has this"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each case's verdict")
    parser.add_argument("--cleanup", action="store_true", help="delete the case namespaces after")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    workdir = Path(tempfile.mkdtemp(prefix="fidelity-"))
    started: list[Launched] = []
    try:
        dev_kc = args.dev_kubeconfig
        if dev_kc is None:
            launched = launch(
                [sys.executable, "-m", "coalmine", "devcluster"], workdir, "devcluster", 60
            )
            started.append(launched)
            dev_kc = launched.kubeconfig
        real_kc = args.real_kubeconfig
        if real_kc is None:
            launched = launch([args.real_command], workdir, "realcluster", 3600)
            started.append(launched)
            real_kc = launched.kubeconfig
        return asyncio.run(battery(args, dev_kc, real_kc, workdir))
    finally:
        for launched in started:
            stop(launched)


if __name__ == "__main__":
    raise SystemExit(main())
