"""Running tasks with a timeout, and capping how many run at once (globally, per namespace).

Background (`cmd`) tasks run one instance per task key at a time; blocking tasks count towards
the same caps while they run, so no caller can make the load tester start an unbounded number
of processes: past a cap the answer is 429 and the controller's webhook retry policy applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

from coalmine.loadtester.pipeline import TaskOutcome, run_script
from coalmine.loadtester.tasks import Task

log = logging.getLogger(__name__)


async def run_task(task: Task, timeout_seconds: float) -> TaskOutcome:
    """Run the task's script; every process group it started is killed on timeout or cancel."""
    return await run_script(task.script, timeout_seconds)


class TaskRunner:
    """Runs background tasks; keeps the count of running tasks per namespace for the caps."""

    def __init__(
        self, timeout_seconds: float, *, max_tasks: int = 32, max_tasks_per_namespace: int = 8
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_tasks = max_tasks
        self.max_tasks_per_namespace = max_tasks_per_namespace
        self._running: dict[str, asyncio.Task[TaskOutcome]] = {}
        self._by_namespace: Counter[str] = Counter()
        self.completed = 0

    def is_running(self, task: Task) -> bool:
        return task.key in self._running

    @property
    def running_count(self) -> int:
        """Tasks running now, background and blocking."""
        return sum(self._by_namespace.values())

    def over_capacity(self, task: Task) -> str:
        """'' when one more task may start, else why not (the 429 text)."""
        if self.running_count >= self.max_tasks:
            return f"too many tasks running ({self.running_count}); try again later"
        if self._by_namespace[task.namespace] >= self.max_tasks_per_namespace:
            return (
                f"too many tasks running for namespace {task.namespace!r} "
                f"({self._by_namespace[task.namespace]}); try again later"
            )
        return ""

    @contextlib.contextmanager
    def slot(self, task: Task) -> Iterator[None]:
        self._by_namespace[task.namespace] += 1
        try:
            yield
        finally:
            self._release(task.namespace)

    def _release(self, namespace: str) -> None:
        self._by_namespace[namespace] -= 1
        if self._by_namespace[namespace] <= 0:
            del self._by_namespace[namespace]

    async def run_blocking(self, task: Task) -> TaskOutcome:
        with self.slot(task):
            return await run_task(task, self.timeout_seconds)

    def start(self, task: Task) -> bool:
        """Start the task unless the same command for the same canary is still running."""
        if task.key in self._running:
            log.info("task %r for %s is already running; skipped", task.command, task.canary)
            return False
        self._by_namespace[task.namespace] += 1  # counted from now: the next request sees it
        runner = asyncio.create_task(self._run(task), name=f"loadtester:{task.canary}")
        self._running[task.key] = runner
        return True

    async def _run(self, task: Task) -> TaskOutcome:
        log.info("starting task %r for %s", task.command, task.canary)
        try:
            outcome = await run_task(task, self.timeout_seconds)
        finally:
            self._running.pop(task.key, None)
            self._release(task.namespace)
            self.completed += 1
        if outcome.ok:
            log.info("task %r for %s finished", task.command, task.canary)
        else:
            log.warning(
                "task for %s: %s",
                task.canary,
                outcome.failure_text(task.command, self.timeout_seconds),
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
