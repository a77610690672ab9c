"""Running task processes: argv only (no shell unless the task is `bash`), with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

from coalmine.loadtester.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskOutcome:
    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def failure_text(self, task: Task, timeout_seconds: float) -> str:
        """Flagger's wording: `command <cmd> failed: <output>: <exit error>`."""
        if self.timed_out:
            cause = f"timeout after {timeout_seconds:g}s"
        else:
            cause = f"exit status {self.exit_code}"
        return f"command {task.command} failed: {self.output.strip()}: {cause}"


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_process(task: Task, timeout_seconds: float) -> TaskOutcome:
    """Run the task's argv in its own process group; kill the whole group on timeout or cancel."""
    try:
        process = await asyncio.create_subprocess_exec(
            *task.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return TaskOutcome(None, f"cannot start {task.argv[0]}: {error}")
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_seconds)
    except TimeoutError:
        _kill_group(process)
        output = b""
        with contextlib.suppress(Exception):
            output, _ = await asyncio.wait_for(process.communicate(), 5)
        return TaskOutcome(process.returncode, output.decode(errors="replace"), timed_out=True)
    except asyncio.CancelledError:
        _kill_group(process)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)
        raise
    return TaskOutcome(process.returncode, output.decode(errors="replace"))


class TaskRunner:
    """Runs asynchronous (`cmd`) tasks in the background, one instance per task key at a time."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._running: dict[str, asyncio.Task[TaskOutcome]] = {}
        self.completed = 0

    def is_running(self, task: Task) -> bool:
        return task.key in self._running

    @property
    def running_count(self) -> int:
        return len(self._running)

    def start(self, task: Task) -> bool:
        """Start the task unless the same command for the same canary is still running."""
        if task.key in self._running:
            log.info("task %r for %s is already running; skipped", task.command, task.canary)
            return False
        runner = asyncio.create_task(self._run(task), name=f"loadtester:{task.canary}")
        self._running[task.key] = runner
        return True

    async def _run(self, task: Task) -> TaskOutcome:
        log.info("starting task %r for %s", task.command, task.canary)
        try:
            outcome = await run_process(task, self.timeout_seconds)
        finally:
            self._running.pop(task.key, None)
            self.completed += 1
        if outcome.ok:
            log.info("task %r for %s finished", task.command, task.canary)
        else:
            log.warning(
                "task for %s: %s", task.canary, outcome.failure_text(task, self.timeout_seconds)
            )
        if task.log_output and outcome.output:
            log.info("task %r output:\n%s", task.command, outcome.output)
        return outcome

    async def wait_idle(self) -> None:
        """Wait for the running tasks (tests; graceful drains)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel every running task and kill its processes."""
        tasks = list(self._running.values())
        for running in tasks:
            running.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
