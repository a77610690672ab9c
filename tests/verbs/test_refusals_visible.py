"""A refused canary shows where users look: `kubectl get canaries` and the controller's metrics."""

from __future__ import annotations

import asyncio
import re
import subprocess

from binaries import require_binary
from coalmine.controller.runtime import Controller
from coalmine.devcluster.cluster import DevCluster
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, SERVICE

from .rig import Hooks, canary, create, eventually, release, service, wait_phase


async def refused_canary(api: KubeApi) -> None:
    await api.create(SERVICE, service("broken", "blue"))
    bad = canary("broken", stepWeights=[20, 10])
    del bad["spec"]["analysis"]["iterations"]
    await api.create(CANARY, bad)


async def test_kubectl_get_canaries_shows_why_a_canary_is_refused(
    api: KubeApi, controller: Controller, devcluster: DevCluster
) -> None:
    await refused_canary(api)
    await create(api, "fine")
    await wait_phase(api, "Initialized", name="fine")

    async def refused() -> bool:
        obj = await api.get(CANARY, "broken", "default")
        return bool((obj.get("status") or {}).get("conditions"))

    await eventually(refused, what="the refusal")
    table = await asyncio.to_thread(
        subprocess.run,
        [
            require_binary("kubectl"),
            "get",
            "canaries",
            f"--kubeconfig={devcluster.kubeconfig_path}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()}
    assert rows["NAME"][:4] == ["NAME", "STATUS", "WEIGHT", "REFUSED"]
    assert rows["broken"][1] == "InvalidSpec"  # no phase: the reason is the first cell shown
    assert rows["fine"][1:3] == ["Initialized", "0"]
    assert "InvalidSpec" not in " ".join(rows["fine"])


async def test_refused_canaries_are_counted_and_exported_with_their_reason(
    api: KubeApi, controller: Controller
) -> None:
    await refused_canary(api)
    await create(api, "fine")
    await wait_phase(api, "Initialized", name="fine")

    async def exported() -> bool:
        text = controller.metrics.exposition().decode()
        return 'flagger_canary_total{namespace="default"} 2.0' in text

    await eventually(exported, what="flagger_canary_total 2")
    text = controller.metrics.exposition().decode()
    assert (
        'coalmine_canary_refused{name="broken",namespace="default",reason="InvalidSpec"} 1.0'
        in text
    )
    assert 'coalmine_canary_refused{name="fine"' not in text
    await api.delete(CANARY, "broken", "default")

    async def cleared() -> bool:
        return "coalmine_canary_refused{" not in controller.metrics.exposition().decode()

    await eventually(cleared, what="the refusal gauge cleared")


async def test_webhook_failures_and_failed_checks_are_exported(
    api: KubeApi, controller: Controller, hooks: Hooks
) -> None:
    hooks.refusing.add("acceptance")
    await create(api, threshold=2, webhooks=[hooks.hook("acceptance", "rollout")])
    await release(api)
    await wait_phase(api, "Failed")

    async def exported() -> bool:
        text = controller.metrics.exposition().decode()
        return 'coalmine_canary_failed_checks{name="podinfo",namespace="default"}' in text

    await eventually(exported, what="coalmine_canary_failed_checks")
    text = controller.metrics.exposition().decode()
    failures = re.search(
        r'^coalmine_canary_webhook_failures_total\{name="podinfo",namespace="default",'
        r'type="rollout",webhook="acceptance"\} (\d+)',
        text,
        re.MULTILINE,
    )
    assert failures is not None, text
    assert int(failures.group(1)) >= 2
