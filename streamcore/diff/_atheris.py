"""The coverage-guided engine: libFuzzer (through atheris) mutates a byte
string, :class:`~streamcore.diff.generators.ByteRng` turns it into the
grammar generator's choices, and the Python code of every peer (and of our
reference) is instrumented, so an input that reaches new branches in any of
them is kept in the corpus and mutated further.

``atheris.Fuzz()`` never returns (libFuzzer owns the process and exits it),
so each worker is a child process: ``python -m streamcore.diff._atheris
PROTOCOL NAMES SECONDS SEED MINIMISE OUT``.  The worker appends one JSON line
per new finding to ``OUT`` as it is found, and a last line with the input
count when its time is up, then leaves with ``os._exit(0)``.  libFuzzer's
``-seed`` fixes its mutation sequence and ``PYTHONHASHSEED`` is pinned, so
the same seed gives the same sequence of inputs (a time budget decides only
how far along it a run gets).
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from typing import Any

from .core import Finding, Peers, Result, evaluate, record
from .generators import GENERATORS, ByteRng, RecordingRng

#: seed inputs from the seeded generator that start the corpus
CORPUS = 64


def available() -> bool:
    try:
        importlib.import_module("atheris")
    except ImportError:
        return False
    return True


#: the top-level packages of the built-in peers
_PEER_PACKAGES = ("h11", "httptools", "aiohttp", "wsproto", "websockets", "httpx_sse")


def _instrument_module(atheris: Any, module: Any) -> None:
    for obj in list(vars(module).values()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if isinstance(obj, type):
            for name, member in list(vars(obj).items()):
                if isinstance(member, types.FunctionType):
                    setattr(obj, name, atheris.instrument_func(member))
        elif isinstance(obj, types.FunctionType):
            setattr(module, obj.__name__, atheris.instrument_func(obj))


def _worker(protocol: str, names: list[str], seconds: float, seed: int, minimise: float, out: str,
            max_inputs: int | None = None) -> None:
    atheris = importlib.import_module("atheris")

    # coverage of: every peer's Python code (instrumented as it is imported
    # here), the reference twin and the strict readers of .classes (loaded
    # already: instrumented function by function); not the standard library
    # a user's module:callable peer is instrumented too
    own = [spec.partition(":")[0].split(".")[0] for spec in names if ":" in spec]
    with atheris.instrument_imports(include=[*_PEER_PACKAGES, *own], enable_loader_override=False):
        peers = Peers(protocol, names)
    for modname in (f"streamcore.{protocol}._py", f"streamcore.{protocol}._common", "streamcore.diff.classes"):
        _instrument_module(atheris, importlib.import_module(modname))
    gen = GENERATORS[protocol]
    findings: dict[tuple[str, str], Finding] = {}
    sink = open(out, "a", buffering=1)  # noqa: SIM115 - closed by os._exit's flush below
    sink.write(json.dumps({"peers": list(peers.peers), "unavailable": peers.unavailable,
                           "versions": {n: str(getattr(a, "version", "")) for n, a in peers.peers.items()}})
               + "\n")
    state: dict[str, Any] = {"inputs": 0, "minimising": 0.0, "cpu_minimising": 0.0, "corpus": ""}
    start, cpu_start = time.monotonic(), time.process_time()

    def done() -> None:
        shutil.rmtree(str(state["corpus"]), ignore_errors=True)
        elapsed = time.monotonic() - start - state["minimising"]
        cpu = time.process_time() - cpu_start - state["cpu_minimising"]
        sink.write(json.dumps({"inputs": state["inputs"], "seconds": elapsed, "cpu": cpu}) + "\n")
        sink.flush()
        os._exit(0)

    def one(buf: bytes) -> None:
        elapsed = time.monotonic() - start - state["minimising"]
        if elapsed >= seconds or (max_inputs is not None and state["inputs"] >= max_inputs):
            done()
        data = gen(ByteRng(buf))
        state["inputs"] += 1
        hits = evaluate(peers, data, seed)
        if hits:
            t0, c0 = time.monotonic(), time.process_time()
            for f in record(peers, findings, data, hits, minimise, elapsed, int(state["inputs"])):
                sink.write(json.dumps({"cls": f.cls, "peer": f.peer, "data": f.data.hex(), "mode": f.mode,
                                       "quirk": f.quirk, "first": f.first, "first_input": f.first_input})
                           + "\n")
            for h in hits:  # counts of the ones already seen
                key = (h.cls, h.peer)
                if findings[key].count > 1:
                    sink.write(json.dumps({"count": [h.cls, h.peer]}) + "\n")
            state["minimising"] += time.monotonic() - t0
            state["cpu_minimising"] += time.process_time() - c0

    # the seed corpus: the seeded generator's first inputs, as ByteRng bytes
    corpus = tempfile.mkdtemp(prefix="streamcore-diff-corpus-")
    for i in range(CORPUS):
        rec = RecordingRng(seed * 7919 + i)
        gen(rec)
        with open(os.path.join(corpus, f"seed{i:03d}"), "wb") as fh:
            fh.write(bytes(rec.recorded))
    state["corpus"] = corpus
    atheris.Setup([sys.argv[0], f"-seed={seed + 1}", "-max_len=512", "-rss_limit_mb=4096",
                   "-print_final_stats=0", corpus], one)
    atheris.Fuzz()
    done()  # pragma: no cover - libFuzzer exits before this


def _read(path: str, protocol: str) -> Result:
    result = Result(protocol, {}, 0, 0.0, [], {}, {}, "atheris")
    with open(path) as fh:
        for line in fh:
            row: dict[str, Any] = json.loads(line)
            if "peers" in row:
                result.peers, result.unavailable, result.versions = row["peers"], row["unavailable"], row["versions"]
            elif "cls" in row:
                key = (row["cls"], row["peer"])
                result.findings[key] = Finding(row["cls"], row["peer"], bytes.fromhex(row["data"]), row["mode"],
                                               1, row["quirk"], row["first"], row["first_input"])
            elif "count" in row:
                result.findings[(row["count"][0], row["count"][1])].count += 1
            else:
                result.inputs, result.seconds, result.cpu_seconds = row["inputs"], row["seconds"], row["cpu"]
    return result


def fuzz_atheris(protocol: str, names: list[str], seconds: float, seed: int,
                 minimise_budget: float = 1.0, max_inputs: int | None = None) -> Result:
    """One coverage-guided worker for ``seconds`` of fuzzing (or
    ``max_inputs`` inputs, whichever comes first), in a child process."""
    fd, path = tempfile.mkstemp(prefix="streamcore-diff-", suffix=".jsonl")
    os.close(fd)
    try:
        # the child imports what this process can (a module:callable peer too)
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join(p or os.curdir for p in sys.path))
        proc = subprocess.run(
            [sys.executable, "-m", "streamcore.diff._atheris", protocol, ",".join(names), str(seconds), str(seed),
             str(minimise_budget), path, str(max_inputs or 0)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            timeout=seconds * 4 + 120)
        result = _read(path, protocol)
        if proc.returncode != 0 or not result.peers:
            raise RuntimeError(f"atheris worker failed ({proc.returncode}, unavailable: {result.unavailable}): "
                               f"{proc.stderr[-2000:]}")
        return result
    finally:
        os.unlink(path)


if __name__ == "__main__":
    _p, _names, _secs, _seed, _mini, _out, _max = sys.argv[1:8]
    sys.argv[1:] = []
    _worker(_p, [n for n in _names.split(",") if n], float(_secs), int(_seed), float(_mini), _out,
            int(_max) or None)
