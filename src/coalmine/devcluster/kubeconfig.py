"""The kubeconfig devcluster writes: one cluster, one user, one context named `devcluster`.

Plain HTTP on loopback (no TLS), so every client (lightkube, kubectl, kubernetes_asyncio, kopf)
can use it without certificates; the user carries the bearer token when one is configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "devcluster"


def kubeconfig(url: str, token: str | None = None, namespace: str = "default") -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], url: str, token: str | None = None) -> Path:
    """Write atomically (readers polling for the file never see half of it); mode 0600."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(yaml.safe_dump(kubeconfig(url, token), sort_keys=False))
    temporary.chmod(0o600)
    temporary.replace(target)
    return target
