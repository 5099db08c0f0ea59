"""Deliberately lenient toy parsers for the streamcore.diff tests: each one
is the strict reference after a normalisation that plants one class."""
from __future__ import annotations

import re

from streamcore.diff.adapters.streamcore_ import ChunkedPy, SSEPy, WSPy


class _Toy:
    def parse(self, chunks):  # type: ignore[no-untyped-def]
        return super().parse([self.normalise(b"".join(chunks))])  # type: ignore[misc]


class PrefixToy(_Toy, ChunkedPy):
    """Reads chunk-size with int(s, 16) semantics for a 0x prefix: INT.PREFIX."""
    exact = False
    name = "toy-prefix"

    def normalise(self, data: bytes) -> bytes:
        return re.sub(rb"(^|\r\n)0[xX](?=[0-9a-fA-F])", rb"\1", data)


class BareLFToy(_Toy, ChunkedPy):
    """Ends every line on a bare LF: TERM.LF."""
    exact = False
    name = "toy-lf"

    def normalise(self, data: bytes) -> bytes:
        return re.sub(rb"(?<!\r)\n", b"\r\n", data)


class BOMToy(_Toy, SSEPy):
    """Keeps a leading BOM as part of the first field name: SSE.BOM.KEPT."""
    exact = False
    name = "toy-bom"

    def normalise(self, data: bytes) -> bytes:
        return b"\xef\xbb\xbf" + data if data.startswith(b"\xef\xbb\xbf") else data


class NonMinimalToy(_Toy, WSPy):
    """Accepts 16-bit lengths under 126 by rewriting them minimal: WS.LENGTH.NONMINIMAL."""
    exact = False
    name = "toy-nonminimal"

    def normalise(self, data: bytes) -> bytes:
        out, pos = bytearray(), 0
        while pos + 2 <= len(data):
            b0, b1 = data[pos], data[pos + 1]
            n, hdr = b1 & 0x7F, 2
            if n == 126 and pos + 4 <= len(data):
                n, hdr = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                out += data[pos:]
                return bytes(out)
            end = pos + hdr + (4 if b1 & 0x80 else 0) + n
            if hdr == 4 and n < 126:
                out += bytes([b0, (b1 & 0x80) | n]) + data[pos + 4:end]
            else:
                out += data[pos:end]
            pos = end
        out += data[pos:]
        return bytes(out)
