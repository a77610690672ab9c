"""Known distributions for the judge, backfilled into a real Prometheus with `promtool`.

Each case is a pair of sample lists (canary, control) written as the gauge
`judge_sample{case, role}` every `STEP` seconds ending at `END`; a range query over `WINDOW` with
step `STEP` returns exactly these samples, so the judge's verdict on what Prometheus answers can be
compared with scipy on the same numbers.
"""

from __future__ import annotations

import math
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from binaries import require_binary

STEP = 5
POINTS = 121
WINDOW = STEP * (POINTS - 1)  # 600 s: the metric interval "10m"
# Two hours back, aligned to the step: old enough to be a backfilled block, inside retention.
END = (int(time.time()) - 2 * 3600) // STEP * STEP


def _normal(seed: int, mean: float = 100.0, sd: float = 5.0) -> list[float]:
    return [float(v) for v in np.random.default_rng(seed).normal(mean, sd, POINTS)]


def _lognormal(seed: int, scale: float = 1.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) * scale for v in rng.lognormal(math.log(100), 0.8, POINTS)]


def _nan_laced(values: list[float], every: int) -> list[float]:
    return [math.nan if i % every == 0 else v for i, v in enumerate(values)]


def cases() -> dict[str, tuple[list[float], list[float]]]:
    control = _normal(1)
    return {
        "identical": (list(control), list(control)),
        "same-distribution": (_normal(2), control),
        "shift-1pct": ([v * 1.01 for v in _normal(2)], control),
        "shift-5pct": ([v * 1.05 for v in _normal(2)], control),
        "shift-20pct": ([v * 1.20 for v in _normal(2)], control),
        "lower-20pct": ([v * 0.80 for v in _normal(2)], control),
        "heavy-tailed-same": (_lognormal(3), _lognormal(4)),
        "heavy-tailed-shift-20pct": (_lognormal(3, 1.2), _lognormal(4)),
        "heavy-tailed-shift-50pct": (_lognormal(3, 1.5), _lognormal(4)),
        "constant-same": ([100.0] * POINTS, [100.0] * POINTS),
        "constant-higher": ([110.0] * POINTS, [100.0] * POINTS),
        "nan-laced-shift-20pct": (_nan_laced([v * 1.2 for v in _normal(2)], 4), control),
        "nan-laced-same": (_nan_laced(_normal(2), 3), _nan_laced(control, 5)),
        # The canary series does not exist at all.
        "empty": ([], control),
    }


def openmetrics() -> str:
    lines = ["# TYPE judge_sample gauge"]
    times = [END - WINDOW + i * STEP for i in range(POINTS)]
    for case, (canary, control) in cases().items():
        for role, values in (("canary", canary), ("primary", control)):
            for t, value in zip(times, values, strict=False):
                shown = "NaN" if math.isnan(value) else repr(value)
                lines.append(f'judge_sample{{case="{case}",role="{role}"}} {shown} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def start_prometheus(workdir: Path, series: str, port: int) -> Iterator[str]:
    """Backfill `series` (OpenMetrics) and serve it; stops the process afterwards."""
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool")
    data = workdir / "data"
    data.mkdir()
    source = workdir / "series.om"
    source.write_text(series)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 30s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
