"""`kubectl coalmine …`: kubectl finds the plugin on the PATH, runs it and completes its words."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from binaries import require_binary
from coalmine.devcluster.cluster import DevCluster
from inprocess import cluster_api


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with the environment's scripts (kubectl-coalmine among them) first on the PATH."""
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [require_binary("kubectl"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_kubectl_lists_the_plugin() -> None:
    listed = kubectl("plugin", "list")
    assert listed.returncode == 0, listed.stderr
    assert "kubectl-coalmine" in listed.stdout


async def test_kubectl_coalmine_status_reads_the_cluster(devcluster: DevCluster) -> None:
    async with cluster_api(devcluster):  # the CRDs
        # devcluster serves from this event loop: kubectl runs in a thread.
        result = await asyncio.to_thread(
            kubectl,
            "coalmine",
            "status",
            "-o",
            "json",
            f"--kubeconfig={devcluster.kubeconfig_path}",
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"] == []
    usage = kubectl("coalmine", "status", "--help")
    assert usage.stdout.startswith("usage: kubectl coalmine status")


def test_kubectl_completes_the_plugins_commands_and_flags() -> None:
    commands = kubectl("__complete", "coalmine", "sta")
    assert commands.stdout.splitlines()[0] == "status", commands.stdout
    flags = kubectl("__complete", "coalmine", "status", "--out")
    assert "--output" in flags.stdout.splitlines()


def test_the_completion_script_covers_both_programs() -> None:
    script = subprocess.run(
        [sys.executable, "-m", "coalmine", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "complete" in script
    assert "kubectl-coalmine" in script
    assert "coalmine" in script


async def test_kubectl_completes_canary_names_from_the_cluster(devcluster: DevCluster) -> None:
    from coalmine.kube.kinds import CANARY, SERVICE

    async with cluster_api(devcluster) as api:
        await api.create(
            SERVICE,
            {
                "metadata": {"name": "podinfo", "namespace": "default"},
                "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 80}]},
            },
        )
        for name in ("podinfo", "payments"):
            await api.create(
                CANARY,
                {
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {
                        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
                        "analysis": {"interval": "1m", "threshold": 1, "iterations": 1},
                    },
                },
            )
        kubeconfig = f"--kubeconfig={devcluster.kubeconfig_path}"
        words = await asyncio.to_thread(
            kubectl, "__complete", "coalmine", "promote", kubeconfig, "p"
        )
        assert words.stdout.splitlines()[:2] == ["payments", "podinfo"], words.stdout
        only = await asyncio.to_thread(
            kubectl, "__complete", "coalmine", "status", kubeconfig, "pa"
        )
        assert only.stdout.splitlines()[0] == "payments"
