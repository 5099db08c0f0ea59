"""Fuzz streamcore.sse: both twins, any split, with and without limits.

Oracle: the decoder returns events or raises LimitError (a ProtocolError)
when a configured limit is crossed; anything else is a bug.  The two twins
must agree on every call (events, error class, message, offset, and the
state after it), also when the pieces come as the buffer kinds a fuzz byte
chooses (fuzz/kinds.py: the compiled twin on plain bytes is the reference),
and a stream re-split differently must give the same events and the same
error.  The encoder must round-trip what it accepts,
and both twins must accept and reject the same inputs the same way.

    python fuzz/fuzz_sse.py [libFuzzer options] [corpus]
"""
from __future__ import annotations

import os
import sys

import atheris

# run from a source checkout: the package is one folder up
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kinds  # noqa: E402

with atheris.instrument_imports():
    from streamcore import LimitError, StateError
    from streamcore.sse import _c as CY
    from streamcore.sse import _py as PY
    from streamcore.sse._common import Event


def pieces_of(data: bytes, mode: int, step: int) -> list[bytes]:
    if mode == 0:
        return [data]
    if mode == 1:
        return [data[i : i + 1] for i in range(len(data))]
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def run(mod, pieces, max_line, max_event):
    dec = mod.SSEDecoder(max_line_size=max_line, max_event_size=max_event)
    log = []
    events = []
    error = None
    for piece in pieces:
        try:
            got = dec.feed(piece)
        # LimitError: the only error a decoder raises on purpose (a limit
        # was given and the stream crossed it); it repeats on later calls.
        except LimitError as exc:
            outcome = ("LimitError", str(exc), exc.offset, list(exc.events))
            if error is None:
                error = outcome[:3]
                events += exc.events  # decoded by this call before the problem
        else:
            outcome = got
            events += got
        log.append((outcome, dec.last_event_id, dec.retry, tuple(dec.stats)))
    try:
        dec.eof()
    except LimitError as exc:  # eof after an error re-raises it
        log.append(("eof", str(exc), exc.offset))
    try:
        dec.feed(b"x")
        raise AssertionError("feed after eof did not raise")
    # StateError after eof, or the stored LimitError again: both documented
    except (StateError, LimitError):
        pass
    return log, events, error


def fuzz_decoder(fdp: atheris.FuzzedDataProvider) -> None:
    opts = fdp.ConsumeInt(1)
    step = fdp.ConsumeIntInRange(1, 64)
    max_line = None if opts & 4 else fdp.ConsumeIntInRange(0, 64)
    max_event = None if opts & 8 else fdp.ConsumeIntInRange(0, 256)
    selector = fdp.ConsumeInt(1)
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    pieces = pieces_of(data, opts & 3 if opts & 3 != 3 else 2, step)
    _, events_cy, err_cy = kinds.agree(
        lambda mod, buffers: run(mod, buffers, max_line, max_event), PY, CY, pieces, selector)
    # a different split: the same events (counting those on the error) and
    # the same error
    _, events_whole, err_whole = run(CY, [data], max_line, max_event)
    assert err_whole == err_cy, (err_whole, err_cy)
    assert events_whole == events_cy, (events_whole, events_cy)
    assert all(type(e) is Event for e in events_cy)


def fuzz_encoder(fdp: atheris.FuzzedDataProvider) -> None:
    kinds = fdp.ConsumeInt(1)

    def field(bit: int) -> str | None:
        if kinds & bit:
            return None
        return fdp.ConsumeUnicode(16)

    data, event, id, comment = field(1), field(2), field(4), field(8)
    retry = None if kinds & 16 else fdp.ConsumeIntInRange(-2, 10**6)
    raw: str | bytes | None = data
    if data is not None and kinds & 32:
        raw = fdp.ConsumeBytes(16)  # data as bytes: UTF-8 or (often) not
    outcomes = []
    for mod in (PY, CY):
        try:
            outcomes.append(mod.encode_event(raw, event=event, id=id, retry=retry, comment=comment))
        # ValueError: CR/LF in event or id, NUL in id, empty event, negative
        # retry, lone surrogates (UnicodeEncodeError), bytes that are not
        # UTF-8 -- documented refusals
        except ValueError as exc:
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1], outcomes
    if isinstance(raw, bytes):
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError:
            assert not isinstance(outcomes[0], bytes), outcomes  # refused, never written
    if isinstance(outcomes[0], bytes):
        events = CY.SSEDecoder(max_event_size=None).feed(outcomes[0])
        if data is None:
            assert events == []
        else:
            norm = data.replace("\r\n", "\n").replace("\r", "\n")
            assert events == [Event(norm, event or "message", id or "")], (events, data)
    items = [(fdp.ConsumeUnicode(8), fdp.ConsumeUnicode(3) or "message", fdp.ConsumeUnicode(2))
             for _ in range(fdp.ConsumeIntInRange(0, 4))]
    batch = []
    for mod in (PY, CY):
        try:
            batch.append(mod.encode_events(items))
        except ValueError as exc:  # as above, for one of the items
            batch.append((type(exc), str(exc)))
    assert batch[0] == batch[1], batch


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        fuzz_decoder(fdp)
    else:
        fuzz_encoder(fdp)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
