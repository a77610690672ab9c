"""Figures for the statistical judge: CPU per judged metric (the pure computation) and the cost of a
canary cycle with judged metrics against a local Prometheus-compatible server answering range
queries. Prints numbers; never passes or fails on time.

    PYTHONPATH=src python bench/judge.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
import numpy as np
from aiohttp import web

from coalmine.analysis.checks import AnalysisSettings, MetricAnalyzer
from coalmine.analysis.judge import JudgeConfig, judge
from coalmine.api.models import Canary, MetricTemplate

SIZES = (30, 120, 500, 2000)


def canary(index: int, metrics: int) -> Canary:
    return Canary.model_validate(
        {
            "metadata": {"name": f"app{index}", "namespace": "bench"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app{index}"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "metrics": [
                        {
                            "name": f"m{m}",
                            "interval": "10m",
                            "query": f'latency{{m="{m}",role="{{{{ role }}}}"}}',
                            "judge": {"step": "5s"},
                        }
                        for m in range(metrics)
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


def matrix(points: int, mean: float, seed: int) -> dict[str, object]:
    values = np.random.default_rng(seed).normal(mean, 5, points)
    series = [[1_700_000_000 + 5 * i, repr(float(v))] for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "matrix", "result": [{"values": series}]}}


ANSWERS = {
    "canary": matrix(121, 103.0, 1),
    "primary": matrix(121, 100.0, 2),
}


async def answer(request: web.Request) -> web.Response:
    role = "canary" if 'role="canary"' in request.query["query"] else "primary"
    return web.json_response(ANSWERS[role])


def judge_cpu() -> None:
    config = JudgeConfig()
    rng = np.random.default_rng(7)
    for size in SIZES:
        a = list(rng.normal(105, 5, size))
        b = list(rng.normal(100, 5, size))
        rounds = max(5, 2000 // size)
        started = time.perf_counter()
        for _ in range(rounds):
            judge(a, b, config)
        elapsed = (time.perf_counter() - started) / rounds
        print(f"judge, {size} samples a side: {elapsed * 1000:.2f} ms per metric")


async def cycles() -> None:
    app = web.Application()
    app.router.add_get("/api/v1/query_range", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        analyzer = MetricAnalyzer(
            session, NoTemplates(), AnalysisSettings(metrics_server=f"http://127.0.0.1:{port}")
        )
        one = canary(0, 3)
        await analyzer.analyse(one)  # warm up
        rounds = 50
        cpu, started = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            await analyzer.analyse(one)
        wall = (time.perf_counter() - started) / rounds
        cpu_per = (time.process_time() - cpu) / rounds
        print(
            f"one canary cycle, 3 judged metrics (6 range queries, 121 samples each): "
            f"{wall * 1000:.1f} ms wall, {cpu_per * 1000:.1f} ms CPU"
        )
        many = [canary(i, 3) for i in range(100)]
        started = time.perf_counter()
        await asyncio.gather(*(analyzer.analyse(c) for c in many))
        elapsed = time.perf_counter() - started
        print(f"100 canaries x 3 judged metrics, concurrently: {elapsed * 1000:.0f} ms")
    await runner.cleanup()


if __name__ == "__main__":
    judge_cpu()
    asyncio.run(cycles())
