"""`coalmine controller --help` says what the flags do, each default once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from coalmine.kube.api import load_config


def controller_help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "controller", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "1000", "PATH": "/usr/bin:/bin"},
    )
    return result.stdout


def test_every_flag_states_its_default_at_most_once_and_no_empty_default() -> None:
    for line in controller_help().splitlines():
        if line.strip().startswith("--"):
            assert line.count("default:") <= 1, line
            assert "(default: ;" not in line, line


def test_the_kubeconfig_help_says_kubeconfig_is_used_before_in_cluster() -> None:
    text = " ".join(controller_help().split())
    assert re.search(
        r"--kubeconfig KUBECONFIG kubeconfig file; when empty: \$KUBECONFIG if set", text
    )


def test_an_empty_kubeconfig_uses_the_kubeconfig_variable_even_inside_a_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    config = load_config("")
    selected = config.get() if hasattr(config, "get") else config
    assert selected is not None
    assert selected.cluster.server == "https://127.0.0.1:6443"
