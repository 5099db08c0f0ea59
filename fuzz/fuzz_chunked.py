"""atheris harness for the chunked decoder, both twins at once.

The oracle (as in h11's fuzz README): every input is either accepted, or
refused with streamcore's documented errors.  Anything else — another
exception type, a crash, or the two twins disagreeing on events, error,
offset, state or stats — is a bug.  A fuzz byte chooses the buffer kinds
(fuzz/kinds.py): the compiled twin on plain bytes is the reference, and both
twins fed the same pieces as those kinds must match it exactly.

    python fuzz/fuzz_chunked.py -max_total_time=60 fuzz/corpus/chunked
"""
from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kinds  # noqa: E402

with atheris.instrument_imports():
    from streamcore import ProtocolError, StateError
    from streamcore.chunked import _c as C
    from streamcore.chunked import _py as PY

LIMITS = (None, 0, 1, 7, 64, 4096)


def outcome(mod, pieces, kw):
    dec = mod.ChunkedDecoder(**kw)
    seen = []
    error = None
    for piece in pieces:
        try:
            events = dec.feed(piece)
        except ProtocolError as exc:  # the peer's bytes are bad: documented
            events = exc.events
            error = (type(exc).__name__, str(exc), exc.offset)
        except StateError as exc:  # fed after the end: our own misuse, documented
            error = (type(exc).__name__, str(exc), None)
        # the data's type too: events carry bytes whatever kind was fed
        seen.append([(type(e).__name__, getattr(e, "data", None), type(getattr(e, "data", None)),
                      getattr(e, "chunk_start", None), getattr(e, "chunk_end", None),
                      getattr(e, "extensions", None), getattr(e, "headers", None))
                     for e in events])
        if error:
            break
    if error is None:
        try:
            dec.eof()
        except ProtocolError as exc:  # IncompleteError: the body did not end
            error = (type(exc).__name__, str(exc), exc.offset)
    return seen, error, dec.done, dec.unused_data, tuple(dec.stats)


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kw = {
        "max_line_size": LIMITS[fdp.ConsumeIntInRange(0, len(LIMITS) - 1)],
        "max_trailers_size": LIMITS[fdp.ConsumeIntInRange(0, len(LIMITS) - 1)],
        "max_chunk_size": LIMITS[fdp.ConsumeIntInRange(0, len(LIMITS) - 1)],
        "coalesce": fdp.ConsumeBool(),
    }
    cuts = sorted(fdp.ConsumeIntInRange(0, 64) for _ in range(fdp.ConsumeIntInRange(0, 6)))
    selector = fdp.ConsumeInt(1)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    pieces, last = [], 0
    for cut in cuts:
        cut = min(cut, len(body))
        pieces.append(body[last:cut])
        last = max(last, cut)
    pieces.append(body[last:])
    kinds.agree(lambda mod, buffers: outcome(mod, buffers, kw), PY, C, pieces, selector)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
