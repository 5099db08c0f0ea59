"""WebSocket test helpers: a raw frame builder independent of the codec under
test, a runner that feeds a byte stream in many splits, and a tiny
permessage-deflate session for wiring tests (the real one is ws-edge's)."""
from __future__ import annotations

import zlib
from types import ModuleType
from typing import Any

from helpers import splits

from streamcore import LimitError, ProtocolError
from streamcore.ws.deflate import NegotiatedDeflate

MASK = b"\x37\xfa\x21\x3d"


def xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
    width: int | None = None,
) -> bytes:
    """Serialize one frame by hand (RFC 6455 §5.2).

    ``mask=None`` sends it unmasked (server to client); ``length`` lies about
    the payload length; ``width`` forces the 7/16/64-bit length encoding.
    """
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    if width is None:
        width = 7 if n < 126 else 16 if n < 65536 else 64
    if width == 7:
        head = bytes((b0, mbit | n))
    elif width == 16:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + xor(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def run(codec: ModuleType, role: str, data: bytes, pieces: list[bytes] | None = None,
        **kw: Any) -> tuple[list[Any], ProtocolError | None]:
    """Feed ``data`` (or ``pieces``) to a fresh Connection; (events, error)."""
    conn = codec.Connection(role, **kw)
    events: list[Any] = []
    try:
        for piece in pieces if pieces is not None else [data]:
            events.extend(conn.receive_data(piece))
    except ProtocolError as exc:
        events.extend(exc.events)  # completed before the violation
        return events, exc
    return events, None


def merge(events: list[Any]) -> list[Any]:
    """Join fragments streamed with assemble=False into whole messages."""
    out: list[Any] = []
    pending: Any | None = None
    for ev in events:
        name = type(ev).__name__
        if name in ("Text", "Binary"):
            if pending is None:
                pending = ev
            else:
                pending = type(ev)(pending.data + ev.data, ev.final)
            if ev.final:
                out.append(pending)
                pending = None
        else:
            out.append(ev)
    if pending is not None:
        out.append(pending)
    return out


def err_key(err: ProtocolError | None) -> tuple[Any, ...] | None:
    if err is None:
        return None
    return type(err), str(err), err.offset, err.close_code


def run_all_splits(codec: ModuleType, role: str, data: bytes, seed: int = 0,
                   **kw: Any) -> tuple[list[Any], ProtocolError | None]:
    """Feed whole, byte by byte and in random splits; every way must give the
    same (merged) events and the same error; return those."""
    want_events, want_err = run(codec, role, data, **kw)
    assemble = kw.get("assemble", True)
    for pieces in splits(data, seed=seed):
        events, err = run(codec, role, data, pieces, **kw)
        if assemble:
            assert events == want_events, pieces
        else:
            assert merge(events) == merge(want_events), pieces
        assert err_key(err) == err_key(want_err), pieces
    return want_events, want_err


class FakeDeflate(NegotiatedDeflate):
    """An agreement (context takeover on both sides) whose sessions are plain
    zlib, not streamcore's: enough to test the Connection's wiring."""

    __slots__ = ("sessions",)

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[FakeSession] = []

    def session(self, client: bool) -> FakeSession:  # type: ignore[override]
        s = FakeSession()
        self.sessions.append(s)
        return s


class FakeSession:
    def __init__(self) -> None:
        self._c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._d = zlib.decompressobj(-15)
        self.bytes_before_compression = 0
        self.bytes_after_compression = 0
        self.bytes_before_decompression = 0
        self.bytes_after_decompression = 0

    def compress(self, data: bytes) -> bytes:
        out = self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        out = out[:-4]
        self.bytes_before_compression += len(data)
        self.bytes_after_compression += len(out)
        return out

    def decompress(self, data: bytes, fin: bool, limit: int | None) -> bytes:
        if fin:
            data = data + b"\x00\x00\xff\xff"
        try:
            out = self._d.decompress(data, 0 if limit is None else limit + 1)
        except zlib.error as exc:
            raise ProtocolError(f"bad deflate data: {exc}", close_code=1007) from None
        if limit is not None and len(out) > limit:
            raise LimitError("inflated message too big", close_code=1009)
        self.bytes_before_decompression += len(data)
        self.bytes_after_decompression += len(out)
        return out


# -- permessage-deflate helpers (compliance groups 12 and 13) ---------------------------

DEFLATE_TAIL = b"\x00\x00\xff\xff"


class PeerDeflater:
    """An independent permessage-deflate compressor for the peer's side (plain
    zlib, not streamcore's DeflateSession): raw deflate, one sync flush per
    message, the ``00 00 ff ff`` tail removed (RFC 7692 §7.2.1).  With
    ``takeover=False`` each message gets a fresh compressor."""

    def __init__(self, bits: int = 15, takeover: bool = True) -> None:
        # zlib refuses a raw deflate compressor with an 8-bit window: use 9,
        # whose distances still fit a 256-byte window (MAX_DIST = 512 - 262).
        self.bits = max(bits, 9)
        self.takeover = takeover
        self._c: Any = None

    def compress(self, data: bytes) -> bytes:
        if self._c is None or not self.takeover:
            self._c = zlib.compressobj(6, zlib.DEFLATED, -self.bits)
        out = self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(DEFLATE_TAIL)
        return out[:-4]


def parse_frames(wire: bytes) -> list[tuple[bool, int, int, bytes]]:
    """Split what a Connection sent into (fin, rsv, opcode, unmasked payload),
    independently of the codec under test (RFC 6455 §5.2)."""
    out = []
    pos = 0
    while pos < len(wire):
        b0, b1 = wire[pos], wire[pos + 1]
        pos += 2
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(wire[pos:pos + 2], "big")
            pos += 2
        elif n == 127:
            n = int.from_bytes(wire[pos:pos + 8], "big")
            pos += 8
        key = None
        if b1 & 0x80:
            key = wire[pos:pos + 4]
            pos += 4
        payload = wire[pos:pos + n]
        assert len(payload) == n, "truncated frame"
        pos += n
        if key is not None:
            # whole-payload XOR through big ints: fast for 256 KiB payloads
            k = (key * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(
                n, "big")
        out.append((bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload))
    return out
