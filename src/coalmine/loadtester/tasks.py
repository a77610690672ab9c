"""Turning a webhook payload into a task the load tester may run, or a refusal with a reason.

Pure: no process is started here. Flagger runs `cmd` through `sh -c`; coalmine splits it with
shlex and runs the argv directly, only for programs on the allow-list, so a payload such as
`hey http://x/; rm -rf /` can never reach a shell.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_ALLOWED_PROGRAMS: tuple[str, ...] = ("hey", "wrk", "ghz", "curl")
NOT_SUPPORTED_TYPES = frozenset({"concord", "ngrinder"})

TaskKind = Literal["cmd", "bash", "helm", "kubectl"]


@dataclass(frozen=True)
class LoadTesterConfig:
    """Settings of one load tester process (its command-line flags)."""

    namespace_regexp: str = ""
    allowed_programs: tuple[str, ...] = DEFAULT_ALLOWED_PROGRAMS
    allow_bash: bool = False
    log_cmd_output: bool = False
    timeout_seconds: float = 3600.0


@dataclass(frozen=True)
class Task:
    """A validated task: the argv to run and how to answer."""

    kind: TaskKind
    canary: str
    command: str
    argv: tuple[str, ...]
    blocking: bool
    log_output: bool
    return_output: bool

    @property
    def key(self) -> str:
        """Identity for de-duplication: the same command for the same canary runs once at a time."""
        return hashlib.sha256(f"{self.canary}\x00{self.command}".encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """Why a request is not run, and the HTTP status that says so."""

    status: int
    reason: str


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def build_task(
    payload: Mapping[str, Any],
    config: LoadTesterConfig,
    which: Callable[[str], str | None] = shutil.which,
) -> Task | Refusal:
    """Validate a task request (already authorised by namespace) against the load tester's rules."""
    metadata = payload.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata:
        return Refusal(400, "metadata not found in payload")
    task_type = str(metadata.get("type") or "cmd")
    canary = f"{payload.get('name', '')}.{payload.get('namespace', '')}"
    log_output = config.log_cmd_output or _truthy(metadata.get("logCmdOutput", ""))
    return_output = _truthy(metadata.get("returnCmdOutput", ""))
    if task_type in NOT_SUPPORTED_TYPES:
        return Refusal(400, f"task type {task_type} is not supported by the coalmine load tester")
    if task_type not in ("cmd", "bash", "helm", "helmv3", "kubectl"):
        return Refusal(400, f"unknown task type {task_type}")
    command = metadata.get("cmd")
    if not isinstance(command, str) or not command.strip():
        return Refusal(400, f"cmd not found in metadata of {task_type} task")

    if task_type == "bash":
        if not config.allow_bash:
            return Refusal(
                403,
                "bash tasks are disabled on this load tester (they run arbitrary shell code); "
                "start it with --allow-bash to enable them",
            )
        bash = which("bash")
        if bash is None:
            return Refusal(400, "bash is not installed on this load tester")
        return Task(
            "bash", canary, command, ("bash", "-c", command), True, log_output, return_output
        )

    try:
        words = shlex.split(command)
    except ValueError as error:
        return Refusal(400, f"cannot parse cmd {command!r}: {error}")
    if not words:
        return Refusal(400, f"cmd not found in metadata of {task_type} task")

    if task_type in ("helm", "helmv3", "kubectl"):
        program = "kubectl" if task_type == "kubectl" else "helm"
        if which(program) is None:
            return Refusal(400, f"{program} is not installed on this load tester")
        kind: TaskKind = "kubectl" if task_type == "kubectl" else "helm"
        return Task(kind, canary, command, (program, *words), True, log_output, return_output)

    program = words[0]
    # By exact name: listing `hey` does not allow `/tmp/x/hey`; list a path to allow a path.
    if program not in config.allowed_programs:
        allowed = ", ".join(config.allowed_programs) or "none"
        return Refusal(
            403,
            f"program {program!r} is not allowed on this load tester (allowed: {allowed}); "
            f"start it with --allow-program {program} to allow it",
        )
    if which(program) is None:
        return Refusal(400, f"program {program!r} is not installed on this load tester")
    return Task("cmd", canary, command, tuple(words), False, log_output, return_output)
