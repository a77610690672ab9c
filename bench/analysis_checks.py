"""Figures for metric analysis: query rendering cost and check throughput against a local
Prometheus-compatible server. Prints numbers; never passes or fails on time.

    PYTHONPATH=src python bench/analysis_checks.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from coalmine.analysis.builtin import render_builtin
from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.api.models import Canary, MetricTemplate

PROVIDERS = ("istio", "linkerd", "nginx", "contour", "skipper", "traefik", "kubernetes", "apisix")


def canary(index: int) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": f"app{index}", "namespace": "bench"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app{index}"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 5,
                    "metrics": [
                        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                        {"name": "request-duration", "thresholdRange": {"max": 500}},
                    ],
                },
            },
        }
    )


class NoTemplates:
    def metric_template(self, namespace: str, name: str) -> MetricTemplate | None:
        return None

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes | str] | None:
        return None


async def answer(request: web.Request) -> web.Response:
    value = "100" if "requests_total" in request.query["query"] else "42"
    return web.json_response(
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [0, value]}]}}
    )


async def main() -> None:
    sample = canary(0)
    rounds = 2000
    started = time.perf_counter()
    for i in range(rounds):
        provider = PROVIDERS[i % len(PROVIDERS)]
        render_builtin(sample, "request-success-rate", "1m", provider)
    elapsed = time.perf_counter() - started
    print(f"builtin query render: {elapsed / rounds * 1e6:.0f} µs per query")

    app = web.Application()
    app.router.add_get("/api/v1/query", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        analyzer = MetricAnalyzer(
            session, NoTemplates(), AnalysisSettings(metrics_server=f"http://127.0.0.1:{port}")
        )
        canaries = [canary(i) for i in range(200)]
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(analyzer.analyse(c) for c in canaries))
        elapsed = time.perf_counter() - started
    await runner.cleanup()
    assert all(outcome.ok for outcome in outcomes)
    print(
        f"analysis of {len(canaries)} canaries x 2 builtin metrics, concurrently: "
        f"{elapsed * 1000:.0f} ms ({len(canaries) * 2 / elapsed:.0f} queries/s, per-backend limit 8)"
    )


if __name__ == "__main__":
    asyncio.run(main())
