"""Knative Serving's controller, as much of it as a canary run sees: tests have no Knative.

`reconciled` is the pure core, shared by the router unit tests and `KnativeServing`, the
test-side reconciler that runs it against an API server through the real client:

* a new `spec.template` (a new generation whose template differs from the last one revisioned)
  creates Revision `<name>-0000N`, Ready unless its image says `bad`; `latestCreatedRevisionName`
  names it, `latestReadyRevisionName` follows when it is Ready;
* `status.traffic` resolves `spec.traffic` (`latestRevision: true` → the latest ready revision),
  or is 100 % latest when the Service has no traffic block (Knative's default);
* `observedGeneration` and the `Ready` condition are set as Knative sets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Mapping
from typing import Any

from coalmine.kube.api import Conflict, KubeApi, NotFound, Object
from coalmine.kube.cache import Informer
from coalmine.kube.kinds import KNATIVE_REVISION, KNATIVE_SERVICE

TEMPLATE_ANNOTATION = "test.coalmine.dev/template"


def revision_name(service: Mapping[str, Any], number: int) -> str:
    return f"{service['metadata']['name']}-{number:05d}"


def revision_for(service: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The Revision Knative creates for the Service's template (Ready unless the image is bad)."""
    template = (service.get("spec") or {}).get("template") or {}
    images = [c.get("image", "") for c in (template.get("spec") or {}).get("containers") or []]
    ready = not any("bad" in image for image in images)
    condition: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "False"}
    if not ready:
        condition.update(reason="ContainerMissing", message="image cannot be pulled")
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": name,
            "namespace": service["metadata"].get("namespace", "default"),
            "labels": {"serving.knative.dev/service": service["metadata"]["name"]},
        },
        "spec": copy.deepcopy(template.get("spec") or {"containers": []}),
        "status": {"conditions": [condition]},
    }


def _template_key(service: Mapping[str, Any]) -> str:
    import json

    return json.dumps((service.get("spec") or {}).get("template") or {}, sort_keys=True)


def reconciled(
    service: Mapping[str, Any], known: Mapping[str, bool]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the Service with Knative's status, the Revision to create or None). `known` maps the
    Service's existing revisions to their readiness; the last template revisioned is remembered
    in a status annotation stand-in (`TEMPLATE_ANNOTATION` on the status' own copy)."""
    result = copy.deepcopy(dict(service))
    status = dict(result.get("status") or {})
    new_revision = None
    key = _template_key(service)
    if status.get("annotations", {}).get(TEMPLATE_ANNOTATION) != key or not status.get(
        "latestCreatedRevisionName"
    ):
        name = revision_name(service, len(known) + 1)
        new_revision = revision_for(service, name)
        ready = new_revision["status"]["conditions"][0]["status"] == "True"
        known = {**known, name: ready}
        status["latestCreatedRevisionName"] = name
        if ready:
            status["latestReadyRevisionName"] = name
        status["annotations"] = {TEMPLATE_ANNOTATION: key}
    latest_ready = status.get("latestReadyRevisionName")
    spec_traffic = (result.get("spec") or {}).get("traffic") or [
        {"latestRevision": True, "percent": 100}
    ]
    traffic = []
    for entry in spec_traffic:
        resolved = {k: v for k, v in entry.items() if k in ("tag", "percent")}
        if entry.get("latestRevision") is True:
            resolved.update(revisionName=latest_ready, latestRevision=True)
        else:
            resolved.update(revisionName=entry.get("revisionName"), latestRevision=False)
        traffic.append(resolved)
    status["traffic"] = traffic
    status["observedGeneration"] = (result.get("metadata") or {}).get("generation", 1)
    ready = status.get("latestReadyRevisionName") == status.get("latestCreatedRevisionName")
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    result["status"] = status
    return result, new_revision


class KnativeServing:
    """Reconciles every Knative Service of a namespace the way Knative's controller would.

    `errors` collects the writes that failed (retried); tests show them when they time out."""

    errors: list[str] = []  # shared by every instance of the test session

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.services = Informer(api, KNATIVE_SERVICE, namespace)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.revisions: dict[str, dict[str, bool]] = {}

    def _on_event(self, event_type: str, obj: Object) -> None:
        self._wake.set()

    async def _reconcile(self, name: str) -> None:
        # A GET, not the watch cache: a cached object may predate our own last status write, and
        # reconciling it again would create a second revision for one template.
        service = await self.api.get_or_none(KNATIVE_SERVICE, name, self.namespace)
        if service is None:
            return
        known = self.revisions.setdefault(name, {})
        desired, revision = reconciled(service, known)
        if revision is not None:
            with contextlib.suppress(Conflict):
                await self.api.create(KNATIVE_REVISION, revision)
            ready = revision["status"]["conditions"][0]["status"] == "True"
            known[revision["metadata"]["name"]] = ready
            # A CRD's status is written through its subresource only.
            await self.api.patch(
                KNATIVE_REVISION,
                revision["metadata"]["name"],
                {"status": revision["status"]},
                self.namespace,
                status=True,
            )
        if desired.get("status") != service.get("status"):
            with contextlib.suppress(NotFound):
                await self.api.patch(
                    KNATIVE_SERVICE,
                    name,
                    {"status": desired["status"]},
                    self.namespace,
                    status=True,
                )

    async def _loop(self) -> None:
        """Reconcile on every event; a failed write (a transient API error, a status written
        from a cache that was behind) is retried, as Knative's workqueue would."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for service in self.services.list():
                try:
                    await self._reconcile(service["metadata"]["name"])
                except Exception as error:
                    self.errors.append(repr(error))
                    await asyncio.sleep(0.2)
                    self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KnativeServing]:
        self.services.subscribe(self._on_event)
        self.services.start()
        await self.services.wait_synced()
        self._task = asyncio.create_task(self._loop())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.services.stop()
