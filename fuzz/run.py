"""Run every atheris harness in fuzz/ for a while and report what it did.

    python fuzz/run.py [--seconds 10] [harness ...]

Each harness ``fuzz/fuzz_<name>.py`` is run in its own process with its own
corpus folder (``fuzz/corpus/<name>``, seeded from ``fuzz/corpus/seed-<name>``
when that exists).  A crash — an exception other than streamcore's
documented ones, or the twins disagreeing — makes this exit non-zero and
leaves the reproducer in ``fuzz/crashes/``.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "10")))
    parser.add_argument("harness", nargs="*")
    args = parser.parse_args()
    names = args.harness or sorted(
        os.path.basename(p)[5:-3] for p in glob.glob(os.path.join(HERE, "fuzz_*.py"))
    )
    crashes = os.path.join(HERE, "crashes")
    os.makedirs(crashes, exist_ok=True)
    failed = []
    total = 0
    for name in names:
        corpus = os.path.join(HERE, "corpus", name)
        os.makedirs(corpus, exist_ok=True)
        seed = os.path.join(HERE, "corpus", f"seed-{name}")
        if os.path.isdir(seed):
            for f in os.listdir(seed):
                shutil.copy(os.path.join(seed, f), corpus)
        cmd = [
            sys.executable, os.path.join(HERE, f"fuzz_{name}.py"),
            f"-max_total_time={args.seconds}", "-rss_limit_mb=4096", "-timeout=20",
            f"-artifact_prefix={crashes}{os.sep}{name}-", corpus,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        runs = re.findall(r"Done (\d+) runs in (\d+) second", out)
        execs = int(runs[-1][0]) if runs else 0
        total += execs
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"fuzz {name}: {execs} executions in {args.seconds} s: {status}", flush=True)
        if proc.returncode != 0:
            print(out[-4000:])
            failed.append(name)
    print(f"fuzz: {total} executions over {len(names)} harness(es), {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
