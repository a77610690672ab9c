"""`bench/chaos.py` in a tiny configuration: the controller `kill -9`ed three times during releases,
with injected API faults, then an API server restarted empty, breaks none of the invariants (one
promotion per revision, no bad revision promoted, no stuck canary, no stale status written into a
re-created Canary). The bench starts its own API server — devcluster, or the real control plane
(without fault injection, which only devcluster has) — and its controllers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clusters import tiers

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tier", tiers())
def test_releases_survive_controller_kills_api_faults_and_lost_state_without_violations(
    tier: str, tmp_path: Path
) -> None:
    real = tier == "realcluster"
    figures_path = tmp_path / "figures.json"
    argv = [
        sys.executable,
        str(ROOT / "bench" / "chaos.py"),
        "--canaries=2",
        "--kills=3",
        "--kill-every=1:4",
        "--duration=20",
        *(["--cluster=real"] if real else ["--fault-rate=0.05"]),
        "--lost-state",
        "--deadline=90",
        f"--workdir={tmp_path / 'logs'}",
        f"--json={figures_path}",
    ]
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False)
    output = result.stdout + result.stderr
    assert figures_path.exists(), output
    figures = json.loads(figures_path.read_text())
    assert figures["violations"] == [], output
    assert result.returncode == 0, output
    # It did what it says: three kills (at most 12 s of the 20), and releases got through them.
    assert figures["kills"] == 3, output
    assert figures["releases"] >= 2, output
    assert figures["controller_crashes"] == 0, output
    assert figures["lost_state_recreated"] == 2, output
