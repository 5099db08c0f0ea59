"""The comparable result of one parse, and how two of them are compared.

An adapter reduces whatever its parser produces to an :class:`Outcome`:

``status``
    ``"ok"`` (the message, or for SSE the stream, was accepted),
    ``"error"`` (rejected) or ``"incomplete"`` (still waiting for bytes when
    the input ended).
``value``
    what was produced, protocol by protocol: chunked ``(body, trailers)``
    (``trailers`` a tuple of ``(name, value)`` pairs, or ``None`` when the
    peer does not report them); SSE ``(events, last_event_id, retry)`` with
    events as ``(type, data, id)``; WebSocket a tuple of messages
    ``(kind, payload)`` (``kind`` one of text, binary, ping, pong, close).
``rest``
    chunked only: the bytes after the end of the body (the next pipelined
    message), ``None`` when unknown.
``error``
    the kind of error: for WebSocket the close code as a string, for our
    twins the exception class name.  ``where``: the byte offset of the error
    (our twins), or in byte-by-byte feeding the number of bytes fed when the
    error was raised (to measure fail-fast).
``detail``
    free text for the verdict table; never compared.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

OK = "ok"
ERROR = "error"
INCOMPLETE = "incomplete"
CRASH = "crash"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str
    value: Any = None
    rest: bytes | None = None
    error: str = ""
    where: int | None = None
    detail: str = dataclasses.field(default="", compare=False)

    @property
    def accepted(self) -> bool:
        return self.status == OK

    def brief(self) -> str:
        """One line for a verdict table."""
        text = self.status
        if self.error:
            text += f" [{self.error}]"
        if self.status == OK or self.value:
            text += f" {self.value!r}"
        if self.rest:
            text += f" rest={self.rest!r}"
        if self.detail and self.status != OK:
            text += f" ({self.detail})"
        return text[:300]


def differs(protocol: str, ref: Outcome, out: Outcome, exact: bool = False) -> str | None:
    """What differs between the reference outcome and a peer's, or None.

    ``exact`` (our two twins): everything but ``detail`` must be equal.
    Otherwise peers are compared on what they can all report: accept or
    reject; when both accept, the value (trailers only when both report
    them) and the rest (when both report it); when both reject a WebSocket
    stream, the close code.  ``where`` is only compared for fail-fast
    (WebSocket UTF-8, see :mod:`.classes`).
    """
    if out.status == CRASH:
        return "crash"
    if exact:
        if ref == out:
            return None
        for field in ("status", "value", "rest", "error", "where"):
            if getattr(ref, field) != getattr(out, field):
                return field
        return None
    if ref.accepted != out.accepted:
        return "status"
    if not ref.accepted:
        if protocol == "ws" and ref.error and out.error and ref.error != out.error:
            return "error"
        return None
    if protocol == "chunked":
        body, trailers = ref.value
        obody, otrailers = out.value
        if body != obody:
            return "value"
        if trailers is not None and otrailers is not None and trailers != otrailers:
            return "trailers"
        if ref.rest is not None and out.rest is not None and ref.rest != out.rest:
            return "rest"
        return None
    if protocol == "sse":
        events, last_id, retry = ref.value
        oevents, olast_id, oretry = out.value
        if events != oevents:
            return "value"
        if olast_id is not None and last_id != olast_id:
            return "last_event_id"
        if oretry is not None and retry != oretry:
            return "retry"
        return None
    return None if ref.value == out.value else "value"


# ---------------------------------------------------------------- feeding modes

def modes(data: bytes, seed: int = 0, splits: Sequence[int] | None = None) -> list[tuple[str, list[bytes]]]:
    """The ways one input is fed: whole, byte by byte, at random splits and,
    when the input holds a CR, split just after every CR (the SSE read
    boundary case).  Deterministic for a given data and seed.  ``splits``:
    explicit split points (a recorded finding's) fed as one more mode,
    ``split:<points>``, before the random ones."""
    out: list[tuple[str, list[bytes]]] = [("whole", [data])]
    if splits is not None and len(data) > 1:
        pts = sorted({c for c in splits if 0 < c < len(data)})
        out.append(("split:" + ",".join(map(str, pts)), cut(data, pts)))
    if len(data) > 1:
        out.append(("bytewise", [data[i:i + 1] for i in range(len(data))]))
        rng = random.Random(hash((seed, len(data))) & 0xFFFFFFFF)
        for n in range(2):
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 4))))
            out.append((f"split{n}:" + ",".join(map(str, cuts)), cut(data, cuts)))
        crs = [i + 1 for i, b in enumerate(data[:-1]) if b == 13]
        if crs:
            out.append(("after-cr:" + ",".join(map(str, crs)), cut(data, crs)))
    return out


def cut(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    pieces, last = [], 0
    for c in cuts:
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    return [p for p in pieces if p]


def mode_splits(mode: str) -> list[int] | None:
    """The split points a mode name spells (``split0:3,7`` -> [3, 7]), or
    None for whole and bytewise feeding."""
    if ":" not in mode:
        return None
    return [int(c) for c in mode.split(":", 1)[1].split(",") if c]


def mode_chunks(data: bytes, mode: str) -> list[bytes]:
    """The pieces of ``data`` for a mode name as :func:`modes` spells it."""
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    cuts = [int(c) for c in mode.split(":", 1)[1].split(",") if c]
    return cut(data, [c for c in cuts if 0 < c < len(data)])
