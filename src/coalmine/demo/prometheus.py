"""A throw-away Prometheus for the demo: a temp dir, a free port, one scrape job, stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType

import aiohttp

READY_TIMEOUT_SECONDS = 30.0


class PrometheusError(RuntimeError):
    """Prometheus could not be started (missing binary, exited, not ready in time)."""


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(target: str, scrape_interval: str) -> str:
    return (
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: demo\n"
        f"    scrape_interval: {scrape_interval}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )


class PrometheusProcess:
    """`prometheus` scraping one target; `url` once started. Always stopped on exit."""

    def __init__(
        self, target: str, scrape_interval: str = "500ms", binary: str | None = None
    ) -> None:
        self.target = target
        self.scrape_interval = scrape_interval
        self.binary = binary or prometheus_binary()
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self._directory is not None
        return Path(self._directory.name) / "prometheus.log"

    async def start(self) -> None:
        if self.binary is None:
            raise PrometheusError("prometheus is not on the PATH")
        self._directory = tempfile.TemporaryDirectory(prefix="coalmine-demo-prometheus-")
        root = Path(self._directory.name)
        config = root / "prometheus.yml"
        config.write_text(scrape_config(self.target, self.scrape_interval))
        self.port = _free_port()
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        await self._wait_ready()
        await self._wait_scraped()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_SECONDS
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                if self._process is not None and self._process.returncode is not None:
                    tail = self.log_path.read_text(errors="replace")[-1500:]
                    raise PrometheusError(f"prometheus exited: {tail}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                if loop.time() > deadline:
                    raise PrometheusError(f"prometheus not ready in {READY_TIMEOUT_SECONDS:g}s")
                await asyncio.sleep(0.1)

    async def _wait_scraped(self) -> None:
        """Prometheus applies new targets on a 5s tick: wait for the first scrape, so the first
        analysis finds data instead of an empty answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_SECONDS
        query = {"query": 'up{job="demo"} == 1'}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while loop.time() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.get(f"{self.url}/api/v1/query", params=query) as response:
                        body = await response.json()
                        if body.get("data", {}).get("result"):
                            return
                await asyncio.sleep(0.2)
        raise PrometheusError(
            f"prometheus did not scrape {self.target} in {READY_TIMEOUT_SECONDS:g}s"
        )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._directory is not None:
            with contextlib.suppress(OSError):
                self._directory.cleanup()
            self._directory = None

    async def __aenter__(self) -> PrometheusProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
