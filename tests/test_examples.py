"""The examples run and do what they say (each over loopback, bounded in time)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
# Examples that run on their own (server and client in one process); the
# WebSocket server/client pair is run against `websockets` in test_ws_interop.
SELF_CONTAINED = {"chunked_blocking.py", "asyncio_http_sse.py"}
EXAMPLES = [p for p in ALL if os.path.basename(p) in SELF_CONTAINED]


def test_every_example_is_exercised():
    with open(os.path.join(ROOT, "tests", "test_ws_interop.py")) as fh:
        interop = fh.read()
    for path in ALL:
        name = os.path.basename(path)
        assert name in SELF_CONTAINED or f"load_example(\"{name[:-3]}\")" in interop, name


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
@pytest.mark.parametrize("no_ext", ["0", "1"], ids=["cython", "python"])
def test_example_runs(path, no_ext):
    env = dict(os.environ, STREAMCORE_NO_EXTENSIONS=no_ext,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, path], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
