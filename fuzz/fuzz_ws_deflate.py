"""Fuzz permessage-deflate decompression (streamcore.ws.deflate).

The first byte chooses the limit and the window bits, the next bytes where
the payload is cut into frames.  The payload is inflated whole and in those
pieces (as a Connection feeds the frames of one message, the limit shrinking
by what each frame produced).

Oracle: each way succeeds or raises a documented error, and both ways agree:
the same output, or both an error.  With no limit the error is the same
(class and close code).  With a limit, frame boundaries may decide which
problem is seen first: zlib reports an invalid code it meets while the
output is already over the limit in one call, while a frame that ends just
before that code is over the limit first (and a Connection feeds whole
frames, so network splits never change the outcome).  The module is pure
Python on both twins (zlib does the work), so split invariance is the
differential here, with buffer kinds: each kind gives exactly what bytes
give.  The payload is also compressed as bytes and as the chosen kind, which
must give the same output and count the same bytes.
"""

from __future__ import annotations

import os
import sys

import atheris

# run from anywhere in a checkout: the package is the parent folder's
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kinds  # noqa: E402

with atheris.instrument_imports():
    from streamcore import LimitError, ProtocolError
    from streamcore.ws.deflate import DeflateSession

LIMITS = (None, 0, 1, 100, 4096, 1 << 20)


def inflate(bits: int, pieces: list[object], limit: int | None) -> tuple[object, ...]:
    session = DeflateSession(remote_bits=bits)
    out = []
    try:
        for i, piece in enumerate(pieces):
            got = session.decompress(piece, i == len(pieces) - 1, limit)
            assert type(got) is bytes
            out.append(got)
            if limit is not None:
                limit -= len(got)
                assert limit >= 0
    except LimitError as exc:
        # documented: the inflated message is over the limit (1009)
        assert exc.close_code == 1009
        return (LimitError, 1009)
    except ProtocolError as exc:
        # documented: invalid deflate data, or data after a final block (1007)
        assert exc.close_code == 1007
        return (ProtocolError, 1007)
    return ("ok", b"".join(out))


def TestOneInput(data: bytes) -> None:
    if len(data) < 4:
        return
    limit = LIMITS[data[0] % len(LIMITS)]
    bits = 8 + (data[0] >> 4) % 8
    cuts = sorted({data[1] % 64, data[2] % 128})
    selector = data[3]
    payload = data[4:]
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    whole = inflate(bits, [payload], limit)
    split = inflate(bits, pieces, limit)
    if whole[0] == "ok" or split[0] == "ok" or limit is None:
        assert whole == split, (whole, split)
    # the same pieces as other buffer kinds: exactly what bytes gave
    wrapped = kinds.wrap_all(pieces, selector)
    assert inflate(bits, wrapped, limit) == split, (kinds.pick(selector, 0), pieces)
    kinds.untouched(wrapped, pieces)
    one = kinds.wrap_all([payload], selector)
    assert inflate(bits, one, limit) == whole, (kinds.pick(selector, 0), payload)
    # and compressing: the same stream, the same counters, whatever the kind
    plain, other = DeflateSession(local_bits=bits), DeflateSession(local_bits=bits)
    assert other.compress(one[0]) == plain.compress(payload)
    assert other.bytes_before_compression == plain.bytes_before_compression == len(payload)
    kinds.untouched(one, [payload])


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
