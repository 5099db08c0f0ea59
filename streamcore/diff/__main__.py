"""``python -m streamcore.diff chunked|sse|ws``: see docs/diff.md."""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from . import _atheris, adapters
from .core import Result, fuzz_seeded
from .writer import table, write

Work = tuple[str, str, list[str], float, int, float, "int | None"]


def _worker(args: Work) -> Result:
    engine, protocol, names, seconds, seed, budget, max_inputs = args
    if engine == "atheris":
        return _atheris.fuzz_atheris(protocol, names, seconds, seed, budget, max_inputs)
    return fuzz_seeded(protocol, names, seconds, seed, budget, max_inputs)


def run(engine: str, protocol: str, names: list[str], seconds: float, seed: int, jobs: int,
        minimise: float, max_inputs: int | None = None) -> Result:
    """``jobs`` workers with seeds ``seed``, ``seed + 1``, ...; their results
    merged in worker order (the merge does not depend on it).  With
    ``max_inputs`` (per worker) the result depends on the seed only."""
    work: list[Work] = [(engine, protocol, names, seconds, seed + i, minimise, max_inputs) for i in range(jobs)]
    if jobs == 1:
        results = [_worker(work[0])]
    elif engine == "atheris":  # every worker is a child process already
        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(_worker, work))
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_worker, work)
    result = results[0]
    for other in results[1:]:
        result.merge(other)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamcore.diff", description=__doc__)
    ap.add_argument("protocol", choices=sorted(adapters.BUILTIN))
    ap.add_argument("--against", default="", help="comma-separated peer names or module:callable "
                    "(default: every built-in peer and streamcore-c; streamcore-py is the reference)")
    ap.add_argument("--seconds", type=float, default=60.0, help="fuzzing time per worker")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="diff-findings")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (0: every core)")
    ap.add_argument("--engine", choices=["auto", "atheris", "seeded"], default="auto",
                    help="auto: coverage-guided (atheris) when installed, else seeded")
    ap.add_argument("--minimise-seconds", type=float, default=2.0)
    ap.add_argument("--inputs", type=int, default=None,
                    help="stop each worker after this many inputs (a run then depends on --seed only)")
    ap.add_argument("--exit-zero", action="store_true",
                    help="exit 0 even when there are findings (default: 1 when any is written)")
    ns = ap.parse_args(argv)
    names = [n for n in ns.against.split(",") if n] or adapters.default_peers(ns.protocol)
    for n in names:  # mistakes in --against are usage errors, before any work
        try:
            adapters.load(ns.protocol, n)
        except adapters.Unavailable:
            pass
        except Exception as exc:
            ap.error(f"--against: {exc}")
    jobs = ns.jobs or os.cpu_count() or 1
    engine = ns.engine
    if engine == "auto":
        engine = "atheris" if _atheris.available() else "seeded"
    elif engine == "atheris" and not _atheris.available():
        ap.error("--engine atheris: atheris is not installed")
    result = run(engine, ns.protocol, names, ns.seconds, ns.seed, jobs, ns.minimise_seconds, ns.inputs)
    specs = {getattr(adapters.load(ns.protocol, n), "name", n): n
             for n in names if n not in result.unavailable}
    written = write(result, ns.out, specs)
    print(table(result))
    print(f"{jobs} worker{'s' if jobs > 1 else ''}, seeds {ns.seed}..{ns.seed + jobs - 1}")
    print(f"{len(written)} findings written under {ns.out}/{ns.protocol}/")
    return 1 if written and not ns.exit_zero else 0


if __name__ == "__main__":
    sys.exit(main())
