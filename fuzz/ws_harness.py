"""The WebSocket receive-path harness shared by fuzz_ws_server.py (masked
frames from a client) and fuzz_ws_client.py (unmasked frames from a server).

The input's first byte chooses the limits and whether fragments are
assembled, the next two the split points, the fourth the buffer kinds; the
rest is fed to BOTH twins of ``streamcore.ws`` in the same pieces (the
compiled twin on plain bytes is the reference, both twins run on the pieces
wrapped in those kinds, see fuzz/kinds.py).  The oracle: each call
returns events or raises ProtocolError (and its subclasses); anything else
is a bug, and the three runs must agree on every event (and the type of
its data), on the error's class, message, offset and close code, and on the
stats after every call.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kinds  # noqa: E402

with atheris.instrument_imports():
    from streamcore import ProtocolError, StateError
    from streamcore.ws import _c as _codec_c
    from streamcore.ws import _py as _codec_py

ROLE = "server"  # set by main()

LIMITS = [None, 0, 1, 125, 126, 1000, 65536]


def options(b: int) -> dict:
    return {
        "max_message_size": LIMITS[b % 7],
        "max_frame_size": LIMITS[(b >> 3) % 7] if b & 0x40 else None,
        "assemble": not (b & 0x80),
    }


def pieces(data: bytes, a: int, b: int) -> list:
    if not data:
        return [data]
    step = 1 + (a % 64) * (1 + b % 16)
    if a & 0x80:  # byte by byte through the first part, then larger steps
        return [data[i:i + 1] for i in range(min(len(data), 32))] + [
            data[i:i + step] for i in range(min(len(data), 32), len(data), step)]
    return [data[i:i + step] for i in range(0, len(data), step)]


def _events(events):
    return [(e, type(getattr(e, "data", None)).__name__) for e in events]


def run(codec, chunks, kw):
    conn = codec.Connection(ROLE, **kw)
    out = []
    errors = 0
    for chunk in chunks:
        try:
            out.append(("events", _events(conn.receive_data(chunk))))
        except ProtocolError as exc:
            # the only error bad bytes may cause (LimitError and
            # IncompleteError are subclasses); it carries the events the call
            # completed first
            out.append(("error", type(exc), str(exc), exc.offset, exc.close_code,
                        _events(exc.events)))
            errors += 1
        out.append(("stats", conn.stats, conn.state))
        if errors == 3:
            # the error repeats on every later call: twice more is proof
            # enough, and thousands of one-byte pieces after it only slow
            # the fuzzer down
            break
    try:
        conn.receive_eof()
        out.append(("eof", None))
    except ProtocolError as exc:  # IncompleteError: ended before the Close
        out.append(("eof", type(exc), str(exc), exc.offset, exc.close_code))
    try:
        conn.receive_data(b"x")
    except StateError:  # documented: receive_data after receive_eof
        out.append(("after eof", "StateError"))
    return out


def TestOneInput(data: bytes) -> None:
    if len(data) < 4:
        return
    kw = options(data[0])
    chunks = pieces(data[4:], data[1], data[2])
    kinds.agree(lambda codec, bufs: run(codec, bufs, kw), _codec_py, _codec_c, chunks, data[3])


def main(role: str) -> None:
    global ROLE
    ROLE = role
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
