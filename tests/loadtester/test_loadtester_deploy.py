"""The shipped load tester manifests and image agree with the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from coalmine.cli import build_parser
from coalmine.loadtester import DEFAULT_ALLOWED_PROGRAMS

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


DEBIAN_PACKAGES = {
    "hey": "hey",
    "wrk": "wrk",
    "curl": "curl",
    "jq": "jq",
    "bats": "bats",
    "kubectl": "kubernetes-client",
}
IN_THE_BASE_IMAGE = {"grep", "sleep", "test"}
NOT_IN_DEBIAN = {"ghz", "grpc_health_probe", "helm"}


def test_image_installs_the_default_programs_debian_packages() -> None:
    assert set(DEFAULT_ALLOWED_PROGRAMS) == set(DEBIAN_PACKAGES) | IN_THE_BASE_IMAGE | NOT_IN_DEBIAN
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (install,) = re.findall(
        r"apt-get install -y --no-install-recommends \\\n\s+([^\\]+)", dockerfile
    )
    assert set(DEBIAN_PACKAGES.values()) <= set(install.split())
    docs = (DEPLOY.parents[1] / "docs" / "loadtester.md").read_text()
    for program in NOT_IN_DEBIAN:
        assert program in docs
