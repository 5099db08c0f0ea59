"""Pytest plugin for the WebSocket compliance suite: prints an Autobahn-style
summary (cases passed per group, per twin) at the end of the run.

Registered by ``pytest_plugins`` in ``tests/test_ws_compliance.py``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "9": "Limits/Performance",
    "12": "permessage-deflate (messages)",
    "13": "permessage-deflate (parameters)",
}

_CASE = re.compile(r"test_ws_compliance\.py::test_\w+\[(?P<twin>python|cython)-"
                   r"(?P<case>\d+(?:\.\d+)*)-(?P<role>server|client)\]")
# (twin, group) -> [passed, total]
_results: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    m = _CASE.search(report.nodeid)
    if not m:
        return
    key = (m.group("twin"), m.group("case").split(".")[0])
    _results[key][1] += 1
    if report.outcome == "passed":
        _results[key][0] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    tr = terminalreporter
    tr.section("WebSocket compliance (Autobahn|TestSuite groups, our own cases)")
    twins = sorted({t for t, _ in _results})
    header = f"{'group':<36}" + "".join(f"{t:>18}" for t in twins)
    tr.write_line("cases x roles (server: masked input, client: unmasked) passed, per twin")
    tr.write_line(header)
    totals = {t: [0, 0] for t in twins}
    for g in sorted(GROUPS, key=int):
        cells = []
        for t in twins:
            passed, total = _results.get((t, g), [0, 0])
            totals[t][0] += passed
            totals[t][1] += total
            mark = "-" if not total else "OK" if passed == total else "FAIL"
            cells.append(f"{passed:>5}/{total:<5} {mark:>4}   ")
        tr.write_line(f"{g + ' ' + GROUPS[g]:<36}" + "".join(f"{c:>18}" for c in cells))
    tr.write_line(f"{'all':<36}" + "".join(
        f"{f'{p:>5}/{n:<5}':>18}" for p, n in (totals[t] for t in twins)))
