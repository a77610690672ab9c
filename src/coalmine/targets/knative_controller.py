"""`TargetController` for Knative Service targets (`serving.knative.dev/v1`), Flagger's
`KnativeController`: revisions instead of copies (the builders are in `targets.knative`).

* initialising records the latest created revision as the primary and routes all traffic to it;
* promotion records the latest created revision as the primary;
* readiness is the `Ready` condition of the Revision (primary: the recorded one; canary: the
  latest created); a Revision Knative declared failed (`Ready=False`) cannot become ready by
  waiting, so it is not retriable (docs/decisions.md, 'Knative revisions');
* there is nothing to scale: Knative scales revisions by their traffic.

Every write is a PUT of the whole Knative Service (as Flagger's Update), recomputed on a lost race.
"""

from __future__ import annotations

from collections.abc import Callable

from coalmine.api import naming
from coalmine.api.hashing import release_checksum
from coalmine.api.models import Canary
from coalmine.kube.api import Conflict, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import KNATIVE_REVISION, KNATIVE_SERVICE
from coalmine.targets import knative
from coalmine.targets.base import TargetChanged, TargetFingerprint, TargetMetadata, TargetNotReady
from coalmine.targets.cluster_io import fresh, read, require, revision_of
from coalmine.targets.hashing import knative_hash, knative_revision

WRITE_ATTEMPTS = 3
INITIALIZING_PHASES = ("", "Initializing")


class KnativeTargetController:
    """The Knative Service kind: one object, two revisions, no copies."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx

    async def target(self, canary: Canary) -> Object:
        return await require(
            self.ctx,
            KNATIVE_SERVICE,
            canary.spec.target_ref.name,
            canary.namespace,
            "Knative Service",
        )

    async def _rewrite(self, canary: Canary, change: Callable[[Object], Object | None]) -> None:
        """PUT `change(service)` unless it is None; after a lost race, re-read and recompute."""
        service = await self.target(canary)
        for attempt in range(WRITE_ATTEMPTS):
            wanted = change(service)
            if wanted is None:
                return
            try:
                written = await self.ctx.api.replace(KNATIVE_SERVICE, wanted)
            except Conflict:
                again = await fresh(
                    self.ctx, KNATIVE_SERVICE, canary.spec.target_ref.name, canary.namespace
                )
                if attempt == WRITE_ATTEMPTS - 1 or again is None:
                    raise
                service = again
                continue
            await self.ctx.caches.informer(KNATIVE_SERVICE).observe(written)
            return

    async def _require_ready(self, canary: Canary, name: str) -> None:
        revision = await read(self.ctx, KNATIVE_REVISION, name, canary.namespace)
        where = f"{name}.{canary.namespace}"
        if revision is None:
            raise TargetNotReady(f"Knative Revision {where} get query error: not found")
        status, detail = knative.revision_readiness(revision)
        if status == "True":
            return
        failed = status == "False"
        suffix = f": {detail}" if detail else ""
        raise TargetNotReady(f"Knative Revision {where} is not ready{suffix}", retriable=not failed)

    # --- TargetController ----------------------------------------------------------------------

    async def get_metadata(self, canary: Canary) -> TargetMetadata:
        """No selector label and no ports: Knative routes to revisions, not to pods we label."""
        return TargetMetadata()

    async def initialize(self, canary: Canary) -> None:
        """While initialising: the latest created revision becomes the primary, at 100 %."""
        phase = canary.status.phase if canary.status is not None else ""
        if (phase or "") not in INITIALIZING_PHASES:
            return
        service = await self.target(canary)
        if not knative_revision(service):
            raise TargetNotReady(
                f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} has no "
                "revision yet (status.latestCreatedRevisionName is empty): waiting for Knative"
            )
        await self._rewrite(canary, knative.initialized)

    async def fingerprint(self, canary: Canary) -> TargetFingerprint:
        service = await self.target(canary)
        return TargetFingerprint(
            spec_hash=knative_hash(service),
            tracked_configs=None,
            primary_revision=revision_of(service, naming.PROMOTED_REVISION_ANNOTATION),
            route=knative_revision(service) or None,
        )

    async def is_primary_ready(self, canary: Canary) -> None:
        primary = knative.primary_revision(await self.target(canary))
        if primary is None:
            raise TargetNotReady(
                f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} primary "
                f"revision annotation {knative.PRIMARY_REVISION} not found"
            )
        await self._require_ready(canary, primary)

    async def is_canary_ready(self, canary: Canary) -> None:
        latest = knative_revision(await self.target(canary))
        if not latest:
            raise TargetNotReady(
                f"Knative Service {canary.spec.target_ref.name}.{canary.namespace} has no "
                "revision yet (status.latestCreatedRevisionName is empty)"
            )
        await self._require_ready(canary, latest)

    async def promote(self, canary: Canary, revision: str) -> None:
        """The latest created revision becomes the primary, if it is the analysed one."""
        target_key = f"{canary.spec.target_ref.name}.{canary.namespace}"

        def change(service: Object) -> Object | None:
            current = release_checksum(knative_hash(service), None)
            if current != revision:
                raise TargetChanged(target_key, revision, current)
            return knative.promoted(service, revision)

        await self._rewrite(canary, change)

    async def scale_to_zero(self, canary: Canary) -> None:
        return None

    async def scale_from_zero(self, canary: Canary) -> None:
        return None

    async def finalize(self, canary: Canary) -> None:
        """Nothing of the target to restore here; the router removes the annotations."""
