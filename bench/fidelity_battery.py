"""The cases of `bench/fidelity.py`: what the controller, the demo and our docs' kubectl commands do,
and the edges where an API server reimplementation usually differs.

Each case is an async function of a `Run` (one cluster, one fresh namespace `run.ns`); it sends
requests with `run.req` (recorded), `run.poll` (for what controllers do asynchronously) and
`run.kubectl`. Cases are grouped by topic in `fidelity_cases_*.py`; this module collects them.
"""

from __future__ import annotations

from typing import Any

from fidelity import Case, CaseFn, Options

CASES: list[Case] = []

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPS = "apps/v1"


def case(
    name: str, keep_status: bool = False, keep_managed: bool = False, keep: tuple[str, ...] = ()
) -> Any:
    def register(fn: CaseFn) -> CaseFn:
        CASES.append(Case(name, fn, Options(keep_status, keep_managed, keep)))
        return fn

    return register


def add(name: str, fn: CaseFn, **options: Any) -> None:
    CASES.append(Case(name, fn, Options(**options)))


# --- sample objects ------------------------------------------------------------------------------
def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **meta},
        "data": data if data is not None else {"a": "1"},
    }


def pod_template(app: str, image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image, **spec}]},
    }


def deployment(name: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
            **spec,
        },
    }


def daemonset(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": APPS,
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
            **spec,
        },
    }


def service(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def import_all() -> None:
    import fidelity_cases_core
    import fidelity_cases_edges
    import fidelity_cases_kubectl
    import fidelity_cases_services

    del fidelity_cases_core, fidelity_cases_edges, fidelity_cases_kubectl, fidelity_cases_services


import_all()
