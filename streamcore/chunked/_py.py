"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): the pure-Python twin.

This is the readable reference; ``_c.pyx`` mirrors it state for
state.  Theory of operation: the decoder is in one of five states.

``LINE``     reading a chunk-size line (size, extensions, CRLF);
``DATA``     passing on ``remaining`` bytes of chunk data as they arrive;
``DATA_CR``  / ``DATA_LF``: the CRLF that must follow chunk data;
``TRAILER``  reading the trailer section up to its empty line;
``DONE``     the body is complete; bytes after it are ``unused_data``.

Lines are checked by the byte automata of :mod:`._common`, which
both twins share, so the first bad byte and its offset are the same whatever
the twin and however the input is split.  A whole line found in one feed
takes a regex fast path that accepts exactly what the automaton accepts.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._contract import Buffer, byte_view, check_limit, raise_again, stored_error
from .._errors import IncompleteError, LimitError, ProtocolError, StateError
from .._trace import safe_trace
from . import _common as _c
from ._common import ChunkedStats, Data, EndOfMessage, Event, Trailers

__all__ = ["ChunkedDecoder", "ChunkedEncoder", "ChunkedStats", "Data", "EndOfMessage", "Trailers"]


LINE, DATA, DATA_CR, DATA_LF, TRAILER, DONE = range(6)

_HEX = b"0123456789abcdefABCDEF"


_new = tuple.__new__


class ChunkedDecoder:
    """Decode a chunked message body, incrementally (RFC 9112 §7.1).

    ``feed`` bytes as they arrive and get back :class:`Data`, then at the
    end :class:`Trailers` (when there are trailer fields) and
    :class:`EndOfMessage`.  Limits (``None``: no limit), each enforced as
    bytes arrive:

    ``max_chunk_size``     largest chunk-size accepted (default: none; the
                           data is streamed, so a large chunk costs no memory);
    ``max_line_size``      bytes of one chunk-size line, extensions included,
                           CRLF excluded (4096, like h11's and node's header
                           line budgets);
    ``max_trailers_size``  bytes of the trailer section (16 KiB, a quarter of
                           Apache's 8 KiB x 100-field header budget).

    ``coalesce=True`` returns all body bytes decoded by one ``feed`` as one
    :class:`Data`.  ``trace`` is called with each event as it is produced.

    ``views=True`` (zero-copy receive, for consumers that write the body
    straight out: proxies, echo): each ``Data.data`` is a ``memoryview``
    (read-only when the buffer is) into the buffer given to ``feed`` instead of a ``bytes``
    copy.  It is valid until the next ``feed`` call: the caller may then
    reuse or overwrite that buffer, so a consumer that keeps body bytes
    copies them first (``bytes(view)``).  A bytearray fed cannot be resized
    while such a view is alive (``view.release()`` or dropping the event
    ends it).  Cannot be combined with ``coalesce`` (pieces of several chunks
    are not one span of the buffer).
    """

    __slots__ = (
        "_max_chunk", "_max_line", "_max_trailers", "_coalesce", "_views", "_trace",
        "_state", "_remaining", "_offset", "_lstate", "_lcount", "_size", "_line",
        "_tstate", "_tcount", "_section", "_headers", "_start", "_exts", "_error", "_eof", "_unused",
        "_bytes_in", "_bytes_out", "_chunks", "_events",
    )

    def __init__(
        self,
        *,
        max_chunk_size: int | None = None,
        max_line_size: int | None = 4096,
        max_trailers_size: int | None = 16384,
        coalesce: bool = False,
        views: bool = False,
        trace: Callable[[Any], object] | None = None,
    ) -> None:
        if coalesce and views:
            raise ValueError("coalesce=True and views=True cannot be combined: the pieces of "
                             "several chunks are not one span of the fed buffer")
        max_chunk = check_limit("max_chunk_size", max_chunk_size)  # -1: no limit
        self._max_chunk = _c.MAX_SIZE if max_chunk < 0 else min(max_chunk, _c.MAX_SIZE)
        self._max_line = check_limit("max_line_size", max_line_size)
        self._max_trailers = check_limit("max_trailers_size", max_trailers_size)
        self._coalesce = bool(coalesce)
        self._views = bool(views)
        self._trace = safe_trace(trace)
        self._state = LINE
        self._remaining = 0  # chunk data bytes still to come
        self._offset = 0  # stream offset of the next byte fed
        self._lstate = _c.L_START  # line automaton state
        self._lcount = 0  # bytes of the current line before its CR
        self._size = 0  # chunk-size read so far
        self._line = bytearray()  # a line split across feeds
        self._tstate = _c.T_START  # trailer automaton state
        self._tcount = 0  # bytes of the trailer section so far
        self._section = bytearray()  # the trailer lines so far, raw
        self._headers: list[tuple[bytes, bytes]] = []
        self._start = False  # the next data piece starts a chunk
        # the raw extensions of the chunk being started, parsed when handed
        # out: parsed pairs cost ~30x the bytes a peer sent for them
        self._exts = b""
        self._error: ProtocolError | None = None
        self._eof = False
        self._unused = b""
        self._bytes_in = 0
        self._bytes_out = 0
        self._chunks = 0
        self._events = 0

    # -- public face ---------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the last-chunk and trailer section have been read."""
        return self._state == DONE

    @property
    def unused_data(self) -> bytes:
        """Bytes fed after the end of the body (say, the next pipelined message)."""
        return self._unused

    @property
    def stats(self) -> ChunkedStats:
        """Running totals: bytes fed, body bytes out, chunks, events."""
        return ChunkedStats(self._bytes_in, self._bytes_out, self._chunks, self._events)

    def feed(self, data: Buffer) -> list[Event]:
        """Decode ``data`` and return the events it completes.

        Raises :class:`~streamcore.ProtocolError` (with ``.offset``) on bytes
        that break RFC 9112, :class:`~streamcore.LimitError` past a limit.  The
        events decoded before the error in the same call are on the
        exception's ``events``.  Once raised, every later call raises again.
        """
        if self._eof:
            raise StateError("feed() after eof()")
        if self._error is not None:
            raise raise_again(self._error)
        if self._state == DONE:
            raise StateError("feed() after the end of the chunked body; see unused_data")
        view: memoryview | None = None
        if type(data) is bytes:
            buf = data
            if self._views:
                view = memoryview(data)
        else:
            flat = byte_view(data)
            buf = bytes(flat)
            if self._views:
                # the framing is scanned in a bytes copy (this twin has no
                # pointer into the buffer); the data views alias ``flat``,
                # the caller's own memory unless it was non-contiguous
                view = memoryview(flat)
        events: list[Event] = []
        try:
            self._run(buf, view, events)
        except ProtocolError as exc:
            self._error = stored_error(exc, events)
            self._release()
            self._finish_call(len(buf), events)
            raise
        self._finish_call(len(buf), events)
        return events

    def eof(self) -> None:
        """The stream ended: raise :class:`~streamcore.IncompleteError` unless done.

        A second call is a :class:`~streamcore.StateError`."""
        if self._eof:
            raise StateError("eof() called twice")
        self._eof = True
        self._release()
        if self._error is not None:
            raise raise_again(self._error)
        if self._state != DONE:
            self._error = IncompleteError(
                "stream ended inside the chunked body", offset=self._offset)
            raise self._error

    # -- the machine -----------------------------------------------------------
    def _release(self) -> None:
        """Drop what a stream that cannot go on holds (after an error)."""
        self._line = bytearray()
        self._section = bytearray()
        self._headers = []
        self._exts = b""

    def _finish_call(self, n: int, events: list[Event]) -> None:
        self._offset += n
        self._bytes_in += n
        self._events += len(events)
        if self._trace is not None:
            for event in events:
                self._trace(event)

    def _run(self, buf: bytes, view: memoryview | None, events: list[Event]) -> None:
        """Decode ``buf``; with ``views``, data pieces are slices of ``view``
        (the same bytes as ``buf``, in the caller's memory)."""
        pos = 0
        n = len(buf)
        pieces: list[bytes | memoryview] = []  # coalesce mode: data of this call
        cexts: list[tuple[bytes, bytes | None]] = []
        cstart = cend = False
        while pos < n:
            state = self._state
            if state == DATA:
                take = self._remaining if self._remaining < n - pos else n - pos
                if view is not None:
                    piece: bytes | memoryview = view[pos:pos + take]
                else:
                    piece = buf[pos:pos + take] if take != n else buf
                pos += take
                self._remaining -= take
                end = self._remaining == 0
                self._bytes_out += take
                if end:
                    # The CRLF after the data, when it is here and right;
                    # otherwise DATA_CR / DATA_LF check it byte by byte.
                    if buf[pos:pos + 2] == b"\r\n":
                        pos += 2
                        self._state = LINE
                    else:
                        self._state = DATA_CR
                if self._coalesce:
                    if not pieces:
                        cstart = self._start
                    pieces.append(piece)
                    if self._exts:
                        cexts.extend(_c.parse_extensions(self._exts))
                    cend = end
                else:
                    events.append(_new(Data, (piece, self._start, end,
                                              _c.parse_extensions(self._exts) if self._exts else ())))
                self._start = False
                self._exts = b""
            elif state == DATA_CR:
                if buf[pos] != _c.CR:
                    raise ProtocolError("chunk data not followed by CRLF",
                                        offset=self._offset + pos)
                pos += 1
                self._state = DATA_LF
            elif state == DATA_LF:
                if buf[pos] != _c.LF:
                    raise ProtocolError("chunk data not followed by CRLF",
                                        offset=self._offset + pos)
                pos += 1
                self._state = LINE
            elif state == LINE:
                # Fastest path: a plain hex size line wholly in this read.
                if self._lstate == _c.L_START and not self._line:
                    stop = n if self._max_line < 0 else min(n, pos + self._max_line + 2)
                    crlf = buf.find(b"\r\n", pos, stop)
                    if crlf > pos:
                        digits = buf[pos:crlf]
                        if not digits.translate(None, _HEX):
                            size = int(digits, 16)
                            if size <= self._max_chunk:
                                pos = crlf + 2
                                self._exts = b""
                                if size:
                                    self._chunks += 1
                                    self._remaining = size
                                    self._start = True
                                    self._state = DATA
                                else:
                                    self._state = TRAILER
                                continue
                pos = self._read_line(buf, pos, n)
                if self._lstate == _c.L_DONE:
                    self._end_line()
            elif state == TRAILER:
                pos = self._read_trailers(buf, pos, n)
                if self._state == DONE:
                    if pieces:
                        events.append(_new(Data, (b"".join(pieces), cstart, cend, tuple(cexts))))
                        pieces = []
                    if self._headers:
                        events.append(_new(Trailers, (self._headers,)))
                    events.append(_new(EndOfMessage, (_c.parse_extensions(self._exts) if self._exts else (),)))
                    self._exts = b""
                    self._unused = buf[pos:]
                    return
            else:  # pragma: no cover - DONE returns above
                break
        if pieces:
            events.append(_new(Data, (b"".join(pieces), cstart, cend, tuple(cexts))))

    def _read_line(self, buf: bytes, pos: int, n: int) -> int:
        """Consume chunk-size line bytes; return the new position."""
        max_line = self._max_line
        if self._lstate == _c.L_START and not self._line:
            # Fast path: the whole line is here and well-formed.
            stop = n if max_line < 0 else min(n, pos + max_line + 2)
            crlf = buf.find(b"\r\n", pos, stop)
            if crlf >= 0:
                m = _c.SIZE_LINE.fullmatch(buf, pos, crlf)
                if m is not None:
                    size = int(m.group(1), 16)
                    if size <= self._max_chunk:
                        self._size = size
                        self._lstate = _c.L_DONE
                        ext = m.group(2)
                        self._exts = ext
                        return crlf + 2
        # Slow path: walk the automaton byte by byte; exact errors and offsets.
        table = _c.LINE_TABLE
        hexval = _c.HEXVAL
        st = self._lstate
        count = self._lcount
        size = self._size
        start = pos
        while pos < n:
            b = buf[pos]
            if st != _c.L_CR and b != _c.CR:
                count += 1
                if count > max_line >= 0:
                    raise LimitError(f"chunk-size line longer than max_line_size={max_line}",
                                     offset=self._offset + pos)
            nxt = table[st << 8 | b]
            if nxt >= _c.ERROR:
                raise ProtocolError(_c.message(nxt, b), offset=self._offset + pos)
            if nxt == _c.L_SIZE:
                size = size << 4 | hexval[b]
                if size > _c.MAX_SIZE:
                    raise ProtocolError("chunk-size overflows 2**63-1", offset=self._offset + pos)
                if size > self._max_chunk:
                    raise LimitError(
                        f"chunk-size larger than max_chunk_size={self._max_chunk}",
                        offset=self._offset + pos)
            st = nxt
            pos += 1
            if st == _c.L_DONE:
                break
        self._lstate = st
        self._lcount = count
        self._size = size
        if st == _c.L_DONE:
            line = bytes(self._line) + buf[start:pos] if self._line else buf[start:pos]
            self._line.clear()
            self._exts = _c.raw_extensions_of_line(line[:-2])
        else:
            self._line += buf[start:pos]
        return pos

    def _end_line(self) -> None:
        """A chunk-size line is complete: start the chunk or the trailer section."""
        size = self._size
        self._lstate = _c.L_START
        self._lcount = 0
        self._size = 0
        if size:
            self._chunks += 1
            self._remaining = size
            self._start = True
            self._state = DATA
        else:
            self._state = TRAILER

    def _read_trailers(self, buf: bytes, pos: int, n: int) -> int:
        """Consume trailer section bytes; return the new position."""
        table = _c.TRAILER_TABLE
        max_t = self._max_trailers
        st = self._tstate
        count = self._tcount
        start = pos
        while pos < n:
            b = buf[pos]
            if not ((st == _c.T_START or st == _c.T_LINE) and b == _c.CR) and st != _c.T_END_CR:
                count += 1
                if count > max_t >= 0:
                    raise LimitError(
                        f"trailer section longer than max_trailers_size={max_t}",
                        offset=self._offset + pos)
            nxt = table[st << 8 | b]
            if nxt >= _c.ERROR:
                raise ProtocolError(_c.message(nxt, b, trailer=True), offset=self._offset + pos)
            st = nxt
            pos += 1
            if st == _c.T_LINE:
                line = bytes(self._line) + buf[start:pos] if self._line else buf[start:pos]
                self._line.clear()
                _c.check_trailer_line(line, self._offset + pos - len(line))
                self._section += line
                start = pos
            elif st == _c.T_DONE:
                break
        self._tstate = st
        self._tcount = count
        if st == _c.T_DONE:
            self._state = DONE
            if self._section:
                self._headers = _c.trailer_fields(bytes(self._section))
                self._section = bytearray()
        else:
            self._line += buf[start:pos]
        return pos


class ChunkedEncoder:
    """Encode a message body with chunked transfer coding (RFC 9112 §7.1).

    ``encode`` each piece of body as it is ready, then ``finish`` once.
    ``trace`` is called with a :class:`Data`, :class:`Trailers` or
    :class:`EndOfMessage` for what each call writes.
    """

    __slots__ = ("_finished", "_trace", "_bytes_in", "_bytes_out", "_chunks", "_events")

    def __init__(self, *, trace: Callable[[Any], object] | None = None) -> None:
        self._finished = False
        self._trace = safe_trace(trace)
        self._bytes_in = 0
        self._bytes_out = 0
        self._chunks = 0
        self._events = 0

    @property
    def stats(self) -> ChunkedStats:
        """Running totals: payload bytes in, wire bytes out, chunks, calls."""
        return ChunkedStats(self._bytes_in, self._bytes_out, self._chunks, self._events)

    def _head(self, data: Buffer, extensions: object) -> tuple[int, bytes]:
        if self._finished:
            raise StateError("encode() after finish()")
        ext = _c.format_extensions(extensions) if extensions else b""
        size = len(data)
        return size, b"%x%s\r\n" % (size, ext)

    def encode(self, data: Buffer, extensions: object = ()) -> bytes:
        """One chunk carrying ``data``; empty data gives ``b""`` (never a last-chunk)."""
        data = byte_view(data)
        size, head = self._head(data, extensions)
        if not size:
            return b""
        out = b"".join((head, data, b"\r\n"))
        self._count(size, len(out), data, extensions)
        return out

    def encode_buffers(self, data: Buffer, extensions: object = ()) -> list[Buffer]:
        """Like :meth:`encode`, as ``[head, data, b"\\r\\n"]`` for ``writelines``.

        ``data`` is passed through untouched, so a large payload is never
        copied (a non-contiguous view is copied once, into bytes; a view of
        multi-byte items is handed on as a view of its bytes); empty data
        gives ``[]``.
        """
        data = byte_view(data)
        size, head = self._head(data, extensions)
        if not size:
            return []
        self._count(size, len(head) + size + 2, data, extensions)
        return [head, data, b"\r\n"]

    def finish(self, trailers: object = (), extensions: object = ()) -> bytes:
        """The last-chunk (with ``extensions``, RFC 9112 §7.1: ``last-chunk =
        1*("0") [ chunk-ext ] CRLF``; the decoder reports them on
        :class:`EndOfMessage`), the trailer fields (validated) and the final CRLF."""
        if self._finished:
            raise StateError("finish() called twice")
        ext = _c.format_extensions(extensions) if extensions else b""
        fields = _c.format_trailers(trailers) if trailers else b""
        self._finished = True
        out = b"0" + ext + b"\r\n" + fields + b"\r\n"
        self._bytes_out += len(out)
        self._events += 1
        if self._trace is not None:
            if fields:
                self._trace(Trailers(_c.traced_trailers(trailers)))
            self._trace(EndOfMessage(_c.traced_extensions(extensions)))
        return out

    def _count(self, size: int, wire: int, data: Buffer, extensions: object) -> None:
        self._bytes_in += size
        self._bytes_out += wire
        self._chunks += 1
        self._events += 1
        if self._trace is not None:
            self._trace(Data(bytes(data), True, True, _c.traced_extensions(extensions)))
