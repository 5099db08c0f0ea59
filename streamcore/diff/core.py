"""The differential loop: generate, feed every peer in every mode, compare
with the reference, classify, minimise, deduplicate.

Theory of operation: an input is fed to the reference (streamcore's
pure-Python twin) and to each peer in each feeding mode
(:func:`~streamcore.diff.outcome.modes`).  A peer that differs from the
reference in every mode has the class of that difference; one that differs
in some modes only is split-dependent (``<PROTO>.SPLIT``).  The first input
of each (class, peer) is minimised while it stays in that class; later ones
only count.
"""
from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from . import adapters as _adapters
from .classes import classify, explain_ws
from .generators import GENERATORS
from .outcome import CRASH, Outcome, differs, mode_chunks, mode_splits, modes

SPLIT_CLASS = {"chunked": "CHUNKED.SPLIT", "sse": "SSE.SPLIT", "ws": "WS.SPLIT"}


@dataclasses.dataclass
class Hit:
    cls: str
    peer: str
    mode: str
    what: str


@dataclasses.dataclass
class Finding:
    cls: str
    peer: str
    data: bytes
    #: the first feeding mode that shows the class, as :func:`.modes` names
    #: it for the minimised ``data`` and the run's seed (``split0:3,7``)
    mode: str
    count: int = 1
    quirk: str = ""
    #: seconds of fuzzing (minimising not counted) before it was first seen
    first: float = 0.0
    #: inputs generated before it was first seen
    first_input: int = 0

    @property
    def splits(self) -> list[int] | None:
        """The split points of :attr:`mode` (None: whole or bytewise)."""
        return mode_splits(self.mode)


class Peers:
    """The reference and the peers under test, built once per process."""

    def __init__(self, protocol: str, names: list[str]) -> None:
        self.protocol = protocol
        self.reference = _adapters.load(protocol, _adapters.REFERENCE)
        self.peers: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}
        for spec in names:
            try:
                adapter = _adapters.load(protocol, spec)
            except _adapters.Unavailable as exc:
                self.unavailable[spec] = str(exc)
                continue
            self.peers[getattr(adapter, "name", spec)] = adapter


def _parse(adapter: Any, chunks: list[bytes]) -> Outcome:
    try:
        return adapter.parse(chunks)  # type: ignore[no-any-return]
    except Exception as exc:  # an adapter or its peer blew up: a finding of its own
        return Outcome(CRASH, None, None, type(exc).__name__, None, str(exc)[:200])


def _differs(protocol: str, ref: Outcome, out: Outcome, exact: bool) -> str | None:
    try:
        return differs(protocol, ref, out, exact)
    except Exception:  # a wrong-shaped Outcome from an adapter
        return "crash"


def evaluate(peers: Peers, data: bytes, seed: int = 0, only: str | None = None,
             splits: list[int] | None = None) -> list[Hit]:
    """Every (class, peer) difference this input shows; ``splits``: explicit
    split points fed as one more mode (see :func:`.modes`)."""
    protocol = peers.protocol
    ref = peers.reference
    feeds = modes(data, seed, splits)
    refs = {name: _parse(ref, chunks) for name, chunks in feeds}
    hits = []
    for pname, adapter in peers.peers.items():
        if only is not None and pname != only:
            continue
        exact = getattr(adapter, "exact", False)
        diffs = []
        for mname, chunks in feeds:
            out = _parse(adapter, chunks)
            what = _differs(protocol, refs[mname], out, exact)
            if what is None and protocol == "ws" and mname == "bytewise" and not exact:
                r = refs[mname]
                if (r.status == out.status == "error" and r.error == out.error == "1007"
                        and r.where is not None and out.where is not None and out.where > r.where):
                    what = "late"
            diffs.append((mname, out, what))
        bad = [(m, o, w) for m, o, w in diffs if w is not None]
        if not bad:
            continue
        mname, out, what = bad[0]
        if exact:
            cls = "TWIN.DRIFT"
        elif what == "late":
            cls = "WS.UTF8.LATE" if explain_ws(data) == "WS.UTF8" else "WS.CODE"
        elif len(bad) < len(diffs) and what != "crash":
            cls = SPLIT_CLASS[protocol]
        else:
            reparse: Callable[..., bool] | None = None
            if protocol == "chunked":
                def reparse(fixed: bytes, out: Outcome = out, adapter: Any = adapter, peer: bool = False) -> bool:
                    # peer: the peer itself reads the repaired input as it read this one
                    # (the reading for an input with a second leniency the reference rejects)
                    if peer:
                        return out.accepted and _differs(protocol, _parse(adapter, [fixed]), out, False) is None
                    return _differs(protocol, _parse(ref, [fixed]), out, False) is None
            if protocol == "sse":
                def reparse(fixed: bytes, mname: str = mname, adapter: Any = adapter) -> bool:  # noqa: F811
                    chunks = mode_chunks(fixed, "bytewise" if mname == "bytewise" else "whole")
                    return _differs(protocol, _parse(ref, chunks), _parse(adapter, chunks), False) is None
            later = False
            if protocol == "ws" and "bytewise" in refs:
                # fed byte by byte, did the peer fail later than the reference?
                rb = refs["bytewise"]
                ob = next(o for m, o, _ in diffs if m == "bytewise")
                later = rb.where is not None and ob.where is not None and ob.where > rb.where
            cls = classify(protocol, data, refs[mname], out, what, reparse, later)
        hits.append(Hit(cls, pname, mname, what))
    return hits


# -------------------------------------------------------------- minimising

def _units(protocol: str, data: bytes) -> list[bytes]:
    """Grammar units to drop whole before single bytes: lines (chunked, SSE)
    or frames (WebSocket)."""
    if protocol == "ws":
        units, pos = [], 0
        while pos < len(data):
            if len(data) < pos + 2:
                break
            n, hdr = data[pos + 1] & 0x7F, 2
            if n == 126:
                n, hdr = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                n, hdr = int.from_bytes(data[pos + 2:pos + 10], "big") & ((1 << 62) - 1), 10
            end = pos + hdr + (4 if data[pos + 1] & 0x80 else 0) + n
            units.append(data[pos:end])
            pos = end
        if pos < len(data):
            units.append(data[pos:])
        return units
    units, pos = [], 0
    for i, b in enumerate(data):
        if b == 10:
            units.append(data[pos:i + 1])
            pos = i + 1
    if pos < len(data):
        units.append(data[pos:])
    return units


#: candidate inputs the minimiser tries per finding
MINIMISE_TRIES = 400


def _shorter_frame(frame: bytes) -> bytes | None:
    """The frame with half its payload, its length encoded in the same form
    (7, 16 or 64 bits) and its mask kept; None when there is nothing to cut."""
    if len(frame) < 2:
        return None
    b1 = frame[1]
    form = b1 & 0x7F
    hdr = 4 if form == 126 else 10 if form == 127 else 2
    masked = 4 if b1 & 0x80 else 0
    payload = frame[hdr + masked:]
    if not payload:
        return None
    n = len(payload) // 2
    if form == 126:
        head = frame[:2] + n.to_bytes(2, "big")
    elif form == 127:
        head = frame[:2] + (n | (int.from_bytes(frame[2:10], "big") & (1 << 63))).to_bytes(8, "big")
    else:
        head = bytes([frame[0], (b1 & 0x80) | n])
    # masking is positional: a prefix of the masked payload is the masked prefix
    return head + frame[hdr:hdr + masked] + payload[:n]


def _bare_ends(data: bytes) -> int:
    """Bare CRs and LFs (not part of a CRLF)."""
    return data.count(b"\r") + data.count(b"\n") - 2 * data.count(b"\r\n")


def _classes(peers: Peers, data: bytes, peer: str, seed: int) -> set[str]:
    """The classes ``peer`` shows for ``data``, known quirks left out."""
    quirks = getattr(peers.peers[peer], "quirks", {})
    return {h.cls for h in evaluate(peers, data, seed, only=peer) if h.cls not in quirks}


def minimise(peers: Peers, data: bytes, cls: str, peer: str, budget: float = 1.0,
             max_tries: int = MINIMISE_TRIES, seed: int = 0) -> bytes:
    """The smallest input found (grammar units first, then byte spans, the
    two passes repeated until neither shrinks it) that still shows ``cls``
    for ``peer`` and shows no class (other than a declared quirk) the
    original input did not: a shrink never trades the finding for another
    leniency.  ``seed`` is the run's (random split points depend on it).
    It stops after ``max_tries`` candidates, or at the ``budget`` seconds
    cap; only the cap depends on the machine, so a run is reproducible
    while the cap is not reached."""
    deadline = time.monotonic() + budget
    tries = 0
    allowed = _classes(peers, data, peer, seed) | {cls}
    # a class names an input's first violation only: a chunked shrink must
    # not add bare line ends either (a CRLF cut to LF is a second leniency)
    bare = _bare_ends(data) if peers.protocol == "chunked" and not cls.startswith("TERM.") else None

    def keeps(candidate: bytes) -> bool:
        nonlocal tries
        tries += 1
        if bare is not None and _bare_ends(candidate) > bare:
            return False
        found = _classes(peers, candidate, peer, seed)
        return cls in found and found <= allowed

    def spent() -> bool:
        return tries >= max_tries or time.monotonic() > deadline

    while not spent():
        smaller = _shrink(peers, data, keeps, spent)
        if len(smaller) >= len(data):
            break
        data = smaller
    return data


def _shrink(peers: Peers, data: bytes, keeps: Callable[[bytes], bool], spent: Callable[[], bool]) -> bytes:
    """One line (or frame) pass and one byte pass of :func:`minimise`."""
    units = _units(peers.protocol, data)
    for width in (3, 2, 1):
        i = 0
        while i + width <= len(units) and not spent():
            candidate = b"".join(units[:i] + units[i + width:])
            if candidate and keeps(candidate):
                del units[i:i + width]
            else:
                i += 1
    if peers.protocol == "ws":  # shorter payloads, each length field kept in its own form
        i = 0
        while i < len(units) and not spent():
            shorter = _shorter_frame(units[i])
            if shorter is not None and keeps(b"".join(units[:i] + [shorter] + units[i + 1:])):
                units[i] = shorter
            else:
                i += 1
    data = b"".join(units)
    n = max(1, len(data) // 2)
    while n >= 1 and not spent():
        i, changed = 0, False
        while i < len(data) and not spent():
            candidate = data[:i] + data[i + n:]
            if candidate and keeps(candidate):
                data, changed = candidate, True
            else:
                i += n
        if not changed:
            n //= 2
    return data


# -------------------------------------------------------------------- loop

@dataclasses.dataclass
class Result:
    protocol: str
    findings: dict[tuple[str, str], Finding]
    inputs: int
    seconds: float
    peers: list[str]
    unavailable: dict[str, str]
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    #: "seeded" or "atheris"
    engine: str = "seeded"
    #: CPU seconds spent fuzzing (minimising not counted): the per-core rate
    #: stays true on a loaded machine
    cpu_seconds: float = 0.0

    def merge(self, other: Result) -> None:
        """Add another worker's result (``seconds`` adds up: core-seconds).
        The outcome does not depend on the order of merging."""
        self.inputs += other.inputs
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        for key, f in other.findings.items():
            mine = self.findings.get(key)
            if mine is None:
                self.findings[key] = f
            else:
                mine.count += f.count
                mine.first = min(mine.first, f.first)
                mine.first_input = min(mine.first_input, f.first_input)
                # the smallest reproducer wins, ties broken by the bytes: the
                # merge does not depend on which worker finished first
                if (len(f.data), f.data) < (len(mine.data), mine.data):
                    mine.data, mine.mode = f.data, f.mode


def record(peers: Peers, findings: dict[tuple[str, str], Finding], data: bytes, hits: list[Hit],
           minimise_budget: float, elapsed: float = 0.0, inputs: int = 0,
           minimise_tries: int = MINIMISE_TRIES, seed: int = 0) -> list[Finding]:
    """Count hits; minimise and return the ones seen for the first time."""
    new = []
    for h in hits:
        key = (h.cls, h.peer)
        f = findings.get(key)
        if f is not None:
            f.count += 1
            continue
        quirk = getattr(peers.peers[h.peer], "quirks", {}).get(h.cls, "")
        small = data if quirk or minimise_budget <= 0 else minimise(
            peers, data, h.cls, h.peer, minimise_budget, minimise_tries, seed)
        # the mode (its split points) that shows the class for the minimised input
        mode = next((x.mode for x in evaluate(peers, small, seed, only=h.peer) if x.cls == h.cls), h.mode) \
            if small != data else h.mode
        f = Finding(h.cls, h.peer, small, mode, 1, quirk, elapsed, inputs)
        findings[key] = f
        new.append(f)
    return new


def fuzz_seeded(protocol: str, names: list[str], seconds: float, seed: int,
                minimise_budget: float = 1.0, max_inputs: int | None = None,
                minimise_tries: int = MINIMISE_TRIES,
                on_new: Callable[[Finding], None] | None = None) -> Result:
    """Generate inputs from ``random.Random(seed)`` for ``seconds`` (or
    ``max_inputs`` inputs, whichever comes first)."""
    peers = Peers(protocol, names)
    rng = random.Random(seed)
    gen = GENERATORS[protocol]
    findings: dict[tuple[str, str], Finding] = {}
    start, cpu_start = time.monotonic(), time.process_time()
    spent_minimising = cpu_minimising = 0.0
    inputs = 0
    while time.monotonic() - start - spent_minimising < seconds:
        if max_inputs is not None and inputs >= max_inputs:
            break
        data = gen(rng)
        inputs += 1
        hits = evaluate(peers, data, seed)
        if hits:
            t0, c0 = time.monotonic(), time.process_time()
            for f in record(peers, findings, data, hits, minimise_budget, t0 - start - spent_minimising, inputs,
                            minimise_tries, seed):
                if on_new:
                    on_new(f)
            spent_minimising += time.monotonic() - t0
            cpu_minimising += time.process_time() - c0
    elapsed = time.monotonic() - start - spent_minimising
    return Result(protocol, findings, inputs, elapsed, list(peers.peers), peers.unavailable,
                  {n: str(getattr(a, "version", "")) for n, a in peers.peers.items()},
                  cpu_seconds=time.process_time() - cpu_start - cpu_minimising)


def check(protocol: str, spec: str, data: bytes, splits: list[int] | None = None, seed: int = 0) -> list[str]:
    """The classes ``data`` shows for one peer (empty: it agrees with the
    reference in every mode).  ``splits``: explicit split points to feed
    too (a ``*.SPLIT`` finding's, :attr:`Finding.splits`).  Written pytest
    cases call this."""
    peers = Peers(protocol, [spec])
    if not peers.peers:
        raise _adapters.Unavailable(peers.unavailable.get(spec, spec))
    return sorted({h.cls for h in evaluate(peers, data, seed, splits=splits)})
