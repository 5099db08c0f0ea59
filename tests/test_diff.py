"""streamcore.diff finds the classes planted in lenient toys, nothing between
our twins, and writes pytest cases that fail against the toy."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streamcore.diff import check, fuzz_seeded
from streamcore.diff.writer import table, write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PLANTED = [
    ("chunked", "test_diff_toys:PrefixToy", "INT.PREFIX"),
    ("chunked", "test_diff_toys:BareLFToy", "TERM.LF"),
    ("sse", "test_diff_toys:BOMToy", "SSE.BOM.KEPT"),
    ("ws", "test_diff_toys:NonMinimalToy", "WS.LENGTH.NONMINIMAL"),
]


@pytest.mark.parametrize(("protocol", "spec", "cls"), PLANTED)
def test_the_planted_class_is_found_minimised_and_its_case_fails(protocol, spec, cls, tmp_path):
    result = fuzz_seeded(protocol, [spec], seconds=8, seed=1, minimise_budget=1.0, max_inputs=1500)
    found = {c for c, _ in result.findings}
    assert cls in found, table(result)
    finding = next(f for (c, _), f in result.findings.items() if c == cls)
    assert check(protocol, spec, finding.data)  # the minimised input still shows it
    write(result, str(tmp_path), {p: spec for p in result.peers})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed" in proc.stdout and " passed" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("protocol", ["chunked", "sse", "ws"])
def test_our_twins_agree(protocol):
    result = fuzz_seeded(protocol, ["streamcore-c"], seconds=3, seed=2, max_inputs=400)
    assert result.inputs > 50
    assert not result.findings, table(result)


def test_cli_prints_the_class_by_peer_table(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "streamcore.diff", "chunked", "--seconds", "3", "--seed", "1",
                           "--out", str(tmp_path), "--minimise-seconds", "0.2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| class" in proc.stdout and "h11" in proc.stdout and "inputs/s" in proc.stdout
