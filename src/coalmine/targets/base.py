"""The seam between the scheduler and a target kind (Deployment, DaemonSet, Service).

One implementation per kind. The scheduler decides *when* to initialise, promote or scale; the kind
decides *how*. Every method is async and reads from the watch cache / writes through the client.

Errors: a method that cannot do its job raises. `TargetNotReady` (and any exception carrying a
`retriable` attribute) tells the scheduler whether waiting can fix it; anything else is treated as
retriable: the scheduler records a Warning event with the text and tries again next cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coalmine.api.models import Canary


class TargetNotReady(Exception):
    """A readiness (or initialisation) verdict: `retriable=False` means waiting cannot help.

    The message is Flagger's, e.g. `podinfo-primary.default not ready: waiting for rollout to
    finish: 0 out of 1 new replicas have been updated`; the scheduler records it verbatim.
    """

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retriable = retriable


class TargetChanged(Exception):
    """The target changed between its analysis and its promotion: the revision on hand is not
    the one that was analysed, so it is not copied onto the primary. The next cycle sees the new
    revision and analyses it from the start."""

    def __init__(self, target_key: str, analysed: str, current: str) -> None:
        super().__init__(
            f"{target_key} changed since its analysis (revision {current}, analysed {analysed}); "
            "not promoted: the new revision is analysed first"
        )
        self.retriable = True


def is_retriable(error: BaseException) -> bool:
    """Whether the scheduler should wait (True) or roll back (False) after `error`."""
    return bool(getattr(error, "retriable", True))


@dataclass(frozen=True)
class TargetMetadata:
    """What `GetMetadata` discovers: the selector label, its value and extra ports.

    Service targets return an empty label and value and no ports (their Kubernetes router is a
    no-op).
    """

    label: str = ""
    label_value: str = ""
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetFingerprint:
    """The release-relevant state of the target, compared by the scheduler with the status.

    `spec_hash` becomes `status.lastAppliedSpec` (computed with `coalmine.scheduler.hashing.spec_hash`).
    `tracked_configs` is `status.trackedConfigs` (`configmap/<name>` → checksum); None for kinds
    without config tracking (Service), which then never count as a dependency change.
    `primary_revision` is the revision the primary was last promoted to, as recorded *on the
    primary object by `promote`* (None when unknown). It lets the scheduler avoid a second promotion
    after a crash between `promote` and the status write that records it.
    """

    spec_hash: str
    tracked_configs: Mapping[str, str] | None = None
    primary_revision: str | None = None
    #: The metric templates' `route` variable when the kind defines it (Knative: the latest
    #: created revision, as Flagger's); None: `routeRef` or the target name.
    route: str | None = None


class TargetController(Protocol):
    """Flagger's per-kind canary controller, minus the status writers (the scheduler owns those)."""

    async def get_metadata(self, canary: Canary) -> TargetMetadata:
        """Selector label/value and discovered ports; raises when the target is unusable."""
        ...

    async def initialize(self, canary: Canary) -> None:
        """Create the primary (and the Service copies) if missing.

        While `status.phase` is "" or `Initializing` and analysis is not skipped, also require the
        primary to be ready: raise `TargetNotReady` (retriable or not) otherwise.
        """
        ...

    async def fingerprint(self, canary: Canary) -> TargetFingerprint:
        """Hash of the target's spec and checksums of its tracked configs (cheap: cache reads)."""
        ...

    async def is_primary_ready(self, canary: Canary) -> None:
        """Raise `TargetNotReady` unless the primary is rolled out (Service: always ready)."""
        ...

    async def is_canary_ready(self, canary: Canary) -> None:
        """Raise `TargetNotReady` unless the canary target is rolled out."""
        ...

    async def promote(self, canary: Canary, revision: str) -> None:
        """Copy the target's spec (and tracked configs) onto the primary.

        Must record `revision` (`coalmine.api.hashing.release_checksum`) on the primary in the
        same write, so that a later `fingerprint` reports it as `primary_revision` (an annotation
        on the primary object is enough).
        """
        ...

    async def scale_to_zero(self, canary: Canary) -> None:
        """Stop the canary workload (Deployment replicas 0, DaemonSet node selector, Service no-op)."""
        ...

    async def scale_from_zero(self, canary: Canary) -> None:
        """Start the canary workload again for a new run."""
        ...

    async def finalize(self, canary: Canary) -> None:
        """revertOnDeletion: give the target back its traffic-serving shape."""
        ...


class ScalerReconciler(Protocol):
    """Autoscaler handling for `spec.autoscalerRef` (HPA or KEDA ScaledObject)."""

    async def reconcile_primary_scaler(self, canary: Canary, *, init: bool) -> None:
        """`init=True`: create the primary scaler if missing; `init=False`: also update it."""
        ...

    async def pause_target_scaler(self, canary: Canary) -> None:
        """Stop the target's scaler from scaling the (zeroed) canary back up."""
        ...

    async def resume_target_scaler(self, canary: Canary) -> None:
        """Let the target's scaler act again (new run, deletion)."""
        ...
