"""benchmarks/e2e_fanout.py end to end, small: a private redis-server, two
uvicorn workers and client processes, as ``make bench-e2e`` runs it.  Every
event published reaches every SSE and WebSocket client once and in order,
on each side (the peer's side needs requirements/bench.txt)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("side", ["streamcore", "broadcaster"])
def test_every_event_reaches_every_client_once_in_order(side: str, tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps installs it)")
    if side == "broadcaster":
        for module in ("broadcaster", "sse_starlette"):
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"{module} is a benchmark peer (requirements/bench.txt)")
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e_fanout", "--sides", side, "--clients", "6",
         "--seconds", "0.3", "--burst", "40", "--no-chart", "--results", str(tmp_path),
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "fanout.json").read_text())
    r = rows[side]
    for phase, events in (("fixed", 30), ("burst", 40)):
        assert r[phase]["expected"] == events * 12  # 6 SSE + 6 WebSocket clients
        assert r[phase]["delivered"] == r[phase]["expected"]
        assert r[phase]["disorder"] == 0
        assert r[phase]["p50_ms"] <= r[phase]["p99_ms"]
    assert r["burst"]["deliveries_per_s"] > 0
    assert "| " + side + " |" in (tmp_path / "fanout.md").read_text()
