"""streamcore.diff finds every class planted in the lenient toys of
test_diff_toys.py (one toy per class), finds nothing between our twins,
writes pytest cases that fail against the toy, merges ``--jobs`` workers
deterministically and, through atheris, replays the same run for a seed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import test_diff_toys as toys

from streamcore.diff import _atheris, check, fuzz_seeded
from streamcore.diff.__main__ import run
from streamcore.diff.classes import DESCRIPTIONS
from streamcore.diff.writer import table, write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))


def _spec(toy: type) -> str:
    return f"test_diff_toys:{toy.__name__}"


def _key(result):  # type: ignore[no-untyped-def]
    return sorted((k, f.data, f.mode, f.count, f.first_input) for k, f in result.findings.items())


def test_every_class_has_a_lenient_toy():
    assert set(toys.TOYS) == set(DESCRIPTIONS)


@pytest.mark.parametrize("protocol", ["chunked", "sse", "ws"])
def test_every_planted_class_is_found_minimised_and_its_case_fails(protocol, tmp_path):
    planted = {cls: toy for cls, toy in toys.TOYS.items() if toy.protocol == protocol}
    specs = {f"toy-{toy.__name__.lower()}": _spec(toy) for toy in planted.values()}
    result = fuzz_seeded(protocol, list(specs.values()), seconds=60, seed=1, minimise_budget=5.0,
                         max_inputs=1000, minimise_tries=120)
    assert not result.unavailable
    missing = [cls for cls, toy in planted.items() if (cls, f"toy-{toy.__name__.lower()}") not in result.findings]
    assert not missing, table(result)
    for cls, toy in planted.items():
        finding = result.findings[(cls, f"toy-{toy.__name__.lower()}")]
        assert cls in check(protocol, _spec(toy), finding.data), (cls, finding.data)  # still shows it
    written = write(result, str(tmp_path), specs)
    assert len(written) == len(result.findings)
    # every written case runs and fails: the toy differs from the reference on its input
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=ENV, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(written)} failed" in proc.stdout and " passed" not in proc.stdout, proc.stdout[-3000:]
    for cls, toy in planted.items():  # the case of each planted class is one of them
        assert f"test_{protocol}_{cls.lower().replace('.', '_')}_toy_{toy.__name__.lower()}" in proc.stdout


def test_a_declared_quirk_is_counted_not_written(tmp_path):
    result = fuzz_seeded("chunked", [_spec(toys.PrefixQuirk)], 60, 1, 5.0, max_inputs=300)
    finding = result.findings[("INT.PREFIX", "toy-prefixquirk")]
    assert finding.quirk
    assert f"q{finding.count}" in table(result)
    written = write(result, str(tmp_path), {"toy-prefixquirk": _spec(toys.PrefixQuirk)})
    assert not any("INT.PREFIX" in d for d in written)


@pytest.mark.parametrize("protocol", ["chunked", "sse", "ws"])
def test_our_twins_agree(protocol):
    result = fuzz_seeded(protocol, ["streamcore-c"], seconds=30, seed=2, max_inputs=400)
    assert result.inputs == 400
    assert not result.findings, table(result)


def test_jobs_merge_deterministically_under_a_seed():
    one = run("seeded", "chunked", ["h11"], 60, 5, 2, 5.0, max_inputs=100)
    two = run("seeded", "chunked", ["h11"], 60, 5, 2, 5.0, max_inputs=100)
    assert one.inputs == two.inputs == 200
    assert one.findings and _key(one) == _key(two)
    # the same as the two seeds run one after the other, merged in either order
    a = fuzz_seeded("chunked", ["h11"], 60, 5, 5.0, max_inputs=100)
    b = fuzz_seeded("chunked", ["h11"], 60, 6, 5.0, max_inputs=100)
    c = fuzz_seeded("chunked", ["h11"], 60, 6, 5.0, max_inputs=100)
    d = fuzz_seeded("chunked", ["h11"], 60, 5, 5.0, max_inputs=100)
    a.merge(b)
    c.merge(d)
    assert _key(a) == _key(one) == _key(c)


def test_cli_jobs_0_uses_every_core_and_prints_the_class_by_peer_table(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "streamcore.diff", "chunked", "--engine", "seeded",
                           "--jobs", "0", "--inputs", "120", "--seed", "1", "--out", str(tmp_path),
                           "--minimise-seconds", "0.2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr  # findings: exit 1 (--exit-zero: 0)
    cores = os.cpu_count() or 1
    assert f"{cores} worker" in proc.stdout
    assert f"{120 * cores} inputs" in proc.stdout
    assert "| class" in proc.stdout and "h11" in proc.stdout and "inputs/s per core" in proc.stdout


@pytest.mark.skipif(not _atheris.available(), reason="atheris is not installed")
def test_atheris_replays_the_same_run_for_a_seed_and_finds_the_planted_class():
    spec = _spec(toys.TermLF)
    one = _atheris.fuzz_atheris("chunked", [spec], 60, 3, 5.0, max_inputs=200)
    two = _atheris.fuzz_atheris("chunked", [spec], 60, 3, 5.0, max_inputs=200)
    assert one.engine == "atheris" and one.inputs == two.inputs == 200
    assert ("TERM.LF", "toy-termlf") in one.findings, table(one)
    assert _key(one) == _key(two)


def test_a_split_finding_keeps_its_split_points_and_its_written_case_fails(tmp_path):
    spec = _spec(toys.Seven)
    result = fuzz_seeded("chunked", [spec], 60, seed=5, minimise_budget=5.0, max_inputs=300)
    f = result.findings[("CHUNKED.SPLIT", "toy-seven")]
    assert f.splits, f.mode  # the split points of the minimised input, not a mode name of another input
    assert "CHUNKED.SPLIT" in check("chunked", spec, f.data, f.splits)
    written = write(result, str(tmp_path), {"toy-seven": spec})
    (d,) = written
    assert f"# mode: {f.mode}" in open(os.path.join(d, "verdicts.txt")).read()
    assert "error" in open(os.path.join(d, "verdicts.txt")).read().splitlines()[-1]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", d],
                          capture_output=True, text=True, env=ENV, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout[-2000:]


def test_a_wrong_shaped_outcome_is_an_adapter_crash():
    assert check("chunked", _spec(toys.WrongShape), b"3\r\nabc\r\n0\r\n\r\n") == ["ADAPTER.CRASH"]


@pytest.mark.parametrize("against", ["nosuch_module_xyz:X", "h12", "test_diff_toys:NoSuchToy"])
def test_a_bad_against_is_a_usage_error(against, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "streamcore.diff", "chunked", "--engine", "seeded",
                           "--inputs", "5", "--against", against, "--out", str(tmp_path)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "--against" in proc.stderr


def test_a_case_for_an_unavailable_peer_skips_and_out_is_cleared(tmp_path):
    stale = tmp_path / "chunked" / "OLD.CLASS"
    stale.mkdir(parents=True)
    result = fuzz_seeded("chunked", [_spec(toys.Prefix)], 60, 1, 2.0, max_inputs=200)
    (d,) = [x for x in write(result, str(tmp_path), {"toy-prefix": _spec(toys.Prefix)}) if "INT.PREFIX" in x]
    assert not stale.exists()
    (case,) = [n for n in os.listdir(d) if n.startswith("test_chunked_int_prefix")]
    text = open(os.path.join(d, case)).read()
    assert "'INT.PREFIX' not in found" in text
    # the peer's module gone: the case skips with the reason instead of failing
    env = dict(os.environ, PYTHONPATH=ROOT)
    with open(os.path.join(d, case), "w") as fh:
        fh.write(text.replace("MODULE_DIR = ", "MODULE_DIR = '' and "))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", d],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert "1 skipped" in proc.stdout, proc.stdout[-2000:]


def test_a_bare_cr_in_an_extension_is_named_for_what_the_peer_did():
    # h11 keeps the CR inside the extension: its body is "6g"
    assert check("chunked", "h11", b"2;\rxx\r\n6g\r\n0\r\n\r\n") == ["TERM.EXT.SWALLOW"]
    assert check("chunked", _spec(toys.TermExtEnd), b"2;a\nxx\r\n0\r\n\r\n") == ["TERM.EXT.END"]


def test_minimising_does_not_pick_up_a_second_leniency():
    from streamcore.diff.core import Peers, minimise
    spec = _spec(toys.PrefixLF)
    data = b"0x5\r\nabcde\r\n0\r\n\r\n"
    assert check("chunked", spec, data) == ["INT.PREFIX"]
    assert check("chunked", spec, b"0x5\nabcde\n0\n\n") == ["INT.PREFIX"]  # the toy takes bare LF too
    small = minimise(Peers("chunked", [spec]), data, "INT.PREFIX", "toy-prefixlf", 5.0)
    assert check("chunked", spec, small) == ["INT.PREFIX"]
    assert b"\r\n" in small and small.count(b"\n") == small.count(b"\r\n"), small


def test_an_empty_size_and_a_bare_cr_are_named_for_what_the_peer_did():
    assert check("chunked", _spec(toys.EmptyZero), b";a\r\n\r\n") == ["INT.EMPTY.ZERO"]
    assert check("chunked", _spec(toys.EmptySkip), b"2\r\nxx\r\n\r\n0\r\n\r\n") == ["INT.EMPTY.SKIP"]
    assert check("chunked", _spec(toys.Empty), b"\r\n\r\n") == ["INT.EMPTY"]
    assert check("chunked", _spec(toys.TermCREnd), b"2\rxx\r\n0\r\n\r\n") == ["TERM.CR.END"]
    assert check("chunked", _spec(toys.TermCRSwallow), b"2\rxx\r\nab\r\n0\r\n\r\n") == ["TERM.CR.SWALLOW"]
    assert check("chunked", _spec(toys.TermCR), b"2\rxx\r\n0\r\n\r\n") == ["TERM.CR"]
