"""The headline of the benchmarks page: streamcore's compiled twin against
every peer on a few representative workloads, read back from the results
files that ``python -m benchmarks.compare`` wrote (nothing is measured here).

    python -m benchmarks.summary            # prints the table, writes docs/img/bench-summary.png

Each figure is a ratio from one results file, peer time / streamcore time
(above 1: streamcore is faster), so every bar compares contenders measured in
the same process, one after another.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CHART = os.path.join(ROOT, "docs", "img", "bench-summary.png")

# (group, workload id): the small-event workloads, where per-event overhead
# decides, and one large-payload case per protocol.
HEADLINE = [
    ("chunked", "C2"), ("chunked", "C3"), ("chunked", "E2"),
    ("sse", "S1"), ("sse", "E1"),
    ("ws", "W2"), ("ws", "W3"), ("ws", "E3"),
]
OURS = "streamcore (cython)"
# Columns that are not a peer library (a hand-written baseline).
NOT_A_PEER = {"naive f-string"}

_HEADING = re.compile(r"^### (\w+): (.*)$")


def ratios(group: str) -> dict[str, tuple[str, dict[str, float]]]:
    """workload id -> (title, {peer: ratio}) from ``results/<group>.md``."""
    path = os.path.join(RESULTS, f"{group}.md")
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    out: dict[str, tuple[str, dict[str, float]]] = {}
    workload = title = None
    peers: list[str] = []
    for line in lines:
        match = _HEADING.match(line)
        if match:
            workload, title = match.group(1), match.group(2)
            peers = []
        elif line.startswith("| ratio (× faster) |"):
            peers = [cell.strip() for cell in line.strip("|").split("|")[1:]]
        elif peers and workload and line.startswith(f"| {OURS} |"):
            cells = [cell.strip().rstrip("×") for cell in line.strip("|").split("|")[1:]]
            out[workload] = (title or "", {
                peer: float(cell) for peer, cell in zip(peers, cells)
                if cell not in ("", "—") and peer not in NOT_A_PEER})
            peers = []
    return out


def measured_line(group: str) -> str:
    with open(os.path.join(RESULTS, f"{group}.md"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("Measured "):
                return line.strip()
    return ""


def headline() -> list[tuple[str, str, str, dict[str, float]]]:
    rows = []
    cache: dict[str, dict[str, tuple[str, dict[str, float]]]] = {}
    for group, workload in HEADLINE:
        table = cache.setdefault(group, ratios(group))
        if workload not in table:
            raise SystemExit(f"results/{group}.md has no {workload} ratio row for {OURS}")
        title, peers = table[workload]
        rows.append((group, workload, title, peers))
    return rows


def markdown(rows: list[tuple[str, str, str, dict[str, float]]]) -> str:
    out = ["| workload | streamcore (cython) against each peer (× faster) |", "|---|---|"]
    for group, workload, title, peers in rows:
        cells = ", ".join(f"{peer} {ratio:.2f}×" for peer, ratio in peers.items())
        out.append(f"| {group} {workload}: {title} | {cells} |")
    return "\n".join(out)


def chart(rows: list[tuple[str, str, str, dict[str, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    values: list[float] = []
    colors: list[Any] = []
    palette = plt.get_cmap("tab10")
    peer_color: dict[str, int] = {}
    for group, workload, _title, peers in reversed(rows):
        for peer, ratio in reversed(list(peers.items())):
            labels.append(f"{group} {workload} vs {peer}")
            values.append(ratio)
            base = peer.split(" (")[0]
            colors.append(palette(peer_color.setdefault(base, len(peer_color)) % 10))
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(labels) + 1.2))
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("peer time / streamcore (cython) time (log scale; right of the line: streamcore faster)")
    ax.set_title("streamcore (cython) against each peer, same process, same workload")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.2f}×", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-chart", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    rows = headline()
    print(measured_line(HEADLINE[0][0]))
    print(markdown(rows))
    if not args.no_chart:
        try:
            chart(rows, CHART)
        except ImportError:
            print("matplotlib is not installed: no chart", file=sys.stderr)
        else:
            print(f"wrote {os.path.relpath(CHART)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
