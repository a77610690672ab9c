"""The shipped load tester manifests and image agree with the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coalmine.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "loadtester"


def manifests() -> dict[str, Any]:
    with (DEPLOY / "loadtester.yaml").open() as stream:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(stream)}


def test_manifest_args_are_accepted_by_the_cli_and_probes_hit_healthz() -> None:
    docs = manifests()
    assert set(docs) == {"ServiceAccount", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(["loadtester", *container["args"]])
    assert args.port == container["ports"][0]["containerPort"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_service_keeps_flaggers_name_and_reaches_the_container_port() -> None:
    docs = manifests()
    service = docs["Service"]
    assert service["metadata"]["name"] == "flagger-loadtester"
    assert service["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_image_runs_the_loadtester_as_non_root_with_hey() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "coalmine", "loadtester"]' in dockerfile
    assert "USER 10001" in dockerfile
    assert " hey " in dockerfile
