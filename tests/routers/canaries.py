"""Canary objects shared by the router tests (the podinfo canary of Flagger's router tests), and
the checks several router tests make of them."""

from __future__ import annotations

from typing import Any

from coalmine.api.models import Canary
from coalmine.routers.common import Delete, ObjectRef, PureRouter
from coalmine.routers.verdict import Options, compatibility


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


def apply(existing: list[dict[str, Any]], writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects after the writes, as the API server would store them (replace by kind/name),
    with a bumped generation so Gateway API status gating can be exercised."""
    result = [dict(obj) for obj in existing]
    for obj in writes:
        key = (obj["kind"], obj["metadata"]["name"])
        for index, current in enumerate(result):
            if (current["kind"], current["metadata"]["name"]) == key:
                generation = int(current["metadata"].get("generation", 1)) + 1
                result[index] = {**obj, "metadata": {**obj["metadata"], "generation": generation}}
                break
        else:
            result.append({**obj, "metadata": {**obj["metadata"], "generation": 1}})
    return result


def with_status(canary: Canary, **status: Any) -> Canary:
    """The same Canary with status fields set (camelCase keys), as the controller stores them."""
    body = canary.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["status"] = {**body.get("status", {}), **status}
    return Canary.model_validate(body)


def severities(canary: Canary) -> dict[str, str]:
    """Path → severity of what the verdict says of the Canary (default options)."""
    return {p.path: p.severity for p in compatibility(canary, Options())}


def assert_finalize_deletes_canary_ingress(
    router: PureRouter, canary: Canary, source: dict[str, Any]
) -> None:
    """A canary-Ingress router deletes `podinfo-canary` on finalize, and has nothing to delete
    when it was never created."""
    existing = apply([source], router.reconcile(canary, [source]))
    assert router.finalize(canary, existing) == [
        Delete(ObjectRef("networking.k8s.io/v1", "Ingress", "podinfo-canary", "default"))
    ]
    assert router.finalize(canary, [source]) == []
