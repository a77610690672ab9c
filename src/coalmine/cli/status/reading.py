"""Reading canaries for `coalmine status`: the client, the raw object's fields, events, targets."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coalmine.kube.api import KubeApi, Object

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3
EXIT_TIMEOUT = 4

AT_REST: frozenset[str] = frozenset({"Initialized", "Succeeded", "Failed"})


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", default=None, help="the namespace (default: the context's, or default)"
    )
    parser.add_argument("--kubeconfig", default=None, metavar="PATH", help="a kubeconfig file")
    parser.add_argument("--context", default=None, metavar="CTX", help="a kubeconfig context")


class CliError(RuntimeError):
    """A message for the user; the command exits with EXIT_ERROR."""


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[tuple[KubeApi, str]]:
    """A client for `--kubeconfig`/`--context` (else $KUBECONFIG, in-cluster, ~/.kube/config)."""
    import os

    from lightkube import ConfigError, KubeConfig

    from coalmine.kube.api import KubeApi

    try:
        if args.kubeconfig:
            config = KubeConfig.from_file(args.kubeconfig)
        elif (
            os.environ.get("KUBERNETES_SERVICE_HOST")
            and not args.context
            and not os.environ.get("KUBECONFIG")
        ):
            config = KubeConfig.from_service_account()
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=args.context)
    except (ConfigError, OSError, ValueError, KeyError) as error:
        raise CliError(f"cannot load the kubeconfig: {error}") from error
    assert single is not None
    namespace = args.namespace or single.namespace or "default"
    api = KubeApi(single)
    try:
        yield api, namespace
    finally:
        await api.close()


def run_cli(main: Any) -> int:
    """Run an async command; API and configuration failures become a message and exit 3."""
    import httpx2

    from coalmine.kube.api import Conflict, KubeApiError, NotFound

    try:
        code: int = asyncio.run(main())
        return code
    except (CliError, NotFound, Conflict, KubeApiError, OSError) as error:
        print(f"coalmine: {error}", file=sys.stderr)
        return EXIT_ERROR
    except httpx2.HTTPError as error:
        where = f" at {error.request.url}" if _has_request(error) else ""
        print(f"coalmine: cannot reach the API server{where}: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _has_request(error: Exception) -> bool:
    try:
        return getattr(error, "request", None) is not None
    except RuntimeError:  # httpx raises when the request was never set
        return False


# --- reading a canary -----------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What the table and the watch show of one canary, read from the raw object."""

    obj: Mapping[str, Any]

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.obj.get("metadata") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.obj.get("status") or {}

    @property
    def analysis(self) -> Mapping[str, Any]:
        return self.spec.get("analysis") or self.spec.get("canaryAnalysis") or {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def key(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "")

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def paused(self) -> bool:
        from coalmine.scheduler.verbs import is_paused

        return is_paused(self.annotations)

    @property
    def target(self) -> str:
        ref = self.spec.get("targetRef") or {}
        return f"{ref.get('kind', '?')}/{ref.get('name', '?')}"

    @property
    def threshold(self) -> int:
        value = self.analysis.get("threshold")
        return value if isinstance(value, int) and value > 0 else 1

    @property
    def weight(self) -> int:
        return int(self.status.get("canaryWeight") or 0)

    @property
    def refused(self) -> str:
        """The controller's reason for not running this canary (a `Valid=False` condition)."""
        from coalmine.api.refusals import refusal

        found = refusal(self.obj)
        return found.message if found is not None else ""

    @property
    def reverted(self) -> bool:
        """Failed, but the target is back on the promoted revision (the controller says so)."""
        from coalmine.scheduler.status import REVERTED_CONDITION

        return any(
            condition.get("type") == REVERTED_CONDITION and condition.get("status") == "True"
            for condition in self.status.get("conditions") or []
        )

    @property
    def is_service_target(self) -> bool:
        ref = self.spec.get("targetRef") or {}
        return ref.get("kind") == "Service" and not str(ref.get("apiVersion")).startswith(
            "serving.knative.dev"
        )

    @property
    def coverage(self) -> str:
        """Which traffic follows the weights: the controller's sentence, else our own reading."""
        from coalmine.api.models import Canary
        from coalmine.targets.service_coverage import COVERAGE_CONDITION, routing_coverage

        if not self.is_service_target:
            return ""
        for condition in self.status.get("conditions") or []:
            if condition.get("type") == COVERAGE_CONDITION and condition.get("message"):
                return str(condition["message"])
        try:
            canary = Canary.model_validate({"metadata": self.metadata, "spec": self.spec})
        except ValueError:
            return ""
        return routing_coverage(canary).sentence

    @property
    def flags(self) -> str:
        from coalmine.scheduler.verbs import pending_action

        marks = []
        if self.spec.get("suspend"):
            marks.append("suspended")
        if self.paused:
            marks.append("paused")
        pending = pending_action(self.annotations)
        if pending is not None:
            marks.append(f"{pending.verb} pending")
        if self.refused:
            marks.append("refused by the controller")
        if self.phase == "Failed" and self.reverted:
            marks.append("target reverted to the promoted revision")
        return ", ".join(marks)


def pending_revision(view: View, target: Object | None) -> str | None:
    """The spec hash of a target change the controller has not started a run for, else None."""
    from coalmine.api.models import CanaryStatus
    from coalmine.scheduler.status import has_spec_changed
    from coalmine.targets.hashing import revision_hash

    if target is None or view.phase not in AT_REST:
        return None
    current = revision_hash(target)
    if current is None:
        return None
    try:
        status = CanaryStatus.model_validate(dict(view.status))
    except ValueError:
        return None
    if has_spec_changed(status, current):
        return current
    reverting = (
        view.phase == "Failed"
        and current == status.last_promoted_spec
        and current != status.last_applied_spec
    )
    # A revert after a failure: wait until the controller has seen it (and said so).
    return current if reverting else None


async def read_target(api: KubeApi, view: View, *, primary: bool = False) -> Object | None:
    """The target (or its primary copy) when it is a kind the CLI reads, else None."""
    from coalmine.api import naming
    from coalmine.kube.api import NotFound
    from coalmine.kube.kinds import kind_for
    from coalmine.targets.kinds import target_kind

    ref = view.spec.get("targetRef") or {}
    info = target_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
    if info is None:
        return None
    kind = kind_for(info.api_version, info.kind)
    name = str(ref.get("name"))
    # A Knative Service holds both revisions: its primary is itself, no `-primary` copy.
    copied = primary and info.revision != "knative"
    try:
        target: Object = await api.get(
            kind, naming.primary_name(name) if copied else name, view.metadata.get("namespace")
        )
    except NotFound:
        return None
    target.setdefault("kind", kind.kind)
    return target


def settled(view: View, expected_hash: str | None) -> bool:
    """At rest, with no request and no target change still to be acted on."""
    from coalmine.scheduler.verbs import pending_action

    if view.refused:
        return True  # the controller will not run it until the spec is fixed
    if view.phase not in AT_REST:
        return False
    pending = pending_action(view.annotations)
    if pending is not None and pending.verb not in {"pause", "resume"}:
        return False
    return expected_hash is None or view.status.get("lastAppliedSpec") == expected_hash


def exit_code(views: Iterable[View]) -> int:
    failed = any((view.phase == "Failed" and not view.reverted) or view.refused for view in views)
    return EXIT_FAILED if failed else EXIT_OK


# --- events ---------------------------------------------------------------------------------


def event_time(event: Object) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


async def canary_events(api: KubeApi, namespace: str | None) -> dict[tuple[str, str], list[Object]]:
    """Events about canaries, per (namespace, name), oldest first: one list call for all."""
    from coalmine.kube.kinds import EVENT

    grouped: dict[tuple[str, str], list[Object]] = {}
    for event in (await api.list(EVENT, namespace)).items:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != "Canary":
            continue
        key = (str(involved.get("namespace") or ""), str(involved.get("name") or ""))
        grouped.setdefault(key, []).append(event)
    for events in grouped.values():
        events.sort(
            key=lambda event: (
                event_time(event),
                int((event.get("metadata") or {}).get("resourceVersion") or 0),
            )
        )
    return grouped
