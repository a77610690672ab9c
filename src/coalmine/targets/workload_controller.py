"""What the Deployment and DaemonSet controllers share: reading the target and its primary,
tracked config copies, creation, promotion with the revision mark, scaling patches and readiness.

The kind-specific parts (which builder, which patch, which readiness) are a handful of methods the
subclasses fill in; everything that talks to the cluster is here once.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from coalmine.api import naming
from coalmine.api.hashing import release_checksum
from coalmine.api.models import INITIALIZING_PHASES, Canary
from coalmine.kube.api import Conflict, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CONFIG_MAP, HPA, SCALED_OBJECT, SECRET, Kind
from coalmine.kube.writes import ensure
from coalmine.targets.base import TargetChanged, TargetFingerprint, TargetMetadata, TargetNotReady
from coalmine.targets.cluster_io import (
    fresh,
    informer_for,
    not_found,
    patch_if_needed,
    read,
    recreate,
    require,
    revision_of,
    with_annotation,
)
from coalmine.targets.configs import (
    TrackedConfigs,
    desired_primary_config,
    primary_config_needs_recreate,
    primary_configs_update,
    resolve_tracked_configs,
    scan_config_refs,
)
from coalmine.targets.errors import TargetError
from coalmine.targets.hashing import workload_hash
from coalmine.targets.readiness import Readiness
from coalmine.targets.workload import WorkloadMetadata, pod_spec_of, workload_metadata

PROMOTE_ATTEMPTS = 3


def is_initializing(canary: Canary) -> bool:
    return ((canary.status.phase if canary.status else None) or "") in INITIALIZING_PHASES


def skips_analysis(canary: Canary) -> bool:
    """Flagger's SkipAnalysis: no analysis section at all counts as skipped."""
    return bool(canary.spec.skip_analysis) or canary.spec.analysis is None


def raise_unless_ready(verdict: Readiness) -> None:
    if not verdict.ready:
        raise TargetNotReady(verdict.message, retriable=verdict.retriable)


class WorkloadController(ABC):
    """A `TargetController` for a workload kind with a `<target>-primary` twin."""

    kind: Kind
    label: str
    """Lower-case kind as Flagger names it in messages (`deployment`, `daemonset`)."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx

    # --- kind-specific -------------------------------------------------------------------------

    @abstractmethod
    def desired_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        meta: WorkloadMetadata,
        tracked: TrackedConfigs | None,
        template_id: str,
    ) -> dict[str, Any]: ...

    @abstractmethod
    def promoted_primary(
        self,
        canary: Canary,
        target: Mapping[str, Any],
        primary: Mapping[str, Any],
        meta: WorkloadMetadata,
        tracked: TrackedConfigs | None,
        template_id: str,
    ) -> dict[str, Any]: ...

    @abstractmethod
    def primary_readiness(self, canary: Canary, primary: Mapping[str, Any]) -> Readiness: ...

    @abstractmethod
    def canary_readiness(self, canary: Canary, target: Mapping[str, Any]) -> Readiness: ...

    @abstractmethod
    def scale_to_zero_patch(self, canary: Canary) -> dict[str, Any]: ...

    @abstractmethod
    async def scale_from_zero_patch(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    @abstractmethod
    async def finalize_patch(self, canary: Canary, target: Mapping[str, Any]) -> dict[str, Any]: ...

    # --- reads ---------------------------------------------------------------------------------

    def _names(self, canary: Canary) -> tuple[str, str]:
        target = canary.spec.target_ref.name
        return target, naming.primary_name(target)

    async def target(self, canary: Canary) -> Object:
        return await require(
            self.ctx, self.kind, canary.spec.target_ref.name, canary.namespace, self.label
        )

    async def primary(self, canary: Canary) -> Object | None:
        return await read(self.ctx, self.kind, self._names(canary)[1], canary.namespace)

    async def autoscaler(self, canary: Canary) -> Object | None:
        """The target's HPA or ScaledObject, when the Canary names one and it exists."""
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return None
        kind = HPA if ref.kind == "HorizontalPodAutoscaler" else SCALED_OBJECT
        return await read(self.ctx, kind, ref.name, canary.namespace)

    def metadata_of(self, canary: Canary, target: Mapping[str, Any]) -> WorkloadMetadata:
        return workload_metadata(canary, target, self.ctx.selector_labels)

    async def tracked_configs(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> TrackedConfigs | None:
        """The tracked ConfigMaps/Secrets of the target's pod spec (None with tracking off)."""
        if not self.ctx.config_tracking:
            return None
        pod_spec = pod_spec_of(target)
        refs = scan_config_refs(pod_spec)
        found: dict[str, dict[str, Mapping[str, Any]]] = {"configmap": {}, "secret": {}}
        for ref in refs:
            kind = CONFIG_MAP if ref.kind == "configmap" else SECRET
            obj = await read(self.ctx, kind, ref.name, canary.namespace)
            if obj is not None:
                found[ref.kind][ref.name] = obj
        return resolve_tracked_configs(
            pod_spec, canary.namespace, found["configmap"], found["secret"]
        )

    # --- writes --------------------------------------------------------------------------------

    async def sync_config_copies(self, canary: Canary, tracked: TrackedConfigs | None) -> None:
        """Create or update the `<name>-primary` copies of the tracked configs (on difference)."""
        if not tracked:
            return
        prefixes = self.ctx.include_label_prefixes
        sources = [(CONFIG_MAP, s) for s in tracked.configmaps.values()]
        sources += [(SECRET, s) for s in tracked.secrets.values()]
        for kind, source in sources:
            informer = await informer_for(self.ctx, kind)
            name = naming.primary_name(source["metadata"]["name"])
            existing = informer.get(name, canary.namespace)
            desired = desired_primary_config(canary, source, existing, prefixes)
            if existing is not None and primary_config_needs_recreate(desired, existing):
                await recreate(self.ctx, kind, desired)
                continue

            def update(_: Object, actual: Object, source: Mapping[str, Any] = source) -> Any:
                wanted = desired_primary_config(canary, source, actual, prefixes)
                return primary_configs_update(wanted, actual)

            await ensure(self.ctx.api, informer, desired, update)

    # --- TargetController ----------------------------------------------------------------------

    async def get_metadata(self, canary: Canary) -> TargetMetadata:
        meta = self.metadata_of(canary, await self.target(canary))
        return TargetMetadata(meta.label, meta.label_value, dict(meta.ports))

    async def initialize(self, canary: Canary) -> None:
        target = await self.target(canary)
        primary = await self.primary(canary)
        if primary is None:
            try:
                meta = self.metadata_of(canary, target)
                tracked = await self.tracked_configs(canary, target)
                desired = self.desired_primary(canary, target, meta, tracked, str(uuid.uuid4()))
            except TargetError as error:
                # Flagger: a primary that cannot be created is retriable (the user fixes it).
                raise TargetError(error.message, retriable=True) from error
            await self.sync_config_copies(canary, tracked)
            informer = await informer_for(self.ctx, self.kind)
            primary = await ensure(self.ctx.api, informer, desired, None)
        if is_initializing(canary) and not skips_analysis(canary):
            raise_unless_ready(self.primary_readiness(canary, primary))

    async def fingerprint(self, canary: Canary) -> TargetFingerprint:
        target = await self.target(canary)
        tracked = await self.tracked_configs(canary, target)
        return TargetFingerprint(
            spec_hash=workload_hash(target),
            tracked_configs=None if tracked is None else tracked.checksums(),
            primary_revision=revision_of(
                await self.primary(canary), naming.PROMOTED_REVISION_ANNOTATION
            ),
        )

    async def is_primary_ready(self, canary: Canary) -> None:
        primary = await self.primary(canary)
        if primary is None:
            raise not_found(self.label, self._names(canary)[1], canary.namespace)
        raise_unless_ready(self.primary_readiness(canary, primary))

    async def is_canary_ready(self, canary: Canary) -> None:
        raise_unless_ready(self.canary_readiness(canary, await self.target(canary)))

    async def promote(self, canary: Canary, revision: str) -> None:
        """Target spec and configs onto the primary, with the revision, in one Update."""
        primary_name = self._names(canary)[1]
        primary = await self.primary(canary)
        for attempt in range(PROMOTE_ATTEMPTS):
            if primary is None:
                raise not_found(self.label, primary_name, canary.namespace)
            target = await self.target(canary)
            meta = self.metadata_of(canary, target)
            tracked = await self.tracked_configs(canary, target)
            current = release_checksum(
                workload_hash(target), None if tracked is None else tracked.checksums()
            )
            if current != revision:
                name = target["metadata"]["name"]
                raise TargetChanged(f"{name}.{canary.namespace}", revision, current)
            await self.sync_config_copies(canary, tracked)
            promoted = self.promoted_primary(
                canary, target, primary, meta, tracked, str(uuid.uuid4())
            )
            with_annotation(promoted, naming.PROMOTED_REVISION_ANNOTATION, revision)
            try:
                written = await self.ctx.api.replace(self.kind, promoted)
            except Conflict:
                if attempt == PROMOTE_ATTEMPTS - 1:
                    raise
                primary = await fresh(self.ctx, self.kind, primary_name, canary.namespace)
                continue
            await self.ctx.caches.informer(self.kind).observe(written)
            return

    async def scale_to_zero(self, canary: Canary) -> None:
        await patch_if_needed(
            self.ctx, self.kind, await self.target(canary), self.scale_to_zero_patch(canary)
        )

    async def scale_from_zero(self, canary: Canary) -> None:
        target = await self.target(canary)
        await patch_if_needed(
            self.ctx, self.kind, target, await self.scale_from_zero_patch(canary, target)
        )

    async def finalize(self, canary: Canary) -> None:
        target = await self.target(canary)
        await patch_if_needed(
            self.ctx, self.kind, target, await self.finalize_patch(canary, target)
        )
