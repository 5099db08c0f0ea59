"""WebSocket frame codec, pure-Python twin (the readable reference).

RFC 6455 §5 framing for both directions, the masking kernel, the incremental
UTF-8 validator and the receive state machine (fragmentation, control frames,
close frames, limits).  ``_c.pyx`` mirrors this file step for step; the
state held between calls and the order of every check are the same, so both
twins give the same events, the same errors and the same offsets.

Receive state machine (``Receiver``)::

    HEADER --(2..14 header bytes)--> PAYLOAD --(length bytes)--> end of frame
      ^                                                              |
      +--------------------------------------------------------------+
    a Close frame ends it: everything after the peer's Close is ignored
    (RFC 6455 §5.5.1), a ProtocolError ends it for good (re-raised on every
    later call).
"""
from __future__ import annotations

import codecs
import os
from typing import Any

from .._contract import Buffer, byte_view, raise_again, stored_error
from .._errors import LimitError, ProtocolError
from ._common import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    VIEWS_WRITABLE,
    Binary,
    Close,
    Ping,
    Pong,
    Text,
    close_code_is_valid,
    deflate_wire_limit,
    err_close_code,
    err_close_one_byte,
    err_continuation_without_start,
    err_control_fragmented,
    err_control_too_long,
    err_deflate,
    err_frame_too_big,
    err_inflated_too_big,
    err_masked,
    err_message_inside_message,
    err_message_too_big,
    err_non_minimal,
    err_opcode,
    err_rsv,
    err_rsv1_not_first,
    err_top_bit,
    err_unmasked,
    err_utf8,
    err_utf8_incomplete,
    exact_text,
    inflate_limit,
    register_mask_pool,
    utf8_scan,
)
from ._connection import ConnectionBase

__all__ = ["Connection", "Encoder", "Receiver", "Utf8Validator", "apply_mask"]


_new = tuple.__new__

# ---------------------------------------------------------------------------
# Masking (RFC 6455 §5.3)
# ---------------------------------------------------------------------------


#: XOR tables: _XOR[k] maps each byte b to b ^ k (for bytes.translate)
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]

#: below this size one big-integer XOR is cheapest, above it four translates
_MASK_TRANSLATE_MIN = 512


def _mask(data: bytes, mask: bytes, phase: int) -> bytes | bytearray:
    """XOR ``data`` with ``mask`` repeated, starting at mask byte ``phase``.

    Small payloads: one big-integer XOR (CPython converts, XORs and converts
    back in C).  Large ones: every 4th byte shares a key byte, so four
    strided ``bytes.translate`` passes through XOR tables over one
    ``bytearray`` copy (returned as is: callers that keep it join or convert
    it once).
    """
    n = len(data)
    if n == 0:
        return b""
    if phase:
        mask = mask[phase:] + mask[:phase]
    if n < _MASK_TRANSLATE_MIN:
        key = (mask * ((n >> 2) + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            n, "little")
    out = bytearray(data)
    _mask_in_place(out, 0, mask)
    return out


def _unmask_slice(data: bytes, start: int, end: int, mask: bytes,
                  phase: int) -> bytes | bytearray:
    """``_mask(data[start:end], mask, phase)`` with one copy fewer when large."""
    if end - start < _MASK_TRANSLATE_MIN:
        return _mask(data[start:end], mask, phase)
    if phase:
        mask = mask[phase:] + mask[:phase]
    out = bytearray(memoryview(data)[start:end])
    _mask_in_place(out, 0, mask)
    return out


def _mask_in_place(buf: bytearray, start: int, mask: bytes) -> None:
    """XOR ``buf[start:]`` in place with ``mask`` repeated (a large payload)."""
    buf[start::4] = buf[start::4].translate(_XOR[mask[0]])
    buf[start + 1::4] = buf[start + 1::4].translate(_XOR[mask[1]])
    buf[start + 2::4] = buf[start + 2::4].translate(_XOR[mask[2]])
    buf[start + 3::4] = buf[start + 3::4].translate(_XOR[mask[3]])


def apply_mask(data: Buffer, mask: Buffer) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``mask`` (RFC 6455 §5.3).

    Masking and unmasking are the same operation.  Raises ValueError when
    ``mask`` is not 4 bytes long.
    """
    if type(mask) is not bytes:
        mask = bytes(byte_view(mask))  # any buffer, the same TypeError as the compiled twin
    if len(mask) != 4:
        raise ValueError(f"mask must be 4 bytes, not {len(mask)}")
    if type(data) is not bytes:
        data = bytes(byte_view(data))
    out = _mask(data, mask, 0)
    return out if type(out) is bytes else bytes(out)


# ---------------------------------------------------------------------------
# UTF-8 validation (RFC 3629, RFC 6455 §8.1): incremental, failing at the
# first invalid byte.  CPython's decoder does the bulk (it has its own ASCII
# fast path); its incremental decoder accepts some invalid *incomplete* tails
# (ED A0: a surrogate's start), so the pending tail is checked with the
# reference DFA after every piece, which is what makes it fail fast.
# ---------------------------------------------------------------------------


class Utf8Validator:
    """Incremental strict UTF-8 validation and decoding.

    ``feed(data)`` returns the text of every complete code point so far and
    ``-1``, or ``None`` and the index in ``data`` of the first invalid byte
    (after which every feed fails at index 0).  ``finish()`` is True when
    everything was valid and no code point is left incomplete.
    """

    __slots__ = ("_dec", "_failed")

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")()
        self._failed = False

    def feed(self, data: Buffer) -> tuple[str | None, int]:
        if self._failed:
            return None, 0
        dec = self._dec
        try:
            text = dec.decode(data, False)
        except UnicodeDecodeError as exc:
            # exc.object is (pending tail of the last piece) + data; the
            # sequence at exc.start is where it went wrong.
            self._failed = True
            idx, _ = utf8_scan(exc.object[exc.start:], 0)
            return None, exc.start + idx - (len(exc.object) - len(data))
        pending = dec.getstate()[0]
        if pending:
            idx, _ = utf8_scan(pending, 0)
            if idx >= 0:
                self._failed = True
                return None, len(data) - len(pending) + idx
        return text, -1

    def finish(self) -> bool:
        """True when everything fed was valid and no code point is left open."""
        return not self._failed and not self._dec.getstate()[0]


def utf8_first_invalid(data: Buffer) -> int:
    """Index of the first byte of ``data`` that makes it invalid UTF-8, -1 if
    it is valid, ``len(data)`` if it ends inside a sequence."""
    data = bytes(data)
    idx, state = utf8_scan(data, 0)
    if idx < 0 and state != 0:
        return len(data)
    return idx


# ---------------------------------------------------------------------------
# Sending: frame serialization (RFC 6455 §5.2)
# ---------------------------------------------------------------------------

#: mask keys are drawn from the OS in batches of this many bytes and sliced
MASK_BATCH = 4096


class Encoder:
    """Serialize frames for one side of a connection.

    A client masks every frame with a fresh key from ``os.urandom`` (RFC 6455
    §5.3 wants keys an attacker cannot predict; drawn 4 KiB at a time since
    one system call per frame would dominate small messages).
    """

    def __init__(self, client: bool) -> None:
        self._client = client
        self._pool = b""
        self._pos = 0
        if client:
            register_mask_pool(self)  # a forked child draws its own keys
        self.bytes_out = 0
        self.frames_out = 0
        self.messages_out = 0

    def forget_keys(self) -> None:
        """Drop the batch of mask keys (called in a child after os.fork())."""
        self._pool = b""
        self._pos = 0

    def _key(self) -> bytes:
        pos = self._pos
        if pos + 4 > len(self._pool):
            self._pool = os.urandom(MASK_BATCH)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]

    def frame(self, opcode: int, payload: Buffer, fin: bool = True, rsv1: bool = False) -> bytes:
        """One frame carrying ``payload`` (masked when we are the client)."""
        if type(payload) is not bytes:
            payload = bytes(payload)
        n = len(payload)
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        mbit = 0x80 if self._client else 0
        # §5.2: the minimal length encoding: 7 bits, or 126 + 16 bits, or 127 + 64 bits
        if n < 126:
            head = bytes((b0, mbit | n))
        elif n < 65536:
            head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
        if not self._client:
            out = head + payload
        elif n < _MASK_TRANSLATE_MIN:
            key = self._key()
            out = head + key + _mask(payload, key, 0)
        else:
            # build the frame once and mask its payload in place
            key = self._key()
            buf = bytearray(head)
            buf += key
            buf += payload
            _mask_in_place(buf, len(head) + 4, key)
            out = bytes(buf)
        self.bytes_out += len(out)
        self.frames_out += 1
        if fin and opcode < 8:
            self.messages_out += 1
        return out

    def text(self, text: str) -> bytes:
        """A whole text message in one frame (a str subclass: the text it holds)."""
        return self.frame(OP_TEXT, str.encode(exact_text(text), "utf-8"))

    def count_message(self, nbytes: int) -> None:
        """Count a whole message's frame framed elsewhere (a Prepared one)."""
        self.bytes_out += nbytes
        self.frames_out += 1
        self.messages_out += 1


# ---------------------------------------------------------------------------
# Receiving
# ---------------------------------------------------------------------------


class Receiver:
    """Parse the peer's frames into events (RFC 6455 §5, §6.2, §7).

    ``client``: we are the client, so frames must arrive unmasked (§5.1).
    Limits are ints with -1 for "no limit" (the Connection converts None).

    Each call to ``feed`` runs ``_feed``: first it completes a header kept
    from the last call, then per frame ``_header`` (checks and reads it),
    the fast path (a whole unfragmented uncompressed message in hand), or
    the payload piece by piece: ``_payload_piece`` buffers a control frame
    or a frame of an assembled message until ``_end_frame``;
    ``_stream_piece`` delivers a data frame's piece at once
    (``assemble=False``).  ``_inflate`` runs permessage-deflate for both.
    """

    def __init__(
        self,
        client: bool,
        max_message_size: int,
        max_frame_size: int,
        assemble: bool,
        session: Any,
        views: bool = False,
    ) -> None:
        self._client = client
        # views=True: binary payloads as memoryviews of the buffer fed
        # (``_view``, set during a feed only), unmasked there in place
        self._views = views
        self._view: memoryview | None = None
        self._max_msg = max_message_size
        self._max_frame = max_frame_size
        self._assemble = assemble
        self._session = session
        self._hdr = b""  # an incomplete header (at most 13 bytes) kept from the last call
        self._offset = 0  # stream offset of the first byte not yet parsed (or of _hdr)
        self._error: ProtocolError | None = None
        # the frame being received (set by _header)
        self._in_payload = False
        self._fin = False
        self._rsv1 = False
        self._opcode = 0
        self._key: bytes | None = None
        self._length = 0
        self._got = 0
        self._payload_start = 0
        self._stream = False  # a data frame delivered piece by piece (assemble=False)
        self._frame_out = 0  # inflated bytes of this frame so far (compressed messages)
        # where a buffered frame's unmasked payload goes: the message buffer
        # when an uncompressed message is assembled, else a buffer of its own.
        # One growing bytearray (never a list of pieces), so a payload fed a
        # byte at a time costs no more memory than one fed whole.
        self._buf = bytearray()
        # the data message being received (between its first and last frame)
        self._msg_op = 0  # 0: none, OP_TEXT or OP_BINARY
        self._msg_comp = False  # its first frame had RSV1 (permessage-deflate)
        self._msg_size = 0  # payload bytes so far (inflated size when compressed)
        self._msg_wire = 0  # wire payload bytes so far (compressed messages)
        self._mbuf = bytearray()  # the message so far (assemble=True)
        # validates text as it arrives and, streamed, decodes its complete code points
        self._utf8: Utf8Validator | None = None
        # observability
        self.close_received = False
        self.bytes_in = 0
        self.frames_in = 0
        self.messages_in = 0

    # -- state visible to the Connection ------------------------------------

    @property
    def offset(self) -> int:
        return self._offset + len(self._hdr)

    @property
    def idle(self) -> bool:
        """True between frames outside any message (a clean place to end)."""
        return not self._in_payload and not self._hdr and self._msg_op == 0

    @property
    def in_message(self) -> bool:
        """True from the end of a data frame with FIN=0 to the end of its message."""
        return self._msg_op != 0 and not (
            self._in_payload and self._opcode in (OP_TEXT, OP_BINARY))

    @property
    def error(self) -> ProtocolError | None:
        return self._error

    def feed(self, data: Buffer) -> list[Any]:
        """Parse ``data``; return the events it completes."""
        if self._error is not None:
            raise raise_again(self._error)
        if self._views:
            view = memoryview(data)
            if view.readonly and not self._client:
                raise TypeError(VIEWS_WRITABLE)
        self.bytes_in += len(data)
        if self.close_received:
            return []  # RFC 6455 §5.5.1: nothing after the peer's Close counts
        if self._views:
            self._view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        if type(data) is not bytes:
            data = bytes(data)
        events: list[Any] = []
        try:
            self._feed(data, events)
        except ProtocolError as exc:
            self._error = stored_error(exc, events)
            raise
        finally:
            self._view = None
        return events

    def _in_view(self, start: int, end: int, unmasked: bytes | bytearray) -> memoryview:
        """views=True: ``data[start:end]`` of this feed as a view of the
        caller's buffer, the unmasked bytes written there in place."""
        assert self._view is not None
        view = self._view[start:end]
        if self._key is not None:
            view[:] = unmasked
        return view

    def _header(self, h: bytes, pos: int, avail: int, at: int) -> int:
        """Check and read the header at ``h[pos:]`` (``avail`` bytes, at least
        2, stream offset ``at``); its length, or -1 if incomplete."""
        b0 = h[pos]
        b1 = h[pos + 1]
        fin = b0 & 0x80
        rsv = b0 & 0x70
        opcode = b0 & 0x0F
        # -- §5.2 base header: FIN, RSV1-3, opcode; MASK, payload len ---------
        if rsv:
            if rsv & 0x30 or self._session is None:
                raise err_rsv(at, rsv >> 4)
            # RFC 7692 §6: RSV1 marks the first frame of a compressed message
            if opcode == OP_CONT or opcode >= 8:
                raise err_rsv1_not_first(at)
        if opcode >= 8:
            if opcode > OP_PONG:
                raise err_opcode(at, opcode)
            if not fin:
                raise err_control_fragmented(at)
        elif opcode == OP_CONT:
            if self._msg_op == 0:
                raise err_continuation_without_start(at)
        elif opcode <= OP_BINARY:
            if self._msg_op != 0:
                raise err_message_inside_message(at)
        else:
            raise err_opcode(at, opcode)
        masked = b1 & 0x80
        if masked:
            if self._client:
                raise err_masked(at + 1)
        elif not self._client:
            raise err_unmasked(at + 1)
        length = b1 & 0x7F
        if length < 126:
            hlen = 6 if masked else 2
            if avail < hlen:
                return -1
        else:
            if opcode >= 8:  # more than 125 bytes
                raise err_control_too_long(at + 1, length)
            hlen = 4 if length == 126 else 10
            if masked:
                hlen += 4
            if avail < hlen:
                return -1
            if length == 126:
                length = int.from_bytes(h[pos + 2 : pos + 4], "big")
                if length < 126:
                    raise err_non_minimal(at + 1, length)
            else:
                length = int.from_bytes(h[pos + 2 : pos + 10], "big")
                if length >> 63:
                    raise err_top_bit(at + 1)
                if length < 65536:
                    raise err_non_minimal(at + 1, length)

        # -- limits, checked on the announced length -------------------------
        if self._max_frame >= 0 and length > self._max_frame:
            raise err_frame_too_big(at + 1, length, self._max_frame)
        if opcode < 8 and self._max_msg >= 0:
            # compressed: the wire size so far, bounded a little above the limit
            if opcode == OP_CONT:
                comp = self._msg_comp
                size = (self._msg_wire if comp else self._msg_size) + length
            else:
                comp = rsv != 0
                size = length
            if comp:
                if size > deflate_wire_limit(self._max_msg):
                    raise err_message_too_big(at + 1, size, self._max_msg)
            elif size > self._max_msg:
                raise err_message_too_big(at + 1, size, self._max_msg)
        self._fin = fin != 0
        self._rsv1 = rsv != 0
        self._opcode = opcode
        self._key = h[pos + hlen - 4 : pos + hlen] if masked else None
        self._length = length
        return hlen

    def _feed(self, data: bytes, events: list[Any]) -> None:
        base = self._offset + len(self._hdr)  # stream offset of data[0]
        n = len(data)
        pos = 0
        got_header = False

        # -- an incomplete header kept from the last call: complete it --------
        if self._hdr:
            while True:
                hdr = self._hdr
                if len(hdr) >= 2:
                    hl = self._header(hdr, 0, len(hdr), self._offset)
                    if hl >= 0:
                        break
                    want = 2 + (2 if (hdr[1] & 0x7F) == 126 else
                                8 if (hdr[1] & 0x7F) == 127 else 0)
                    if hdr[1] & 0x80:
                        want += 4
                else:
                    want = 2
                if pos >= n:
                    return
                take = min(want - len(hdr), n - pos)
                self._hdr = hdr + data[pos : pos + take]
                pos += take
            self._hdr = b""
            got_header = True

        # this call's frames and whole messages taken by the fast path,
        # counted in locals (the hot loop) and added however the call ends
        frames = 0
        messages = 0
        try:
            while True:
                if not got_header:
                    if self._in_payload:
                        if pos >= n:
                            break
                        take = min(self._length - self._got, n - pos)
                        if self._stream:
                            self._stream_piece(data, pos, pos + take, base + pos, events)
                            pos += take
                            if self._got == self._length:
                                self._in_payload = False
                            continue
                        self._payload_piece(data, pos, pos + take, base + pos)
                        pos += take
                        if self._got == self._length:
                            self._in_payload = False
                            self._end_frame(events)
                            if self.close_received:
                                break
                        continue
                    if n - pos < 2:
                        break
                    hl = self._header(data, pos, n - pos, base + pos)
                    if hl < 0:
                        break
                    pos += hl
                got_header = False
                frames += 1
                opcode = self._opcode
                length = self._length

                # -- fast path: a whole unfragmented uncompressed message in hand --
                if self._fin and opcode != OP_CONT and opcode < 8 and not self._rsv1 and \
                        n - pos >= length:
                    key = self._key
                    payload: bytes | bytearray
                    if key is None:
                        payload = data[pos : pos + length]
                    elif length < _MASK_TRANSLATE_MIN:
                        payload = _mask(data[pos : pos + length], key, 0)
                    else:
                        payload = _unmask_slice(data, pos, pos + length, key, 0)
                    if opcode == OP_TEXT:
                        try:
                            events.append(_new(Text, (payload.decode("utf-8"), True)))
                        except UnicodeDecodeError:
                            idx, _ = utf8_scan(payload, 0)
                            if idx < 0:
                                raise err_utf8_incomplete(base + pos + length, "text message") from None
                            raise err_utf8(base + pos + idx, "text message") from None
                    elif self._views:
                        events.append(_new(Binary, (self._in_view(pos, pos + length, payload), True)))
                    else:
                        if type(payload) is not bytes:
                            payload = bytes(payload)
                        events.append(_new(Binary, (payload, True)))
                    messages += 1
                    pos += length
                    continue

                # -- start a frame whose payload is read piece by piece ------------
                self._got = 0
                self._payload_start = base + pos
                self._frame_out = 0
                if opcode != OP_CONT and opcode < 8:
                    self._msg_op = opcode
                    self._msg_comp = self._rsv1
                    self._msg_size = 0
                    self._msg_wire = 0
                    self._mbuf = bytearray()
                    self._utf8 = Utf8Validator() if opcode == OP_TEXT else None
                self._stream = opcode < 8 and not self._assemble
                if self._stream:
                    self._buf = bytearray()  # unused: each piece is delivered as it comes
                elif opcode < 8 and not self._msg_comp:
                    self._buf = self._mbuf
                else:
                    self._buf = bytearray()
                if opcode < 8:
                    if self._msg_comp:
                        self._msg_wire += length
                    else:
                        self._msg_size += length
                if length == 0:
                    if self._stream:
                        self._stream_piece(data, pos, pos, base + pos, events)
                    else:
                        self._end_frame(events)
                        if self.close_received:
                            break
                else:
                    self._in_payload = True
        finally:
            self.frames_in += frames
            self.messages_in += messages
        self._offset = base + pos
        if pos < n and not self.close_received:
            # an incomplete header (at most 13 bytes): keep it
            self._hdr = data[pos:]

    def _payload_piece(self, data: bytes, start: int, end: int, at: int) -> None:
        """Unmask ``data[start:end]``, a piece of a buffered frame's payload,
        onto the frame's buffer; validate text as it arrives (fail fast:
        RFC 6455 §8.1 lets us fail at the first bad byte)."""
        buf = self._buf
        s = len(buf)
        key = self._key
        if key is None:
            buf += memoryview(data)[start:end]
        elif end - start < _MASK_TRANSLATE_MIN:
            buf += _mask(data[start:end], key, self._got & 3)
        else:
            buf += memoryview(data)[start:end]
            phase = self._got & 3
            _mask_in_place(buf, s, key[phase:] + key[:phase] if phase else key)
        self._got += end - start
        if self._opcode < 8 and self._msg_op == OP_TEXT and not self._msg_comp:
            assert self._utf8 is not None
            text, idx = self._utf8.feed(buf[s:])
            if text is None:
                raise err_utf8(at + idx, "text message")

    def _stream_piece(self, data: bytes, start: int, end: int, at: int,
                      events: list[Any]) -> None:
        """Deliver ``data[start:end]``, the piece of a streamed data frame
        (``assemble=False``) that this read brought, at once: nothing of it
        is kept.  Text carries the code points the piece completes (an
        incomplete one waits, at most 3 bytes, in the validator), invalid
        UTF-8 fails at its first byte.  A piece with no data is delivered
        only when it ends the message (``final=True``)."""
        key = self._key
        if key is None:
            piece: bytes | bytearray = data[start:end]
        else:
            piece = _unmask_slice(data, start, end, key, self._got & 3)
        self._got += end - start
        fin = self._fin and self._got == self._length
        utf8 = self._utf8
        if self._msg_comp:
            piece = self._inflate(piece if type(piece) is bytes else bytes(piece), fin)
            if utf8 is not None:
                text, idx = utf8.feed(piece)
                if text is None:
                    raise err_utf8(self._payload_start, "compressed text message")
                if fin and not utf8.finish():
                    raise err_utf8_incomplete(self._payload_start, "compressed text message")
        elif utf8 is not None:
            text, idx = utf8.feed(piece)
            if text is None:
                raise err_utf8(at + idx, "text message")
            if fin and not utf8.finish():
                raise err_utf8_incomplete(at + end - start, "text message")
        if utf8 is not None:
            if text or fin:
                events.append(_new(Text, (text, fin)))
        elif piece or fin:
            if self._views:
                events.append(_new(Binary, (memoryview(bytes(piece)) if self._msg_comp
                                            else self._in_view(start, end, piece), fin)))
            else:
                events.append(_new(Binary, (piece if type(piece) is bytes else bytes(piece), fin)))
        if fin:
            self._msg_op = 0
            self._utf8 = None
            self.messages_in += 1

    def _inflate(self, payload: bytes, fin: bool) -> bytes:
        """RFC 7692 §7.2.2: inflate compressed payload bytes of the current
        frame (``fin``: the message's last), bounded while it runs by what is
        left of max_message_size and of max_frame_size for this frame."""
        limit = inflate_limit(self._max_msg, self._msg_size, self._max_frame, self._frame_out)
        try:
            out: bytes = self._session.decompress(payload, fin, limit)
        except LimitError:
            raise err_inflated_too_big(self._payload_start, self._max_msg, self._msg_size,
                                       self._max_frame, self._frame_out) from None
        except Exception as exc:  # noqa: BLE001  zlib.error and the session's errors
            raise err_deflate(exc, self._payload_start) from None
        self._msg_size += len(out)
        self._frame_out += len(out)
        return out

    def _end_frame(self, events: list[Any]) -> None:
        """A buffered frame is complete: a control frame, or a frame of an
        assembled message (the message's event on its last frame)."""
        opcode = self._opcode
        if opcode >= 8:
            payload = bytes(self._buf)
            if opcode == OP_PING:
                events.append(_new(Ping, (payload,)))
            elif opcode == OP_PONG:
                events.append(_new(Pong, (payload,)))
            else:
                events.append(self._close(payload))
            return
        fin = self._fin
        op = self._msg_op
        if self._msg_comp:
            piece = self._inflate(bytes(self._buf), fin)
            if op == OP_TEXT:
                assert self._utf8 is not None
                text, idx = self._utf8.feed(piece)
                if text is None:
                    raise err_utf8(self._payload_start, "compressed text message")
                if fin and not self._utf8.finish():
                    raise err_utf8_incomplete(self._payload_start, "compressed text message")
            self._mbuf += piece
        elif fin and op == OP_TEXT:
            assert self._utf8 is not None
            if not self._utf8.finish():
                raise err_utf8_incomplete(self._payload_start + self._length, "text message")
        if not fin:
            return
        mbuf = self._mbuf
        self._mbuf = bytearray()
        if op == OP_TEXT:
            events.append(_new(Text, (mbuf.decode("utf-8"), True)))
        else:
            events.append(_new(Binary, (memoryview(bytes(mbuf)) if self._views else bytes(mbuf),
                                        True)))
        self._msg_op = 0
        self._utf8 = None
        self.messages_in += 1

    def _close(self, payload: bytes) -> Close:
        """Parse a Close frame's payload (RFC 6455 §5.5.1, §7.1.5, §7.1.6)."""
        at = self._payload_start
        n = len(payload)
        if n == 0:
            code = None
            reason = ""
        elif n == 1:
            raise err_close_one_byte(at)
        else:
            code = int.from_bytes(payload[:2], "big")
            if not close_code_is_valid(code):
                raise err_close_code(at, code)
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                idx, _ = utf8_scan(payload[2:], 0)
                if idx < 0:
                    raise err_utf8_incomplete(at + n, "close reason") from None
                raise err_utf8(at + 2 + idx, "close reason") from None
        self.close_received = True
        return _new(Close, (code, reason))


class Connection(ConnectionBase):
    __doc__ = ConnectionBase.__doc__
    _Receiver = Receiver
    _Encoder = Encoder
