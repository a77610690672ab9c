"""Turning a webhook payload into a task the load tester may run, or a refusal with a reason.

Pure: no process is started here. Flagger runs `cmd` through `sh -c`; coalmine parses it with
tree-sitter's bash grammar (`coalmine.loadtester.shell`) and runs the pipeline itself, only with
programs on the allow-list. A signed request (the controller's) gets Flagger's meaning: `cmd`
and `bash` scripts with pipelines, lists, quoting and variables; `--allow-bash` hands `bash`
tasks to a real bash. An unsigned request (only with `--insecure-accept-unsigned`) gets the
argument policies of `coalmine.loadtester.policy`: no file reads or writes, scripts or plugins.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from coalmine.loadtester.pipeline import expand
from coalmine.loadtester.policy import check_unsigned
from coalmine.loadtester.shell import (
    Command,
    Part,
    Pipeline,
    Sequence,
    ShellError,
    commands_of,
    parse,
    uses_variables,
)

DEFAULT_ALLOWED_PROGRAMS: tuple[str, ...] = (
    "hey",
    "wrk",
    "ghz",
    "curl",
    "grep",
    "jq",
    "grpc_health_probe",
    "helm",
    "kubectl",
    "bats",
    "sleep",
    "test",
)
NOT_SUPPORTED_TYPES = frozenset({"concord", "ngrinder"})
PREFIXED_TYPES = {"helm": "helm", "helmv3": "helm", "kubectl": "kubectl"}

TaskKind = Literal["cmd", "bash", "helm", "kubectl"]


@dataclass(frozen=True)
class LoadTesterConfig:
    """Settings of one load tester process (its command-line flags)."""

    namespace_regexp: str = ""
    allowed_programs: tuple[str, ...] = DEFAULT_ALLOWED_PROGRAMS
    allow_bash: bool = False
    log_cmd_output: bool = False
    timeout_seconds: float = 3600.0
    signing_keys: tuple[bytes, ...] = ()
    accept_unsigned: bool = False
    signature_tolerance_seconds: float = 300.0
    max_tasks: int = 32
    max_tasks_per_namespace: int = 8
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 32
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Task:
    """A validated task: the script to run and how to answer."""

    kind: TaskKind
    canary: str
    namespace: str
    command: str
    script: Sequence
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


def literal_script(*argv: str) -> Sequence:
    """A one-command script with a fixed argv (a real bash for `--allow-bash`)."""
    words = tuple((Part(text, quoted=True),) for text in argv)
    return Sequence((Pipeline((Command((), words),)),))


def build_task(
    payload: Mapping[str, Any],
    config: LoadTesterConfig,
    which: Callable[[str], str | None] = shutil.which,
    *,
    signed: bool = True,
) -> Task | Refusal:
    """Validate a task request (already authorised by signature and namespace)."""
    metadata = payload.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata:
        return Refusal(400, "metadata not found in payload")
    task_type = str(metadata.get("type") or "cmd")
    if task_type in NOT_SUPPORTED_TYPES:
        return Refusal(400, f"task type {task_type} is not supported by the coalmine load tester")
    if task_type not in ("cmd", "bash", *PREFIXED_TYPES):
        return Refusal(400, f"unknown task type {task_type[:100]}")
    command = metadata.get("cmd")
    if not isinstance(command, str) or not command.strip():
        return Refusal(400, f"cmd not found in metadata of {task_type} task")
    if "\x00" in command:
        return Refusal(400, "cmd contains a NUL byte")
    script = _script(task_type, command, config, which, signed)
    if isinstance(script, Refusal):
        return script
    kind: TaskKind = "cmd" if task_type == "cmd" else "bash"
    if task_type in PREFIXED_TYPES:
        kind = "kubectl" if task_type == "kubectl" else "helm"
    namespace = str(payload.get("namespace", ""))
    return Task(
        kind=kind,
        canary=f"{payload.get('name', '')}.{namespace}",
        namespace=namespace,
        command=command,
        script=script,
        blocking=task_type != "cmd",
        log_output=config.log_cmd_output or _truthy(metadata.get("logCmdOutput", "")),
        return_output=_truthy(metadata.get("returnCmdOutput", "")),
    )


def _script(
    task_type: str,
    command: str,
    config: LoadTesterConfig,
    which: Callable[[str], str | None],
    signed: bool,
) -> Sequence | Refusal:
    if task_type == "bash" and config.allow_bash and signed:
        if which("bash") is None:
            return Refusal(400, "bash is not installed on this load tester")
        return literal_script("bash", "-c", command)
    if task_type in PREFIXED_TYPES and not signed:
        return Refusal(403, f"{task_type} tasks need a signed request")
    source = f"{PREFIXED_TYPES[task_type]} {command}" if task_type in PREFIXED_TYPES else command
    try:
        script = parse(source)
    except ShellError as error:
        return Refusal(400, f"cannot run cmd {command[:200]!r}: {error}")
    refusal = _check_programs(script, config)
    if refusal is None and not signed:
        refusal = _check_unsigned(script)
    return refusal or _check_installed(script, which) or script


def _check_programs(script: Sequence, config: LoadTesterConfig) -> Refusal | None:
    for command in commands_of(script):
        if not command.words:
            continue
        program = command.program
        if program is None:
            return Refusal(400, "a program name must be a literal word, not a variable")
        # By exact name: listing `hey` does not allow `/tmp/x/hey`; list a path to allow a path.
        if program not in config.allowed_programs:
            allowed = ", ".join(config.allowed_programs) or "none"
            return Refusal(
                403,
                f"program {program!r} is not allowed on this load tester (allowed: {allowed}); "
                f"start it with --allow-program {program} to allow it",
            )
    return None


def _check_installed(script: Sequence, which: Callable[[str], str | None]) -> Refusal | None:
    for command in commands_of(script):
        if command.program is not None and which(command.program) is None:
            return Refusal(400, f"program {command.program!r} is not installed on this load tester")
    return None


def _check_unsigned(script: Sequence) -> Refusal | None:
    if uses_variables(script):
        return Refusal(403, "variables and assignments need a signed request")
    for command in commands_of(script):
        argv = [text for word in command.words for text in expand(word, {})]
        reason = check_unsigned(argv)
        if reason:
            return Refusal(403, reason)
    return None
