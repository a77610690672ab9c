"""`coalmine crds` prints the generated CRDs."""

from __future__ import annotations

import subprocess
import sys

import yaml

from coalmine.api.crds import render_all


def test_crds_command_prints_the_three_crds_as_multi_document_yaml() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "crds"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout == render_all()
    kinds = [doc["spec"]["names"]["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert kinds == ["Canary", "MetricTemplate", "AlertProvider"]
