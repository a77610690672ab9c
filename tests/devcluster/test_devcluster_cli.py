"""`coalmine devcluster` as a process: URL line, kubeconfig, --load, --token, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine.devcluster.testing import (
    DevClusterProcess,
    start_devcluster_process,
    stop_devcluster_process,
)

from .dchelpers import WIDGET_CRD, widget


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_process_prints_its_url_and_writes_a_kubeconfig(
    devcluster_process: DevClusterProcess,
) -> None:
    assert devcluster_process.url.startswith("http://127.0.0.1:")
    config = yaml.safe_load(devcluster_process.kubeconfig_path.read_text())
    assert config["current-context"] == "devcluster"
    assert config["clusters"][0]["cluster"]["server"] == devcluster_process.url
    status, body = get(f"{devcluster_process.url}/version")
    assert status == 200
    assert body["major"] == "1"


def test_sigterm_and_sigint_exit_cleanly(tmp_path: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        server = start_devcluster_process(tmp_path / f"kc-{signum}")
        server.process.send_signal(signum)
        assert server.process.wait(timeout=10) == 0
        stop_devcluster_process(server)


def test_load_applies_crds_before_their_objects(tmp_path: Path) -> None:
    manifest = tmp_path / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all([widget("loaded"), WIDGET_CRD]))
    server = start_devcluster_process(tmp_path / "kc", "--load", str(manifest), "--no-simulator")
    try:
        status, body = get(f"{server.url}/apis/example.com/v1/namespaces/default/widgets/loaded")
        assert status == 200
        assert body["spec"] == {"size": 3, "replicas": 1, "color": "red"}
    finally:
        assert stop_devcluster_process(server) == 0


def test_token_is_required_and_written_to_the_kubeconfig(tmp_path: Path) -> None:
    server = start_devcluster_process(tmp_path / "kc", "--token", "t0ken")
    try:
        assert get(f"{server.url}/api/v1/namespaces")[0] == 401
        assert get(f"{server.url}/api/v1/namespaces", token="t0ken")[0] == 200
        config = yaml.safe_load(server.kubeconfig_path.read_text())
        assert config["users"][0]["user"] == {"token": "t0ken"}
    finally:
        stop_devcluster_process(server)


def test_bad_load_file_fails_with_a_message(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    )
    with pytest.raises(RuntimeError, match="is invalid"):
        start_devcluster_process(tmp_path / "kc", "--load", str(manifest))


def test_a_taken_port_fails_with_a_message(
    devcluster_process: DevClusterProcess, tmp_path: Path
) -> None:
    port = devcluster_process.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coalmine",
            "devcluster",
            "--port",
            port,
            "--kubeconfig-out",
            str(tmp_path / "kc"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""
