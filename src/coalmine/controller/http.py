"""`/metrics`, `/healthz` and `/readyz` on `--listen-address`.

`/healthz` answers as long as the event loop runs (a liveness probe); `/readyz` only once the watch
caches have synced, so a rolling update of the controller never sends traffic to a replica that
would act on an empty cache.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from coalmine.controller.metrics import ControllerMetrics


def build_app(metrics: ControllerMetrics, is_ready: Callable[[], bool]) -> web.Application:
    async def metrics_handler(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def readyz(request: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="OK")
        return web.Response(status=503, text="caches not synced")

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_http(
    metrics: ControllerMetrics, is_ready: Callable[[], bool], host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port (for `:0`)."""
    runner = web.AppRunner(build_app(metrics, is_ready), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
