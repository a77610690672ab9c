"""The scheduler's `ActionLog` on the Kubernetes API: release verbs acknowledged in annotations.

The acknowledgement is a merge patch of the Canary's metadata (not the status subresource, which
ignores metadata), so the `coalmine` CLI waiting on `coalmine.dev/handled-action` sees it, and
GitOps tools that own the spec have nothing to revert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches
from coalmine.kube.kinds import CANARY

if TYPE_CHECKING:
    from coalmine.scheduler.ports import ActionLog

# The annotations whose change must run a cycle at once (metadata changes keep the generation).
TRIGGER_ANNOTATIONS: tuple[str, ...] = (
    naming.ACTION_ID_ANNOTATION,
    naming.PAUSED_ANNOTATION,
)


class KubeActionLog:
    def __init__(self, api: KubeApi, caches: Caches) -> None:
        self.api = api
        self.caches = caches

    async def handled(self, canary: Canary, annotations: dict[str, str]) -> Canary:
        patch = {"metadata": {"annotations": annotations}}
        written = await self.api.patch(CANARY, canary.name, patch, canary.namespace)
        await self.caches[CANARY].observe(written)
        stored = dict((written.get("metadata") or {}).get("annotations") or {})
        metadata = canary.metadata.model_copy(
            update={
                "annotations": stored,
                "resource_version": written.get("metadata", {}).get("resourceVersion"),
            }
        )
        return canary.model_copy(update={"metadata": metadata})


def verb_annotations_changed(previous: Canary, current: Canary) -> bool:
    """A new request or a pause/resume: the canary's job must run now, not at the next tick."""
    before: Mapping[str, str] = previous.metadata.annotations or {}
    after: Mapping[str, str] = current.metadata.annotations or {}
    return any(before.get(key) != after.get(key) for key in TRIGGER_ANNOTATIONS)


if TYPE_CHECKING:
    _ACTION_LOG: type[ActionLog] = KubeActionLog
