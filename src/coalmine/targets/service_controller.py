"""`TargetController` for core `v1` Service targets: the `<apex>-canary` and `<apex>-primary`
copies of the user's Service (the builders are in `targets.service`).

* `<apex>-canary` follows the target on every `initialize`, written only when it differs;
* `<apex>-primary` is created once and rewritten only by `promote`;
* a copy no Update can reshape (headless ↔ allocated IP, IP family, `loadBalancerClass`) is
  deleted and created again;
* there is nothing to scale and nothing to wait for: readiness is always given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api import naming
from coalmine.api.hashing import release_checksum
from coalmine.api.models import Canary
from coalmine.kube.api import Conflict, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import SERVICE
from coalmine.kube.writes import ensure, version
from coalmine.targets.base import TargetChanged, TargetFingerprint, TargetMetadata
from coalmine.targets.baseline_controller import BaselineController
from coalmine.targets.cluster_io import (
    fresh,
    informer_for,
    read,
    recreate,
    require,
    revision_of,
    with_annotation,
)
from coalmine.targets.hashing import service_hash
from coalmine.targets.service import (
    desired_service_copy,
    keeps_type,
    service_copy_names,
    service_copy_needs_recreate,
    service_copy_update,
)

PROMOTE_ATTEMPTS = 3


def _inputs(canary: Canary, target: Mapping[str, Any], copy: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a copy's desired shape is built from: the canary's spec (its generation) and the
    annotation that keeps the type, its uid (the owner reference), the target, and the copy."""
    return (
        canary.metadata.uid,
        canary.metadata.generation,
        keeps_type(canary),
        version(target),
        version(copy),
    )


class ServiceTargetController:
    """The Service kind: copies instead of workloads; no readiness gate, no scaling."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx
        self.baseline = BaselineController(ctx)

    async def target(self, canary: Canary) -> Object:
        return await require(
            self.ctx, SERVICE, canary.spec.target_ref.name, canary.namespace, "service"
        )

    def _copy(
        self, canary: Canary, target: Mapping[str, Any], name: str, existing: Object | None
    ) -> dict[str, Any]:
        return desired_service_copy(canary, target, name, existing, self.ctx.include_label_prefixes)

    async def _reconcile_copy(
        self, canary: Canary, target: Mapping[str, Any], name: str, *, update: bool
    ) -> Object:
        """Create the copy `name` if missing; with `update`, also bring it to the target's shape."""
        informer = await informer_for(self.ctx, SERVICE)
        existing = await read(self.ctx, SERVICE, name, canary.namespace)
        if existing is not None and not update:
            return existing
        key = ("Service", canary.namespace, name)
        if existing is not None and self.ctx.in_shape.holds(key, _inputs(canary, target, existing)):
            return existing
        if existing is not None and service_copy_needs_recreate(target, existing):
            written = await recreate(self.ctx, SERVICE, self._copy(canary, target, name, None))
        else:

            def rewrite(_: Object, actual: Object) -> Object | None:
                return service_copy_update(self._copy(canary, target, name, actual), actual)

            desired = self._copy(canary, target, name, None)
            written = await ensure(self.ctx.api, informer, desired, rewrite)
        self.ctx.in_shape.remember(key, _inputs(canary, target, written))
        return written

    # --- TargetController ----------------------------------------------------------------------

    async def get_metadata(self, canary: Canary) -> TargetMetadata:
        """No selector label: the Kubernetes service router is a no-op for Service targets."""
        return TargetMetadata()

    async def initialize(self, canary: Canary) -> None:
        target = await self.target(canary)
        primary_name, canary_name = service_copy_names(canary)
        await self._reconcile_copy(canary, target, canary_name, update=True)
        await self._reconcile_copy(canary, target, primary_name, update=False)
        await self.baseline.remove_unwanted(canary)

    async def fingerprint(self, canary: Canary) -> TargetFingerprint:
        target = await self.target(canary)
        primary = await read(self.ctx, SERVICE, service_copy_names(canary)[0], canary.namespace)
        return TargetFingerprint(
            spec_hash=service_hash(target),
            tracked_configs=None,
            primary_revision=revision_of(primary, naming.PROMOTED_REVISION_ANNOTATION),
        )

    async def is_primary_ready(self, canary: Canary) -> None:
        return None

    async def is_canary_ready(self, canary: Canary) -> None:
        """Nothing to wait for; a fresh baseline's Service copy is made here while a run
        analyses (targets.baseline_controller)."""
        await self.baseline.ensure_service(canary, None)

    async def promote(self, canary: Canary, revision: str) -> None:
        """The target's spec onto `<apex>-primary` (its own IPs and ports kept), with the revision.

        The primary stays owned by the Canary (see docs/decisions.md, 'Primary ownership').
        """
        name = service_copy_names(canary)[0]
        namespace = canary.namespace
        primary = await read(self.ctx, SERVICE, name, namespace)
        for attempt in range(PROMOTE_ATTEMPTS):
            target = await self.target(canary)
            current = release_checksum(service_hash(target), None)
            if current != revision:
                raise TargetChanged(f"{target['metadata']['name']}.{namespace}", revision, current)
            if primary is None or service_copy_needs_recreate(target, primary):
                desired = self._copy(canary, target, name, None)
                with_annotation(desired, naming.PROMOTED_REVISION_ANNOTATION, revision)
                if primary is None:
                    informer = await informer_for(self.ctx, SERVICE)
                    created = await ensure(self.ctx.api, informer, desired, None)
                    if revision_of(created, naming.PROMOTED_REVISION_ANNOTATION) == revision:
                        return
                    primary = created
                    continue
                await recreate(self.ctx, SERVICE, desired)
                return
            desired = with_annotation(
                self._copy(canary, target, name, primary),
                naming.PROMOTED_REVISION_ANNOTATION,
                revision,
            )
            wanted = service_copy_update(desired, primary)
            if wanted is None:
                return
            try:
                written = await self.ctx.api.replace(SERVICE, wanted)
            except Conflict:
                if attempt == PROMOTE_ATTEMPTS - 1:
                    raise
                primary = await fresh(self.ctx, SERVICE, name, namespace)
                continue
            await self.ctx.caches.informer(SERVICE).observe(written)
            return

    async def scale_to_zero(self, canary: Canary) -> None:
        await self.baseline.remove(canary)

    async def scale_from_zero(self, canary: Canary) -> None:
        return None

    async def finalize(self, canary: Canary) -> None:
        await self.baseline.remove(canary)
