"""Side-by-side comparison of streamcore against its peers (``make bench``).

Discovers every module in ``benchmarks/workloads/``, times each contender of
each workload in this one process, prints a table per group (MB/s, events/s,
ratio of each streamcore twin to each peer) and writes, under
``benchmarks/results/``, a Markdown table and a PNG chart per group (the chart
is also copied to ``docs/img/bench-<group>.png`` for the benchmarks page).

    python -m benchmarks.compare [--group chunked] [--budget 1.0] [--rounds 1] [--clock wall]
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import shutil
import sys
import time
from collections import defaultdict

from benchmarks import workloads as workloads_pkg
from benchmarks.harness import CLOCKS, Result, Workload, time_contender

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DOCS = os.path.join(os.path.dirname(HERE), "docs")


def discover(groups: set[str] | None) -> list[Workload]:
    found: list[Workload] = []
    for info in sorted(pkgutil.iter_modules(workloads_pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"benchmarks.workloads.{info.name}")
        for wl in module.workloads():
            if groups is None or wl.group in groups:
                found.append(wl)
    return found


def versions() -> dict[str, str]:
    from importlib import metadata

    import streamcore

    out = {"python": platform.python_version(), "machine": platform.machine()}
    cpu = _cpu_model()
    if cpu:
        out["cpu"] = cpu
    out["streamcore"] = f"{streamcore.__version__} ({streamcore.IMPLEMENTATION}{_git_commit()})"
    for dist in ("cython", "h11", "httptools", "aiohttp", "wsproto", "websockets",
                 "httpx-sse", "sse-starlette", "picows"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _cpu_model() -> str:
    """The CPU's model name (Linux), or what platform knows, or nothing."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str:
    """`, commit abc1234` of the source tree measured (`-dirty`: local changes, other
    than the results this command writes), when it is a git checkout."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=os.path.dirname(HERE), capture_output=True,
                                 text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return ""
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                ":(exclude)benchmarks/results", ":(exclude)docs/img")
    return f", commit {commit}" + ("-dirty" if dirty else "")


def fmt_rate(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def measure(wl: Workload, budget: float, rounds: int = 1, clock: str = "wall") -> dict[str, Result]:
    """Time every contender; with ``rounds`` > 1, go round the contenders that
    many times (``budget / rounds`` each) and keep each one's best, so a burst
    of load on a shared machine does not land on one contender only."""
    results: dict[str, Result] = {}
    for r in range(rounds):
        for label, setup in wl.contenders.items():
            if r and not results[label].seconds:
                continue  # failed or wrong in the first round: no number
            res = time_contender(setup, wl.expected, budget / rounds, check=wl.check, clock=clock)
            res.label = label
            best = results.get(label)
            if best is None or (res.seconds and best.seconds and res.seconds < best.seconds):
                results[label] = res
            elif res.seconds is None:  # wrong in a later round: no number at all
                results[label] = res
            if r == rounds - 1 or results[label].seconds is None:
                res = results[label]
                shown = f"{res.seconds * 1e3:9.2f} ms" if res.seconds else f"  -- {res.error}"
                print(f"  {wl.name:<6} {label:<32} {shown}", flush=True)
    return results


def fmt_ratio(got: float, want: float) -> str:
    """Two decimals, or three when two would round a miss up to the target."""
    return f"{got:.3f}×" if got < want <= round(got, 2) else f"{got:.2f}×"


def target_summary(rows: list[tuple[Workload, dict[str, Result]]]) -> list[str]:
    """Every target of the group in one table: workload, target, measured ratio, verdict."""
    lines = ["| workload | target | measured | |", "|---|---|---:|---|"]
    for wl, results in rows:
        for o, p, want in wl.targets:
            ro, rp = results.get(o), results.get(p)
            if ro and rp and ro.seconds and rp.seconds:
                got = rp.seconds / ro.seconds
                lines.append(f"| {wl.name} | {o} ≥ {want:g}× {p} | {fmt_ratio(got, want)} | "
                             + ("met" if got >= want else "**MISSED**") + " |")
            else:
                lines.append(f"| {wl.name} | {o} ≥ {want:g}× {p} | — | not measured |")
    return lines if len(lines) > 2 else []


def table(group: str, rows: list[tuple[Workload, dict[str, Result]]]) -> str:
    lines = [f"## {group}", ""]
    summary = target_summary(rows)
    if summary:
        lines += ["### Targets", ""] + summary + [""]
    for wl, results in rows:
        lines.append(f"### {wl.name}: {wl.description}")
        lines.append("")
        lines.append("| contender | time (ms) | MB/s | events/s |")
        lines.append("|---|---:|---:|---:|")
        for label, res in results.items():
            name = f"**{label}**" if label in wl.ours else label
            if res.seconds:
                mbs = wl.nbytes / res.seconds / 1e6
                eps = wl.nevents / res.seconds
                lines.append(f"| {name} | {res.seconds * 1e3:.2f} | {fmt_rate(mbs)} | {fmt_rate(eps)} |")
            else:
                lines.append(f"| {name} | — | — | {res.error} |")
        peers = [p for p in results if p not in wl.ours and results[p].seconds]
        ours = [o for o in wl.ours if o in results and results[o].seconds]
        if peers and ours:
            lines.append("")
            lines.append("| ratio (× faster) | " + " | ".join(peers) + " |")
            lines.append("|---|" + "---:|" * len(peers))
            for o in ours:
                cells = [f"{results[p].seconds / results[o].seconds:.2f}×" for p in peers]
                lines.append(f"| {o} | " + " | ".join(cells) + " |")
        if wl.targets:
            lines.append("")
            for o, p, want in wl.targets:
                if results.get(o) and results.get(p) and results[o].seconds and results[p].seconds:
                    got = results[p].seconds / results[o].seconds
                    mark = "met" if got >= want else "MISSED"
                    lines.append(f"- target {o} ≥ {want}× {p}: {fmt_ratio(got, want)} ({mark})")
                else:
                    lines.append(f"- target {o} ≥ {want}× {p}: not measured")
        for note in wl.notes:
            lines.append(f"- note: {note}")
        lines.append("")
    return "\n".join(lines)


def chart(group: str, rows: list[tuple[Workload, dict[str, Result]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    height = 1.2 + 0.42 * sum(len(r) for _, r in rows) + 0.6 * n
    fig, axes = plt.subplots(n, 1, figsize=(9, height), squeeze=False)
    for ax, (wl, results) in zip(axes[:, 0], rows):
        labels = [lab for lab, res in results.items() if res.seconds]
        rates = [wl.nbytes / results[lab].seconds / 1e6 for lab in labels]
        colors = ["#1f77b4" if lab in wl.ours else "#aaaaaa" for lab in labels]
        ax.barh(labels, rates, color=colors)
        ax.invert_yaxis()
        if rates:
            ax.set_xlim(0, max(rates) * 1.15)  # room for the value printed after each bar
        ax.set_title(f"{wl.name}: {wl.description}", fontsize=9, loc="left")
        ax.set_xlabel("MB/s (higher is better)", fontsize=8)
        ax.tick_params(labelsize=8)
        for i, r in enumerate(rates):
            ax.text(r, i, f" {fmt_rate(r)}", va="center", fontsize=7)
    fig.suptitle(f"streamcore {group}: throughput, one run, side by side", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height))  # room for the title
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", action="append", help="only these groups (repeatable)")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("BENCH_BUDGET", "1.0")),
                        help="seconds to spend timing each contender (best of the runs)")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "1")),
                        help="go round the contenders this many times, keeping each one's best")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default=os.environ.get("BENCH_CLOCK", "wall"),
                        help="wall time (default) or this process's CPU time (for a shared machine)")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)

    import streamcore

    print(f"streamcore {streamcore.__version__}, IMPLEMENTATION={streamcore.IMPLEMENTATION}")
    info = versions()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    wls = discover(set(args.group) if args.group else None)
    by_group: dict[str, list[tuple[Workload, dict[str, Result]]]] = defaultdict(list)
    for wl in wls:
        print(f"[{wl.group}] {wl.name}: {wl.description}", flush=True)
        by_group[wl.group].append((wl, measure(wl, args.budget, max(1, args.rounds), args.clock)))

    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = f", load average {os.getloadavg()[0]:.2f} at the end" if hasattr(os, "getloadavg") else ""
    header = (f"Measured {stamp} on {platform.machine()} ({os.cpu_count()} cores{load}), "
              + ", ".join(f"{k} {v}" for k, v in info.items())
              + f". Best of several runs per contender ({args.budget:g} s each, {max(1, args.rounds)} "
              f"round(s) over the contenders, {args.clock} clock), all in one process, one after another. "
              "Ratios are peer time / streamcore time (higher is better for streamcore).\n")
    for group, rows in by_group.items():
        text = table(group, rows)
        print()
        print(text)
        with open(os.path.join(RESULTS, f"{group}.md"), "w") as fh:
            fh.write(f"# streamcore benchmark: {group}\n\n{header}\nReproduce: `make bench`.\n\n{text}")
        if not args.no_chart:
            png = os.path.join(RESULTS, f"{group}.png")
            chart(group, rows, png)
            print(f"wrote {os.path.relpath(png)}")
            # the benchmarks page (docs/benchmarks.md) shows the same chart; mkdocs
            # only serves files under docs/, so a copy goes there
            if os.path.isdir(DOCS):
                os.makedirs(os.path.join(DOCS, "img"), exist_ok=True)
                shutil.copyfile(png, os.path.join(DOCS, "img", f"bench-{group}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
