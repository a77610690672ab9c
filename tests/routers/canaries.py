"""Canary objects shared by the router tests (the podinfo canary of Flagger's router tests)."""

from __future__ import annotations

from typing import Any

from coalmine.api.models import Canary


def make_canary(
    *,
    service: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    target_kind: str = "Deployment",
    provider: str | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {
            "apiVersion": "v1" if target_kind == "Service" else "apps/v1",
            "kind": target_kind,
            "name": "podinfo",
        },
        "service": {"port": 9898, **(service or {})},
        "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 20, **(analysis or {})},
    }
    if provider:
        spec["provider"] = provider
    spec.update(extra_spec or {})
    body: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "default", "uid": "0b1c-uid"},
        "spec": spec,
    }
    if status:
        body["status"] = status
    return Canary.model_validate(body)
