"""Running a parsed hook script: argv processes connected by pipes, never a shell.

Each command is an `asyncio` subprocess (its own session, so a timeout kills what it started);
a pipeline's processes are joined with `os.pipe`; `&&`, `||` and `;` follow the exit statuses as
`sh` does (a pipeline's status is its last command's, `!` inverts it). Standard output of the
last command and standard error of every command go to one capped capture, like Flagger's
combined output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

from coalmine.loadtester.shell import AndOr, Command, Node, Pipeline, Sequence, Word

MAX_OUTPUT_BYTES = 1024 * 1024
NOT_FOUND_STATUS = 127
_IFS = re.compile(r"[ \t\n]+")


@dataclass(frozen=True)
class TaskOutcome:
    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def failure_text(self, command: str, timeout_seconds: float) -> str:
        """Flagger's wording: `command <cmd> failed: <output>: <exit error>`."""
        if self.timed_out:
            cause = f"timeout after {timeout_seconds:g}s"
        else:
            cause = f"exit status {self.exit_code}"
        return f"command {command} failed: {self.output.strip()}: {cause}"


def expand(word: Word, variables: Mapping[str, str]) -> list[str]:
    """The fields of a word: quoted parts join, unquoted variables split on blanks (as `sh`)."""
    fields: list[str] = []
    current = ""
    has = False
    for part in word:
        if not part.variable or part.quoted:
            current += variables.get(part.text, "") if part.variable else part.text
            has = has or part.quoted or bool(part.text)
            continue
        chunks = _IFS.split(variables.get(part.text, ""))
        current += chunks[0]
        has = has or bool(chunks[0])
        for chunk in chunks[1:]:
            if has:
                fields.append(current)
            current, has = chunk, bool(chunk)
    if has:
        fields.append(current)
    return fields


def _status(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class _Execution:
    environment: dict[str, str]
    variables: dict[str, str]
    output: int
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def run(self, node: Node) -> int:
        if isinstance(node, Sequence):
            status = 0
            for item in node.items:
                status = await self.run(item)
            return status
        if isinstance(node, AndOr):
            status = await self.run(node.first)
            if (status == 0) == (node.operator == "&&"):
                status = await self.run(node.second)
            return status
        status = await self._pipeline(node)
        return int(status == 0) if node.negated else status

    async def _pipeline(self, pipeline: Pipeline) -> int:
        if len(pipeline.commands) == 1 and not pipeline.commands[0].words:
            for name, value in pipeline.commands[0].assignments:
                self.variables[name] = " ".join(expand(value, self.variables))
            return 0
        started: list[asyncio.subprocess.Process | int] = []
        stdin: int | None = None
        last = len(pipeline.commands) - 1
        for index, command in enumerate(pipeline.commands):
            read_end, write_end = os.pipe() if index < last else (None, self.output)
            try:
                started.append(await self._start(command, stdin, write_end))
            except BaseException:  # cancelled (timeout) while starting: leak no descriptor
                if read_end is not None:
                    os.close(read_end)
                raise
            finally:
                if stdin is not None:
                    os.close(stdin)
                if index < last:
                    os.close(write_end)
            stdin = read_end
        statuses = [
            item if isinstance(item, int) else _status(await item.wait()) for item in started
        ]
        return statuses[-1]

    async def _start(
        self, command: Command, stdin: int | None, stdout: int
    ) -> asyncio.subprocess.Process | int:
        argv = [text for word in command.words for text in expand(word, self.variables)]
        if not argv:
            return 0
        environment = dict(self.environment)
        for name, value in command.assignments:
            environment[name] = " ".join(expand(value, self.variables))
        targets = {1: stdout, 2: self.output}
        for redirect in command.redirects:
            targets[redirect.fd] = {
                "devnull": asyncio.subprocess.DEVNULL,
                "stdout": targets[1],
                "stderr": targets[2],
            }[redirect.to]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
                stdout=targets[1],
                stderr=targets[2],
                env=environment,
                start_new_session=True,
            )
        except OSError as error:
            os.write(self.output, f"{argv[0]}: {error.strerror or error}\n".encode())
            return NOT_FOUND_STATUS
        self.processes.append(process)
        return process


def kill_all(processes: list[asyncio.subprocess.Process]) -> None:
    """Kill each process's whole group (what it started too); gone ones are skipped."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


async def _read_capped(reader: asyncio.StreamReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await reader.read(64 * 1024):
        if len(data) < limit:
            data += chunk[: limit - len(data)]
    return bytes(data)


async def run_script(
    script: Sequence,
    timeout_seconds: float,
    *,
    environment: Mapping[str, str] | None = None,
    output_limit: int = MAX_OUTPUT_BYTES,
) -> TaskOutcome:
    """Run `script`; on timeout or cancellation every process group it started is killed."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader(limit=output_limit)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    base = dict(os.environ if environment is None else environment)
    execution = _Execution(base, dict(base), write_fd)
    collector = asyncio.create_task(_read_capped(reader, output_limit))
    try:
        status, timed_out = await _run_until(execution, script, timeout_seconds, write_fd)
        # A process that left a child holding the output open must not hold the answer.
        output = await asyncio.wait_for(asyncio.shield(collector), 5)
    except TimeoutError:
        output = b""
    finally:
        collector.cancel()
        transport.close()
    return TaskOutcome(status, output.decode(errors="replace"), timed_out=timed_out)


async def _run_until(
    execution: _Execution, script: Sequence, timeout_seconds: float, write_fd: int
) -> tuple[int | None, bool]:
    status: int | None = None
    try:
        status = await asyncio.wait_for(execution.run(script), timeout_seconds)
    except TimeoutError:
        return None, True
    finally:
        kill_all(execution.processes)
        os.close(write_fd)
        for process in execution.processes:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
    return status, False
