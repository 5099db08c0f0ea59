"""What a peer-comparison workload is, and how one is timed.

A :class:`Workload` is one fixed job (say, decode an 8 MiB chunked body fed in
64 KiB reads) and the *contenders* that do it: streamcore's twins and the
peers.  Each contender is a setup function returning a zero-argument ``run``
callable; ``run`` does the whole job once from a fresh state and returns a
result that is checked against ``expected`` — a library that gives a wrong
result gets no number.

When checking a result is itself costly (hashing 8 MiB of body, say), ``run``
may return the raw output (the collected body pieces) and the workload's
``check`` function turns it into the value compared with ``expected``.  The
check runs once, on the warm-up run, outside the timed runs, so its cost is
kept out of the comparison and is the same for every contender.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Setup = Callable[[], Callable[[], Any]]


@dataclass
class Workload:
    group: str  # table the row belongs to, e.g. "chunked"
    name: str  # short id, e.g. "C1"
    description: str
    nbytes: int  # payload bytes processed by one run (for MB/s)
    nevents: int  # events produced or consumed by one run (for events/s)
    contenders: dict[str, Setup]
    expected: Any = None  # what every run must return; None: not checked
    ours: tuple[str, ...] = ()  # labels that are streamcore
    # (our label, peer label, minimum ratio) the issues ask for
    targets: list[tuple[str, str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # result of run() -> value compared with ``expected``; None: compare as is
    check: Callable[[Any], Any] | None = None


@dataclass
class Result:
    label: str
    seconds: float | None  # best time of one run; None: not measured
    error: str | None = None


#: the clock runs are timed with: wall time by default; ``process`` (CPU time
#: of this process, ``time.process_time``) on a machine shared with other
#: work, where being preempted would otherwise count against a contender
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}


def time_contender(setup: Setup, expected: Any, budget: float, min_repeats: int = 3, *,
                   check: Callable[[Any], Any] | None = None, clock: str = "wall") -> Result:
    """Best-of-N time of one run, within roughly ``budget`` seconds.

    The warm-up run's result (passed through ``check`` when given) must equal
    ``expected``.  What a timed run returns is released after the clock
    stops, so freeing the collected output is not timed either.
    """
    now = CLOCKS[clock]
    try:
        run = setup()
        got = run()  # warm-up, and the correctness check
        if check is not None:
            got = check(got)
    except Exception as exc:  # a peer that cannot do the job gets no number
        return Result("", None, f"{type(exc).__name__}: {exc}")
    if expected is not None and got != expected:
        return Result("", None, f"wrong result: {_short(got)} != {_short(expected)}")
    best = float("inf")
    spent = 0.0
    repeats = 0
    gc_was = gc.isenabled()
    gc.disable()
    try:
        while repeats < min_repeats or spent < budget:
            t0 = now()
            out = run()
            dt = now() - t0
            del out
            best = min(best, dt)
            spent += dt
            repeats += 1
            if repeats >= 50:
                break
    finally:
        if gc_was:
            gc.enable()
    return Result("", best)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
