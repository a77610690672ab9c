"""Chaos bench: releases while the controller is `kill -9`ed, the API server fails, stalls or forgets.

    PYTHONPATH=src python bench/chaos.py [--cluster devcluster|real] [--canaries 4]
        [--duration 60] [--kills 30] [--kill-every 1:5] [--bad-share 0.3] [--fault-rate 0.05]
        [--outage 20] [--lost-state] [--deadline 120] [--seed 1] [--json PATH]

Processes as in production: the API server (`coalmine devcluster`, or `scripts/realcluster`, the
real control plane), `coalmine controller` (restarted after every kill) and this one, which serves
the canaries' rollout webhook (an aiohttp server on loopback that fails "bad" revisions), makes
the releases and watches the Canaries and their `<svc>-primary` copies.

The canaries are Service targets (`provider: kubernetes`, interval 1s, 3 iterations, threshold 2);
each release points the target's selector at a new revision `<svc>-r<N>`, bad with probability
`--bad-share`. Phases, in order:

1. *kills*: for `--duration` seconds each canary releases revision after revision while a killer
   `kill -9`s the controller at random intervals (`--kill-every MIN:MAX` seconds, at most `--kills`)
   and restarts it; with `--fault-rate P` (devcluster) every create/update/patch/list request fails
   with 500 with probability P meanwhile.
2. *outage* (`--outage S`): while every canary but the first is mid-release, the API server
   process is stopped (SIGSTOP; on the real control plane kube-apiserver's) for S seconds; recovery
   time is from its SIGCONT to the first canary's Canary, given a new revision then, reading
   `Progressing`. `--deadline` must exceed S.
3. *lost state* (`--lost-state`): the API server is killed and a fresh, empty one started on the
   same port (the real control plane: stopped, its etcd data removed, restarted from the same data
   dir so its certificates stay); the objects are re-created; the controller must re-list, initialise them anew
   (never write the status of the objects it knew into them) and release again.

Invariants, checked from the watches: a primary's selector is set to a revision at most once (one
promotion per revision); a bad revision is never promoted; every revision reaches `Succeeded` or
`Failed` within `--deadline` seconds (no stuck canary); after a lost state, the first phase written
into a re-created Canary is `Initializing` or `Initialized`. Prints figures; exits 1 when an
invariant was violated. It never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import CANARY, NAMESPACE, SERVICE
from scale import CONTROLLER_FLAGS, CRD_DIR, ROOT, Process, _environment, free_port

NAMESPACE_NAME = "chaos"
TERMINAL = ("Succeeded", "Failed")
FAULT_VERBS = ("create", "update", "patch", "list")


@dataclass
class Figures:
    cluster: str = "devcluster"
    kills: int = 0
    controller_crashes: int = 0
    releases: int = 0
    promoted: int = 0
    rolled_back: int = 0
    good_rolled_back: int = 0
    faults_injected: int = 0
    outage_seconds: float = 0.0
    outage_recovery_seconds: float | None = None
    outage_log_lines: int | None = None
    lost_state_recreated: int = 0
    controller_log_lines: int = 0
    controller_error_lines: int = 0
    violations: list[str] = field(default_factory=list)


# --- processes --------------------------------------------------------------------------------


def launch(name: str, argv: list[str], log_path: Path, timeout: float) -> tuple[Process, str]:
    """A launcher with devcluster's contract: the first stdout line is the API URL."""
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log_file, env=_environment(), text=True
        )
    process = Process(name, popen, log_path)  # type: ignore[arg-type]
    assert popen.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline and popen.poll() is None:
        line = popen.stdout.readline().strip()
        if line.startswith("http"):
            return process, line
    process.stop()
    raise SystemExit(f"{name} did not start: {line!r}\n{process.tail()}")


def crd_loads() -> list[str]:
    return [
        f"--load={path}"
        for path in sorted(CRD_DIR.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    ]


def start_api_server(kind: str, workdir: Path, port: int = 0) -> tuple[Process, str, Path]:
    kubeconfig = workdir / "kubeconfig"
    common = [f"--port={port}", f"--kubeconfig-out={kubeconfig}", *crd_loads()]
    if kind == "real":
        argv = [str(ROOT / "scripts" / "realcluster"), f"--data-dir={workdir / 'real'}", *common]
        process, url = launch("realcluster", argv, workdir / "realcluster.log", 300)
    else:
        argv = [sys.executable, "-m", "coalmine", "devcluster", "--rollout-delay=0.05", *common]
        process, url = launch("devcluster", argv, workdir / "devcluster.log", 60)
    return process, url, kubeconfig


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below `pid`, from /proc."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append((int(entry.name), comm))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def api_server_pid(kind: str, server: Process) -> int:
    if kind != "real":
        return server.popen.pid
    for pid, comm in descendants(server.popen.pid):
        if comm == "kube-apiserver":
            return pid
    raise SystemExit("no kube-apiserver process below scripts/realcluster")


class Controllers:
    """`coalmine controller`, one process after another; each keeps its own log."""

    def __init__(self, workdir: Path, kubeconfig: Path) -> None:
        self.workdir, self.kubeconfig = workdir, kubeconfig
        self.generation = 0
        self.current: Process | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        self.generation += 1
        log_path = self.workdir / f"controller-{self.generation}.log"
        self.logs.append(log_path)
        flags = [
            f"--kubeconfig={self.kubeconfig}",
            f"--listen-address=127.0.0.1:{free_port()}",
            *CONTROLLER_FLAGS,
            "--control-loop-interval=1s",
        ]
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                [sys.executable, "-m", "coalmine", "controller", *flags],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_environment(),
            )
        self.current = Process("controller", popen, log_path)

    def exited_by_itself(self) -> int | None:
        return None if self.current is None else self.current.popen.poll()

    def kill(self) -> None:
        if self.current is not None and self.current.popen.poll() is None:
            self.current.popen.send_signal(signal.SIGKILL)
            self.current.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()

    def log_lines(self) -> tuple[int, int]:
        """(all lines, ERROR or Traceback lines) over every controller's log."""
        total = errors = 0
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                total += 1
                errors += "ERROR" in line or line.startswith("Traceback")
        return total, errors


# --- the objects -------------------------------------------------------------------------------


def target(name: str, revision: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE_NAME},
        "spec": {"selector": {"app": revision}, "ports": [{"name": "http", "port": 9898}]},
    }


def canary(name: str, webhook_url: str) -> dict[str, Any]:
    hook = {"name": "verdict", "type": "rollout", "url": webhook_url, "timeout": "5s"}
    analysis = {"interval": "1s", "threshold": 2, "iterations": 3, "webhooks": [hook]}
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE_NAME},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 9898},
            "analysis": analysis,
        },
    }


async def retry(what: str, action: Any, limit: float = 60.0) -> Any:
    """The bench's own requests ride out injected faults and outages."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return await action()
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {error}") from error
            await asyncio.sleep(0.2)


# --- watching: the invariants -------------------------------------------------------------------


class Observer:
    """What the watches saw: each canary's status, each primary's promotions."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures
        self.status: dict[str, dict[str, Any]] = {}
        self.first_phase: dict[str, str] = {}
        self.selector: dict[str, str] = {}
        self.promotions: Counter[tuple[int, str]] = Counter()
        self.bad: set[str] = set()
        self.epoch = 0
        self.changed = asyncio.Event()

    def violation(self, text: str) -> None:
        print(f"VIOLATION: {text}", flush=True)
        self.figures.violations.append(text)

    def on_canary(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self.status.pop(name, None)
            return
        status = obj.get("status") or {}
        self.status[name] = status
        if status.get("phase") and name not in self.first_phase:
            self.first_phase[name] = status["phase"]
        self.changed.set()

    def on_service(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if not name.endswith("-primary"):
            return
        if event_type == "DELETED":
            self.selector.pop(name, None)
            return
        revision = ((obj.get("spec") or {}).get("selector") or {}).get("app", "")
        if self.selector.get(name) == revision:
            return
        self.selector[name] = revision
        key = (self.epoch, revision)
        self.promotions[key] += 1
        if self.promotions[key] > 1:
            self.violation(f"{name}: selector set to {revision} {self.promotions[key]} times")
        if revision in self.bad:
            self.violation(f"{name}: bad revision {revision} promoted")

    async def until(self, predicate: Any, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while not predicate():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
        return True


@contextlib.asynccontextmanager
async def watching(kubeconfig: Path, observer: Observer) -> Any:
    api = KubeApi(load_config(str(kubeconfig)))
    canaries = Informer(api, CANARY, NAMESPACE_NAME)
    services = Informer(api, SERVICE, NAMESPACE_NAME)
    canaries.subscribe(observer.on_canary)
    services.subscribe(observer.on_service)
    try:
        for informer in (canaries, services):
            informer.start()
        yield api
    finally:
        for informer in (canaries, services):
            await informer.stop()
        await api.close()


# --- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.rng = random.Random(args.seed)
        self.figures = Figures(cluster=args.cluster)
        self.observer = Observer(self.figures)
        self.names = [f"c{i}" for i in range(args.canaries)]
        self.revision: dict[str, int] = dict.fromkeys(self.names, 0)
        self.stopping = asyncio.Event()
        self.webhook_url = ""

    def current(self, name: str) -> str:
        return f"{name}-r{self.revision[name]}"

    # the rollout webhook: fails while the canary's current revision is bad
    async def verdict(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = str(body.get("name", ""))
        if name in self.revision and self.current(name) in self.observer.bad:
            return web.Response(status=500, text=f"{self.current(name)} is bad")
        return web.Response(text="ok")

    async def create_objects(self, api: KubeApi) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE_NAME}}
        with contextlib.suppress(Exception):
            await api.create(NAMESPACE, namespace)
        for name in self.names:
            await retry("create", lambda n=name: api.create(SERVICE, target(n, self.current(n))))
            await retry("create", lambda n=name: api.create(CANARY, canary(n, self.webhook_url)))

    async def initialised(self) -> str | None:
        """None once every canary is `Initialized`, else what they are after `--deadline`."""
        status = self.observer.status
        if await self.observer.until(
            lambda: all(status.get(n, {}).get("phase") == "Initialized" for n in self.names),
            self.args.deadline,
        ):
            return None
        phases = {n: status.get(n, {}).get("phase") for n in self.names}
        return f"canaries not Initialized in {self.args.deadline}s: {phases}"

    async def release(self, api: KubeApi, name: str, bad: bool) -> bool:
        """One revision to its end; False when it got stuck (a violation)."""
        before = self.observer.status.get(name, {}).get("lastAppliedSpec")
        self.revision[name] += 1
        revision = self.current(name)
        if bad:
            self.observer.bad.add(revision)
        patch = {"spec": {"selector": {"app": revision}}}
        await retry("patch", lambda: api.patch(SERVICE, name, patch, NAMESPACE_NAME))

        def done() -> bool:
            status = self.observer.status.get(name, {})
            changed = status.get("lastAppliedSpec") != before
            return changed and status.get("phase") in TERMINAL

        if not await self.observer.until(done, self.args.deadline):
            phase = self.observer.status.get(name, {}).get("phase")
            self.observer.violation(
                f"{name}: {revision} stuck in {phase} for {self.args.deadline}s"
            )
            return False
        self.count(revision, bad, self.observer.status[name]["phase"])
        return True

    def count(self, revision: str, bad: bool, phase: str) -> None:
        self.figures.releases += 1
        if phase == "Succeeded":
            self.figures.promoted += 1
        else:
            self.figures.rolled_back += 1
            self.figures.good_rolled_back += not bad

    async def release_loop(self, api: KubeApi, name: str) -> None:
        while not self.stopping.is_set():
            if not await self.release(api, name, self.rng.random() < self.args.bad_share):
                return

    async def killer(self, controllers: Controllers) -> None:
        low, high = self.args.kill_every
        while self.figures.kills < self.args.kills:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.rng.uniform(low, high))
            if self.stopping.is_set():
                return
            code = controllers.exited_by_itself()
            if code is not None:
                self.figures.controller_crashes += 1
                print(f"controller exited by itself with {code}", flush=True)
            else:
                controllers.kill()
                self.figures.kills += 1
            controllers.start()

    async def faults(self, session: aiohttp.ClientSession, url: str, on: bool) -> None:
        if not on:
            async with session.get(f"{url}/devcluster/faults") as reply:
                rules = (await reply.json())["rules"]
            self.figures.faults_injected += sum(rule["injected"] for rule in rules)
            await session.delete(f"{url}/devcluster/faults")
            return
        for verb in FAULT_VERBS:
            rule = {"type": "error", "verb": verb, "count": None, "rate": self.args.fault_rate}
            async with session.post(f"{url}/devcluster/faults", json=rule) as reply:
                reply.raise_for_status()

    async def kills_phase(self, api: KubeApi, controllers: Controllers, url: str) -> None:
        use_faults = self.args.fault_rate > 0 and self.args.cluster == "devcluster"
        async with aiohttp.ClientSession() as session:
            if use_faults:
                await self.faults(session, url, on=True)
            loops = [asyncio.create_task(self.release_loop(api, n)) for n in self.names]
            killer = asyncio.create_task(self.killer(controllers))
            await asyncio.sleep(self.args.duration)
            self.stopping.set()
            await killer
            if use_faults:
                await self.faults(session, url, on=False)
            await asyncio.gather(*loops)  # each revision in flight ends, or is stuck
        self.stopping.clear()

    async def outage_phase(self, api: KubeApi, pid: int, controllers: Controllers) -> None:
        seconds = self.args.outage
        # The other canaries are mid-release when the API stops: the controller's writes fail.
        busy = [asyncio.create_task(self.release(api, n, bad=False)) for n in self.names[1:]]
        await asyncio.sleep(1.5)
        lines_before = controllers.log_lines()[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        ended = time.monotonic()
        self.figures.outage_seconds = seconds
        self.figures.outage_log_lines = controllers.log_lines()[0] - lines_before
        name = self.names[0]
        release = asyncio.create_task(self.release(api, name, bad=False))
        while not release.done():  # polled: the bench's own watch may still be backing off
            with contextlib.suppress(Exception):
                status = (await api.get(CANARY, name, NAMESPACE_NAME)).get("status") or {}
                if status.get("phase") == "Progressing":
                    self.figures.outage_recovery_seconds = round(time.monotonic() - ended, 2)
                    break
            await asyncio.sleep(0.1)
        await asyncio.gather(release, *busy)

    async def lost_state_phase(self, servers: list[Process], port: int) -> None:
        """`servers[0]` is replaced by the fresh server at once, so it is stopped whatever happens."""
        server = servers[0]
        if self.args.cluster == "real":
            # The whole control plane stops; it comes back on the same port with its PKI (the
            # controller's credentials stay valid) and without its etcd, as after a restore.
            server.popen.send_signal(signal.SIGTERM)
            server.popen.wait(timeout=60)
            shutil.rmtree(self.workdir / "real" / "etcd")
        else:
            server.popen.send_signal(signal.SIGKILL)
            server.popen.wait(timeout=10)
        servers[0], _, kubeconfig = start_api_server(self.args.cluster, self.workdir, port)
        self.observer.epoch += 1
        self.observer.status.clear()
        self.observer.first_phase.clear()
        self.observer.selector.clear()
        for name in self.names:
            # Initialisation copies whatever the target runs into the primary, unanalysed (as
            # Flagger's first deployment): re-create it at a fresh good revision, not at the last
            # one released, which may be a bad revision that was rolled back.
            self.revision[name] += 1
        async with watching(kubeconfig, self.observer) as api:
            await asyncio.sleep(1.0)  # let the bench's informers list the empty server
            await self.create_objects(api)
            self.figures.lost_state_recreated = len(self.names)
            stuck = await self.initialised()
            if stuck:
                self.observer.violation(f"after the lost state, {stuck}")
                return
            for name in self.names:
                phase = self.observer.first_phase.get(name)
                if phase not in ("Initializing", "Initialized"):
                    self.observer.violation(f"{name}: re-created Canary got {phase} first")
            await asyncio.gather(*(self.release(api, n, bad=False) for n in self.names))

    async def run(self) -> Figures:
        server, url, kubeconfig = start_api_server(self.args.cluster, self.workdir)
        servers = [server]
        port = int(url.rsplit(":", 1)[1])
        controllers = Controllers(self.workdir, kubeconfig)
        app = web.Application()
        app.router.add_post("/rollout", self.verdict)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/rollout"
        try:
            async with watching(kubeconfig, self.observer) as api:
                await self.create_objects(api)
                controllers.start()
                stuck = await self.initialised()
                if stuck:
                    raise SystemExit(stuck)
                await self.kills_phase(api, controllers, url)
                if self.args.outage > 0:
                    pid = api_server_pid(self.args.cluster, server)
                    await self.outage_phase(api, pid, controllers)
            if self.args.lost_state:
                await self.lost_state_phase(servers, port)
        finally:
            controllers.stop()
            servers[0].stop()
            await runner.cleanup()
        lines, errors = controllers.log_lines()
        self.figures.controller_log_lines, self.figures.controller_error_lines = lines, errors
        return self.figures


def report(figures: Figures) -> None:
    recovery = figures.outage_recovery_seconds
    rows = [
        ("cluster", figures.cluster),
        ("kills survived", figures.kills),
        ("controller exits by itself", figures.controller_crashes),
        ("releases completed", figures.releases),
        ("  promoted / rolled back", f"{figures.promoted} / {figures.rolled_back}"),
        ("  good revisions rolled back", figures.good_rolled_back),
        ("faults injected", figures.faults_injected),
        ("outage (s)", figures.outage_seconds),
        ("outage recovery (s)", "-" if recovery is None else recovery),
        ("controller log lines during outage", figures.outage_log_lines),
        ("re-created after lost state", figures.lost_state_recreated),
        ("controller log lines", figures.controller_log_lines),
        ("  of which ERROR/Traceback", figures.controller_error_lines),
        ("invariant violations", len(figures.violations)),
    ]
    for label, value in rows:
        print(f"{label:<40} {value}")
    for violation in figures.violations:
        print(f"  - {violation}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cluster", choices=("devcluster", "real"), default="devcluster")
    parser.add_argument("--canaries", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of kills")
    parser.add_argument("--kills", type=int, default=30, help="at most this many kills")
    parser.add_argument("--kill-every", default="1:5", help="MIN:MAX seconds between kills")
    parser.add_argument("--bad-share", type=float, default=0.3)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="devcluster only")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the API is stopped")
    parser.add_argument("--lost-state", action="store_true", help="restart the API server empty")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per revision")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    low, _, high = args.kill_every.partition(":")
    args.kill_every = (float(low), float(high or low))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs in {workdir}", flush=True)
    figures = asyncio.run(Bench(args, workdir).run())
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
