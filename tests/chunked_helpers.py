"""Feeding helpers for the chunked tests: normalised events and errors."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import streamcore


def normalise(events: list[Any]) -> list[tuple[Any, ...]]:
    """One ("chunk", data, extensions) per chunk, checking the piece flags.

    Pieces of one chunk are merged; the first must say chunk_start and carry
    the extensions, the last must say chunk_end, and none in between may.
    """
    out: list[tuple[Any, ...]] = []
    open_chunk: list[Any] | None = None
    for ev in events:
        kind = type(ev).__name__
        if kind == "Data":
            assert ev.data, "empty Data event"
            if ev.chunk_start:
                assert open_chunk is None, "chunk_start inside a chunk"
                open_chunk = [ev.data, ev.extensions]
            else:
                assert open_chunk is not None, "data without chunk_start"
                assert ev.extensions == (), "extensions on a later piece"
                open_chunk[0] += ev.data
            if ev.chunk_end:
                out.append(("chunk", open_chunk[0], open_chunk[1]))
                open_chunk = None
        elif kind == "Trailers":
            assert open_chunk is None
            out.append(("trailers", list(ev.headers)))
        elif kind == "EndOfMessage":
            assert open_chunk is None
            out.append(("end", ev.extensions))
        else:  # pragma: no cover
            raise AssertionError(f"unexpected event {ev!r}")
    if open_chunk is not None:
        out.append(("partial", open_chunk[0], open_chunk[1]))
    return out


def run(mod: ModuleType, pieces: list[bytes], eof: bool = False, **kw: Any) -> dict[str, Any]:
    """Feed ``pieces`` to a fresh decoder of twin ``mod``; describe what happened."""
    dec = mod.ChunkedDecoder(**kw)
    events: list[Any] = []
    error = None
    for piece in pieces:
        if dec.done:
            break
        try:
            events.extend(dec.feed(piece))
        except streamcore.ProtocolError as exc:
            events.extend(exc.events)
            error = (type(exc).__name__, str(exc), exc.offset)
            break
    if error is None and eof:
        try:
            dec.eof()
        except streamcore.ProtocolError as exc:
            error = (type(exc).__name__, str(exc), exc.offset)
    return {
        "events": normalise(events),
        "error": error,
        "done": dec.done,
    }


def body(mod: ModuleType, wire: bytes, **kw: Any) -> bytes:
    dec = mod.ChunkedDecoder(**kw)
    out = b"".join(ev.data for ev in dec.feed(wire) if type(ev).__name__ == "Data")
    assert dec.done
    return out
