"""Release verbs requested through Canary annotations: what is pending, and when a verb makes sense.

`coalmine promote|abort|retry|pause|resume` (the CLI) and the scheduler share these rules, so the
CLI refuses exactly what the controller would refuse. A request is the pair
`coalmine.dev/action` + `coalmine.dev/action-id`; it is pending until the controller writes the
same id to `coalmine.dev/handled-action` (with `coalmine.dev/action-result`). Pausing is the
standing annotation `coalmine.dev/paused: "true"`; the pause/resume actions only ask the controller
to acknowledge it. Annotations change metadata, not spec, so GitOps tools that own the spec do not
revert them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from coalmine.api import naming
from coalmine.api.models import (
    ANALYSING_PHASES,
    PRE_PROMOTION_PHASES,
    PROMOTING_PHASES,
    RELEASE_PHASES,
    Canary,
)

Verb = Literal["promote", "abort", "retry", "pause", "resume"]
VERBS: tuple[Verb, ...] = get_args(Verb)

DONE = "done"
REFUSED = "refused"


@dataclass(frozen=True)
class Action:
    """One request: a verb and the id that makes it happen once."""

    verb: Verb
    action_id: str


def annotations_of(canary: Canary) -> Mapping[str, str]:
    return canary.metadata.annotations or {}


def is_paused(annotations: Mapping[str, str]) -> bool:
    return annotations.get(naming.PAUSED_ANNOTATION, "").strip().lower() == "true"


def requested_action(annotations: Mapping[str, str]) -> Action | None:
    """The last request written, handled or not (None when absent or not a known verb)."""
    verb = annotations.get(naming.ACTION_ANNOTATION, "").strip()
    action_id = annotations.get(naming.ACTION_ID_ANNOTATION, "").strip()
    if not action_id or verb not in VERBS:
        return None
    return Action(verb, action_id)


def pending_action(annotations: Mapping[str, str]) -> Action | None:
    """The request the controller has not handled yet, if any."""
    action = requested_action(annotations)
    if action is None or annotations.get(naming.HANDLED_ACTION_ANNOTATION) == action.action_id:
        return None
    return action


def refusal(verb: Verb, phase: str, *, paused: bool, suspended: bool = False) -> str | None:
    """Why `verb` makes no sense for a canary in `phase` (None: it does).

    The CLI refuses these without writing; the controller records them as the action's result
    when the phase moved between the CLI's check and its own. A suspended canary (`spec.suspend`)
    runs no cycle at all, so nothing would ever handle the request.
    """
    shown = phase or "Initializing"
    if suspended:
        return (
            "it is suspended (spec.suspend: true): the controller acts on nothing until it is not"
        )
    if verb == "pause":
        return "it is already paused" if paused else None
    if verb == "resume":
        return None if paused else "it is not paused"
    if phase == "Terminating":
        return "it is being deleted"
    if paused:
        return f"it is paused; run `coalmine resume` first to let the controller act on {verb}"
    if verb == "promote":
        if phase in ANALYSING_PHASES:
            return None
        if phase in PROMOTING_PHASES:
            return f"it is already {shown}: the new revision is being promoted"
        if phase == "Waiting":
            return (
                "it is Waiting for confirm-rollout approval: no analysis runs yet, so there is "
                "nothing to skip (approve the rollout, or abort it)"
            )
        return f"no release is in progress (phase {shown}): there is nothing to promote"
    if verb == "abort":
        if phase in PRE_PROMOTION_PHASES:
            return None
        if phase in PROMOTING_PHASES:
            return (
                f"it is {shown}: the primary already runs the new revision; revert the target "
                "to release the previous version again"
            )
        return f"no release is in progress (phase {shown}): there is nothing to abort"
    # retry
    if phase == "Failed":
        return None
    if phase in RELEASE_PHASES:
        return f"a release is in progress (phase {shown})"
    return f"the last release did not fail (phase {shown}): there is nothing to retry"


def request_annotations(verb: Verb, action_id: str) -> dict[str, str | None]:
    """The annotations the CLI merges onto the Canary (None removes a key)."""
    wanted: dict[str, str | None] = {
        naming.ACTION_ANNOTATION: verb,
        naming.ACTION_ID_ANNOTATION: action_id,
    }
    if verb == "pause":
        wanted[naming.PAUSED_ANNOTATION] = "true"
    elif verb == "resume":
        wanted[naming.PAUSED_ANNOTATION] = None
    return wanted


def handled_annotations(action_id: str, outcome: str, message: str) -> dict[str, str]:
    """What the controller writes once it has acted on (or refused) a request."""
    return {
        naming.HANDLED_ACTION_ANNOTATION: action_id,
        naming.ACTION_RESULT_ANNOTATION: f"{outcome}: {message}",
    }


def result_of(annotations: Mapping[str, str], action_id: str) -> tuple[str, str] | None:
    """(outcome, message) once the controller handled `action_id`, else None."""
    if annotations.get(naming.HANDLED_ACTION_ANNOTATION) != action_id:
        return None
    text = annotations.get(naming.ACTION_RESULT_ANNOTATION, "")
    outcome, _, message = text.partition(": ")
    return (outcome or DONE), message
