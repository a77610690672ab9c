"""A fresh baseline's I/O (builders in `targets.baseline`): created and kept at the canary's size
while a run analyses, waited for before the analysis, removed when the run ends.

The target controllers call it from their seam methods, so the scheduler needs no new step:
`is_canary_ready` (every analysing cycle, before any check) ensures the baseline and raises
`TargetNotReady` until it is rolled out; `scale_to_zero` (promotion, rollback, the idle target)
and `finalize` remove it; `initialize` (every cycle) removes one the phase does not want, which
is what makes a controller that restarted between a run's end and the removal clean up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from coalmine.api import naming
from coalmine.api.models import Canary
from coalmine.kube.api import NotFound, Object
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import DEPLOYMENT, SERVICE, Kind
from coalmine.kube.writes import ensure
from coalmine.targets.base import TargetNotReady
from coalmine.targets.baseline import (
    baseline_deployment_update,
    baseline_kept,
    baseline_wanted,
    desired_baseline_deployment,
    desired_baseline_service,
)
from coalmine.targets.cluster_io import informer_for, read
from coalmine.targets.labels import is_owned_by
from coalmine.targets.readiness import deployment_readiness
from coalmine.targets.service import service_copy_update


class BaselineController:
    """`<target>-baseline` Deployment (Deployment targets) and `<apex>-baseline` Service."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx

    def _names(self, canary: Canary) -> tuple[str, str]:
        return (
            naming.baseline_name(canary.spec.target_ref.name),
            naming.baseline_name(canary.spec.apex_name),
        )

    async def ensure_service(self, canary: Canary, selector: Mapping[str, str] | None) -> None:
        """`<apex>-baseline` from `<apex>-primary` (which the cycle made before); nothing
        unless a run analyses with a baseline."""
        if not baseline_wanted(canary):
            return
        primary_name = naming.primary_name(canary.spec.apex_name)
        primary = await read(self.ctx, SERVICE, primary_name, canary.namespace)
        if primary is None:
            raise TargetNotReady(
                f"baseline service waits for {primary_name}.{canary.namespace}: not found"
            )
        prefixes = self.ctx.include_label_prefixes
        desired = desired_baseline_service(canary, primary, prefixes, selector)

        def update(_: Object, actual: Object) -> Object | None:
            wanted = desired_baseline_service(canary, primary, prefixes, selector, actual)
            return service_copy_update(wanted, actual)

        await ensure(self.ctx.api, await informer_for(self.ctx, SERVICE), desired, update)

    async def ensure_deployment(
        self, canary: Canary, target: Mapping[str, Any], label: str, label_value: str
    ) -> None:
        """`<target>-baseline` at the canary's replicas, ready before the analysis uses it;
        nothing unless a run analyses with a baseline."""
        if not baseline_wanted(canary):
            return
        name = self._names(canary)[0]
        primary_name = naming.primary_name(canary.spec.target_ref.name)
        primary = await read(self.ctx, DEPLOYMENT, primary_name, canary.namespace)
        if primary is None:
            raise TargetNotReady(f"baseline waits for {primary_name}.{canary.namespace}")
        replicas = int((target.get("spec") or {}).get("replicas") or 1)
        desired = desired_baseline_deployment(canary, primary, label, label_value, replicas)
        informer = await informer_for(self.ctx, DEPLOYMENT)
        written = await ensure(self.ctx.api, informer, desired, baseline_deployment_update)
        analysis = canary.spec.analysis
        threshold = analysis.effective_canary_ready_threshold if analysis else 100
        verdict = deployment_readiness(
            written, canary.spec.effective_progress_deadline_seconds, threshold, self.ctx.now()
        ).wrapped(f"baseline deployment {name}.{canary.namespace} not ready: ")
        if not verdict.ready:
            raise TargetNotReady(verdict.message, retriable=verdict.retriable)

    async def remove(self, canary: Canary) -> None:
        """Delete the baseline objects this Canary owns (none: no request beyond cache reads)."""
        await self._remove(canary, ask_server=canary.spec.wants_baseline)

    async def remove_unwanted(self, canary: Canary) -> None:
        """The clean-up of `initialize`: a baseline outside an analysing run goes. Canaries that
        never asked for one are checked in the cache only (no request per cycle)."""
        if not baseline_kept(canary):
            await self._remove(canary, ask_server=canary.spec.wants_baseline)

    async def _remove(self, canary: Canary, *, ask_server: bool) -> None:
        deployment, service = self._names(canary)
        kinds = [(SERVICE, service)]
        if canary.spec.target_ref.kind == "Deployment":
            kinds.insert(0, (DEPLOYMENT, deployment))
        for kind, name in kinds:
            await self._delete_owned(canary, kind, name, ask_server)

    async def _delete_owned(self, canary: Canary, kind: Kind, name: str, ask_server: bool) -> None:
        informer = await informer_for(self.ctx, kind)
        found = informer.get(name, canary.namespace)
        if found is None and ask_server and not informer.complete:
            found = await read(self.ctx, kind, name, canary.namespace)
        if found is None or not is_owned_by(found, canary.name):
            return
        with contextlib.suppress(NotFound):
            await self.ctx.api.delete(kind, name, canary.namespace)
        await informer.forget(name, canary.namespace)
