"""The release verbs `coalmine promote|abort|retry|pause|resume NAME` (one module each registers
one of them): act on a release without editing its spec.

Each verb merges annotations onto the Canary (`coalmine.dev/action`, a fresh
`coalmine.dev/action-id`, and for pause/resume `coalmine.dev/paused`), which GitOps tools leave
alone, then waits until the controller writes the id back to `coalmine.dev/handled-action`.
A verb that makes no sense in the canary's phase is refused here, without writing, by the same
rules the controller applies (`coalmine.scheduler.verbs.refusal`).

Exit status: 0 done; 1 refused (here or by the controller); 2 bad usage; 3 the canary cannot be
read or written; 4 the controller did not handle the request within --timeout (it stays on the
canary and is acted on when the controller sees it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coalmine.cli.status import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    CliError,
    add_cluster_arguments,
    connect,
    run_cli,
)

if TYPE_CHECKING:
    from coalmine.kube.api import KubeApi
    from coalmine.scheduler.verbs import Verb

HELP: dict[str, str] = {
    "promote": "skip the rest of the analysis (and confirm-promotion) and promote now",
    "abort": "roll back now: all traffic to the primary, canary scaled down, phase Failed",
    "retry": "run a failed release again, without editing the target",
    "pause": "freeze the canary (like spec.suspend, without touching the spec)",
    "resume": "let a paused canary carry on",
}
WRITE_ATTEMPTS = 5
POLL_SECONDS = 0.2


def registrar(verb: Verb) -> Callable[[argparse._SubParsersAction[Any]], None]:
    """The `register` function of the subcommand module `coalmine.cli.<verb>`."""

    def register(subparsers: argparse._SubParsersAction[Any]) -> None:
        from coalmine.controller.settings import parse_duration

        text = HELP[verb]
        parser = subparsers.add_parser(
            verb,
            help=text,
            description=(
                f"{text[0].upper()}{text[1:]}. Works through annotations on the Canary, which "
                "GitOps tools leave alone. Exit status: 0 done, 1 refused, 2 bad usage, 3 cannot "
                "read or write the canary, 4 not handled within --timeout."
            ),
        )
        from coalmine.cli.completion import canary_names

        name = parser.add_argument("name", metavar="NAME", help="a Canary's name")
        name.completer = canary_names
        add_cluster_arguments(parser)
        parser.add_argument(
            "--no-wait",
            dest="wait",
            action="store_false",
            help="return once the request is written, without waiting for the controller",
        )
        parser.add_argument(
            "--timeout",
            type=parse_duration,
            default=60.0,
            metavar="DURATION",
            help="how long to wait for the controller to handle the request (default 1m), exit 4",
        )
        parser.set_defaults(handler=run, verb=verb)

    return register


def run(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with connect(args) as (api, namespace):
            return await request_verb(
                api,
                namespace,
                args.name,
                args.verb,
                wait=args.wait,
                limit=args.timeout,
            )

    return run_cli(main)


def _say(text: str) -> None:
    print(text, flush=True)


async def request_verb(
    api: KubeApi,
    namespace: str,
    name: str,
    verb: Verb,
    *,
    wait: bool = True,
    limit: float = 60.0,
) -> int:
    """Check, write and (unless `wait` is False) wait for the controller; the exit status."""
    from coalmine.api import naming
    from coalmine.kube.api import Conflict, NotFound
    from coalmine.kube.kinds import CANARY
    from coalmine.scheduler.verbs import (
        is_paused,
        pending_action,
        refusal,
        request_annotations,
    )

    key = f"{name}.{namespace}"
    action_id = str(uuid.uuid4())
    for attempt in range(WRITE_ATTEMPTS):
        try:
            obj = await api.get(CANARY, name, namespace)
        except NotFound:
            raise CliError(f"canary {name} not found in namespace {namespace}") from None
        metadata = obj.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        phase = str((obj.get("status") or {}).get("phase") or "")
        suspended = bool((obj.get("spec") or {}).get("suspend"))
        reason = refusal(verb, phase, paused=is_paused(annotations), suspended=suspended)
        if reason is not None:
            print(f"coalmine {verb}: canary {key} is left as it is: {reason}", file=sys.stderr)
            return EXIT_FAILED
        pending = pending_action(annotations)
        if pending is not None:
            _say(f"replacing the pending {pending.verb} request {pending.action_id}")
        patch = {
            "metadata": {
                # Precondition: the phase checked above is still the phase when this lands.
                "resourceVersion": metadata.get("resourceVersion"),
                "annotations": request_annotations(verb, action_id),
            }
        }
        try:
            await api.patch(CANARY, name, patch, namespace)
            break
        except Conflict:
            if attempt == WRITE_ATTEMPTS - 1:
                raise CliError(f"canary {key} keeps changing; try again") from None
    _say(f"{verb} requested for canary {key} ({naming.ACTION_ID_ANNOTATION}={action_id})")
    if not wait:
        return EXIT_OK
    return await wait_until_handled(api, namespace, name, verb, action_id, limit)


async def wait_until_handled(
    api: KubeApi, namespace: str, name: str, verb: Verb, action_id: str, limit: float
) -> int:
    from coalmine.kube.api import NotFound
    from coalmine.kube.kinds import CANARY
    from coalmine.scheduler.verbs import DONE, result_of

    key = f"{name}.{namespace}"
    try:
        async with asyncio.timeout(limit):
            while True:
                try:
                    obj = await api.get(CANARY, name, namespace)
                except NotFound:
                    raise CliError(f"canary {key} was deleted") from None
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                outcome = result_of(annotations, action_id)
                if outcome is not None:
                    break
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        print(
            f"coalmine {verb}: the controller did not handle the request for {key} within "
            f"{limit:g}s. It stays on the canary and is acted on when the controller can (a "
            f"promote waits for the canary to be ready): see `coalmine status {name} -n "
            f"{namespace}` for its events, and check that the controller runs and watches "
            f"namespace {namespace}.",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    state, message = outcome
    phase = str((obj.get("status") or {}).get("phase") or "")
    if state == DONE:
        _say(f"{verb} done for canary {key}: {message} (phase {phase})")
        return EXIT_OK
    print(f"coalmine {verb}: the controller refused it for {key}: {message}", file=sys.stderr)
    return EXIT_FAILED


__all__ = ["EXIT_ERROR", "request_verb", "wait_until_handled"]
