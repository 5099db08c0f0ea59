# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): the compiled twin.

Mirrors ``_py.py`` state for state (read that first: it is the
reference).  The differences are only in how bytes are walked: here the
automata of ``_common`` are copied into C arrays at import and run
over a ``const unsigned char*`` from the buffer protocol, chunk data is
copied once (straight from the caller's buffer into the event's bytes, or
not at all when a whole ``bytes`` feed is one piece), and coalesced data is
gathered as spans and copied once into a bytes object of exact size.
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from . import _common as _c
from ._common import ChunkedStats
from .._contract import byte_view, check_limit, raise_again, stored_error
from .._errors import IncompleteError, LimitError, ProtocolError, StateError
from .._trace import safe_trace

__all__ = ["ChunkedDecoder", "ChunkedEncoder", "ChunkedStats", "Data", "EndOfMessage", "Trailers"]

# decoder states, as in the Python twin
cdef enum:
    LINE = 0
    DATA = 1
    DATA_CR = 2
    DATA_LF = 3
    TRAILER = 4
    DONE = 5

# automaton states and codes, checked against _common below
cdef enum:
    L_START = 0
    L_SIZE = 1
    L_SEMI = 3
    L_CR = 11
    L_DONE = 12
    T_START = 0
    T_END_CR = 4
    T_LINE = 5
    T_DONE = 6
    ERROR = 32

assert (_c.L_START, _c.L_SIZE, _c.L_SEMI, _c.L_CR, _c.L_DONE) == (L_START, L_SIZE, L_SEMI, L_CR, L_DONE)
assert (_c.T_START, _c.T_END_CR, _c.T_LINE, _c.T_DONE, _c.ERROR) == (T_START, T_END_CR, T_LINE, T_DONE, ERROR)

cdef unsigned char LINE_TABLE[4096]
cdef unsigned char TRAILER_TABLE[2048]
cdef unsigned char HEXVAL[256]
cdef bytes _tmp = _c.LINE_TABLE
memcpy(LINE_TABLE, <const char*>_tmp, 4096)
_tmp = _c.TRAILER_TABLE
memcpy(TRAILER_TABLE, <const char*>_tmp, 2048)
_tmp = _c.HEXVAL
memcpy(HEXVAL, <const char*>_tmp, 256)
_tmp = None

cdef uint64_t MAX_SIZE = 0x7FFFFFFFFFFFFFFF
cdef int64_t NO_LIMIT = -1

cdef object _message = _c.message
cdef object _raw_extensions_of_line = _c.raw_extensions_of_line
cdef object _parse_extensions = _c.parse_extensions
cdef object _check_trailer_line = _c.check_trailer_line
cdef object _trailer_fields = _c.trailer_fields
cdef object _format_extensions = _c.format_extensions
cdef object _format_trailers = _c.format_trailers


@cython.freelist(512)
cdef class Data:
    """A piece of chunk data, emitted as soon as it arrives (see the Python twin)."""

    cdef readonly bytes data
    cdef readonly bint chunk_start
    cdef readonly bint chunk_end
    cdef readonly tuple extensions

    def __init__(self, bytes data, bint chunk_start, bint chunk_end, tuple extensions=()):
        self.data = data
        self.chunk_start = chunk_start
        self.chunk_end = chunk_end
        self.extensions = extensions

    def __repr__(self):
        return (f"Data(data={self.data!r}, chunk_start={self.chunk_start}, "
                f"chunk_end={self.chunk_end}, extensions={self.extensions!r})")

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        cdef Data o = <Data>other
        return (self.data, self.chunk_start, self.chunk_end, self.extensions) == (
            o.data, o.chunk_start, o.chunk_end, o.extensions)

    __hash__ = None


cdef inline Data _data(bytes data, bint start, bint end, tuple exts):
    cdef Data ev = Data.__new__(Data)
    ev.data = data
    ev.chunk_start = start
    ev.chunk_end = end
    ev.extensions = exts
    return ev


cdef class Trailers:
    """The trailer fields, names lowercased (only when there are some)."""

    cdef readonly list headers

    def __init__(self, list headers):
        self.headers = headers

    def __repr__(self):
        return f"Trailers(headers={self.headers!r})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.headers == (<Trailers>other).headers

    __hash__ = None


cdef class EndOfMessage:
    """The body is complete.  ``extensions`` are those of the last-chunk."""

    cdef readonly tuple extensions

    def __init__(self, tuple extensions=()):
        self.extensions = extensions

    def __repr__(self):
        return f"EndOfMessage(extensions={self.extensions!r})" if self.extensions else "EndOfMessage()"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.extensions == (<EndOfMessage>other).extensions

    __hash__ = None


cdef int64_t _limit(object value, str name) except -2:
    return check_limit(name, value)  # -1 (NO_LIMIT) for None; clamped to 2**63-1


cdef class ChunkedDecoder:
    """Decode a chunked message body, incrementally (RFC 9112 §7.1).

    See the Python twin (``streamcore.chunked._py.ChunkedDecoder``) for the
    full contract; this one behaves identically.
    """

    cdef uint64_t _max_chunk
    cdef int64_t _max_line
    cdef int64_t _max_trailers
    cdef bint _coalesce
    cdef object _trace
    cdef int _state
    cdef uint64_t _remaining
    cdef int64_t _offset
    cdef int _lstate
    cdef int64_t _lcount
    cdef uint64_t _size
    cdef bint _lext
    cdef bytearray _line
    cdef int _tstate
    cdef int64_t _tcount
    cdef bytearray _section  # the trailer lines so far, raw (as in the Python twin)
    cdef list _headers
    cdef bint _start
    cdef bytes _exts  # raw, parsed when handed out (as in the Python twin)
    cdef object _error
    cdef bint _eof
    cdef bytes _unused
    cdef int64_t _bytes_in
    cdef int64_t _bytes_out
    cdef int64_t _chunks
    cdef int64_t _events
    # coalesce mode: (start, length) of each piece of the current call
    cdef Py_ssize_t* _spans
    cdef Py_ssize_t _nspans
    cdef Py_ssize_t _cap

    def __cinit__(self):
        self._spans = NULL
        self._cap = 0

    def __dealloc__(self):
        if self._spans != NULL:
            PyMem_Free(self._spans)

    def __init__(self, *, max_chunk_size=None, max_line_size=4096, max_trailers_size=16384,
                 coalesce=False, trace=None):
        cdef int64_t mc = _limit(max_chunk_size, "max_chunk_size")
        self._max_line = _limit(max_line_size, "max_line_size")
        self._max_trailers = _limit(max_trailers_size, "max_trailers_size")
        self._max_chunk = MAX_SIZE if mc == NO_LIMIT else <uint64_t>mc
        self._coalesce = bool(coalesce)
        self._trace = safe_trace(trace)
        self._state = LINE
        self._remaining = 0
        self._offset = 0
        self._lstate = L_START
        self._lcount = 0
        self._size = 0
        self._lext = False
        self._line = bytearray()
        self._tstate = T_START
        self._tcount = 0
        self._section = bytearray()
        self._headers = []
        self._start = False
        self._exts = b""
        self._error = None
        self._eof = False
        self._unused = b""
        self._bytes_in = self._bytes_out = self._chunks = self._events = 0

    @property
    def done(self):
        """True once the last-chunk and trailer section have been read."""
        return self._state == DONE

    @property
    def unused_data(self):
        """Bytes fed after the end of the body (say, the next pipelined message)."""
        return self._unused

    @property
    def stats(self):
        """Running totals: bytes fed, body bytes out, chunks, events."""
        return ChunkedStats(self._bytes_in, self._bytes_out, self._chunks, self._events)

    def feed(self, data):
        """Decode ``data`` and return the events it completes (see the Python twin)."""
        if self._error is not None:
            raise raise_again(self._error)
        if self._state == DONE:
            raise StateError("feed() after the end of the chunked body; see unused_data")
        if self._eof:
            raise StateError("feed() after eof()")
        if type(data) is not bytes:
            data = byte_view(data)
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        cdef Py_ssize_t n = view.len
        cdef list events = []
        try:
            self._run(data, <const unsigned char*>view.buf, n, events)
        except ProtocolError as exc:
            self._error = stored_error(exc, events)
            self._release()
            self._finish_call(n, events)
            raise
        finally:
            PyBuffer_Release(&view)
        self._finish_call(n, events)
        return events

    def eof(self):
        """The stream ended: raise IncompleteError unless the body is complete."""
        if self._eof:
            raise StateError("eof() called twice")
        self._eof = True
        self._release()
        if self._error is not None:
            raise raise_again(self._error)
        if self._state != DONE:
            self._error = IncompleteError("stream ended inside the chunked body", offset=self._offset)
            raise self._error

    cdef void _release(self):
        """Drop what a stream that cannot go on holds (after an error)."""
        self._line = bytearray()
        self._section = bytearray()
        self._headers = []
        self._exts = b""

    cdef void _finish_call(self, Py_ssize_t n, list events):
        self._offset += n
        self._bytes_in += n
        self._events += len(events)
        if self._trace is not None:
            for event in events:
                self._trace(event)

    cdef int _add_span(self, Py_ssize_t start, Py_ssize_t length) except -1:
        cdef Py_ssize_t* grown
        if self._nspans == self._cap:
            self._cap = self._cap * 2 if self._cap else 64
            grown = <Py_ssize_t*>PyMem_Realloc(self._spans, self._cap * 2 * sizeof(Py_ssize_t))
            if grown == NULL:
                raise MemoryError()
            self._spans = grown
        self._spans[2 * self._nspans] = start
        self._spans[2 * self._nspans + 1] = length
        self._nspans += 1
        return 0

    cdef bytes _gather(self, object obj, const unsigned char* p, Py_ssize_t n):
        cdef Py_ssize_t i, total = 0
        for i in range(self._nspans):
            total += self._spans[2 * i + 1]
        if self._nspans == 1 and total == n and type(obj) is bytes:
            return <bytes>obj
        cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
        cdef char* w = PyBytes_AS_STRING(out)
        for i in range(self._nspans):
            memcpy(w, p + self._spans[2 * i], self._spans[2 * i + 1])
            w += self._spans[2 * i + 1]
        self._nspans = 0
        return out

    cdef int _run(self, object obj, const unsigned char* p, Py_ssize_t n, list events) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take, i
        cdef uint64_t size
        cdef bint end
        cdef bint cstart = False, cend = False
        cdef list cexts = None
        cdef bytes piece
        self._nspans = 0
        while pos < n:
            if self._state == DATA:
                take = n - pos
                if <uint64_t>take > self._remaining:
                    take = <Py_ssize_t>self._remaining
                self._remaining -= take
                end = self._remaining == 0
                self._bytes_out += take
                if end:
                    self._state = DATA_CR
                if self._coalesce:
                    if self._nspans == 0:
                        cstart = self._start
                    self._add_span(pos, take)
                    if self._exts:
                        if cexts is None:
                            cexts = []
                        cexts.extend(_parse_extensions(self._exts))
                    cend = end
                else:
                    if take == n and type(obj) is bytes:
                        piece = <bytes>obj
                    else:
                        piece = PyBytes_FromStringAndSize(<const char*>p + pos, take)
                    events.append(_data(piece, self._start, end,
                                        _parse_extensions(self._exts) if self._exts else ()))
                pos += take
                self._start = False
                self._exts = b""
                # The CRLF after the data, when it is here and right;
                # otherwise DATA_CR / DATA_LF check it byte by byte.
                if end and pos + 1 < n and p[pos] == 13 and p[pos + 1] == 10:
                    pos += 2
                    self._state = LINE
            elif self._state == DATA_CR:
                if p[pos] != 13:
                    raise ProtocolError("chunk data not followed by CRLF", offset=self._offset + pos)
                pos += 1
                self._state = DATA_LF
            elif self._state == DATA_LF:
                if p[pos] != 10:
                    raise ProtocolError("chunk data not followed by CRLF", offset=self._offset + pos)
                pos += 1
                self._state = LINE
            elif self._state == LINE:
                # Fastest path: a plain hex size line wholly in this read.
                if self._lstate == L_START and not self._line:
                    i = pos
                    size = 0
                    while i < n and i - pos < 15 and HEXVAL[p[i]] != 0xFF:
                        size = (size << 4) | HEXVAL[p[i]]
                        i += 1
                    if (i > pos and i + 1 < n and p[i] == 13 and p[i + 1] == 10
                            and size <= self._max_chunk
                            and (self._max_line < 0 or i - pos <= self._max_line)):
                        pos = i + 2
                        self._exts = b""
                        if size:
                            self._chunks += 1
                            self._remaining = size
                            self._start = True
                            self._state = DATA
                        else:
                            self._state = TRAILER
                        continue
                pos = self._read_line(p, pos, n)
                if self._lstate == L_DONE:
                    self._end_line()
            elif self._state == TRAILER:
                pos = self._read_trailers(p, pos, n)
                if self._state == DONE:
                    if self._nspans:
                        events.append(_data(self._gather(obj, p, n), cstart, cend,
                                            tuple(cexts) if cexts else ()))
                    if self._headers:
                        events.append(Trailers(self._headers))
                    events.append(EndOfMessage(_parse_extensions(self._exts) if self._exts else ()))
                    self._exts = b""
                    self._unused = PyBytes_FromStringAndSize(<const char*>p + pos, n - pos)
                    return 0
            else:
                break
        if self._nspans:
            events.append(_data(self._gather(obj, p, n), cstart, cend,
                                tuple(cexts) if cexts else ()))
        return 0

    cdef Py_ssize_t _read_line(self, const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) except -1:
        cdef int st = self._lstate
        cdef int nxt
        cdef unsigned char b
        cdef int64_t count = self._lcount
        cdef int64_t max_line = self._max_line
        cdef uint64_t size = self._size
        cdef Py_ssize_t start = pos
        cdef bytes line
        while pos < n:
            b = p[pos]
            if st != L_CR and b != 13:
                count += 1
                if max_line >= 0 and count > max_line:
                    raise LimitError(f"chunk-size line longer than max_line_size={max_line}",
                                     offset=self._offset + pos)
            nxt = LINE_TABLE[(st << 8) | b]
            if nxt >= ERROR:
                raise ProtocolError(_message(nxt, b), offset=self._offset + pos)
            if nxt == L_SIZE:
                if size > (MAX_SIZE >> 4):
                    raise ProtocolError("chunk-size overflows 2**63-1", offset=self._offset + pos)
                size = (size << 4) | HEXVAL[b]
                if size > self._max_chunk:
                    raise LimitError(f"chunk-size larger than max_chunk_size={self._max_chunk}",
                                     offset=self._offset + pos)
            elif nxt == L_SEMI:
                self._lext = True
            st = nxt
            pos += 1
            if st == L_DONE:
                break
        self._lstate = st
        self._lcount = count
        self._size = size
        if st == L_DONE:
            if self._lext or self._line:
                line = bytes(self._line) + PyBytes_FromStringAndSize(<const char*>p + start, pos - start)
                self._line.clear()
                self._exts = _raw_extensions_of_line(line[:len(line) - 2])
            else:
                self._exts = b""
        else:
            self._line += PyBytes_FromStringAndSize(<const char*>p + start, pos - start)
        return pos

    cdef void _end_line(self):
        cdef uint64_t size = self._size
        self._lstate = L_START
        self._lcount = 0
        self._size = 0
        self._lext = False
        if size:
            self._chunks += 1
            self._remaining = size
            self._start = True
            self._state = DATA
        else:
            self._state = TRAILER

    cdef Py_ssize_t _read_trailers(self, const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) except -1:
        cdef int st = self._tstate
        cdef int nxt
        cdef unsigned char b
        cdef int64_t count = self._tcount
        cdef int64_t max_t = self._max_trailers
        cdef Py_ssize_t start = pos
        cdef bytes line
        while pos < n:
            b = p[pos]
            if not ((st == T_START or st == T_LINE) and b == 13) and st != T_END_CR:
                count += 1
                if max_t >= 0 and count > max_t:
                    raise LimitError(f"trailer section longer than max_trailers_size={max_t}",
                                     offset=self._offset + pos)
            nxt = TRAILER_TABLE[(st << 8) | b]
            if nxt >= ERROR:
                raise ProtocolError(_message(nxt, b, True), offset=self._offset + pos)
            st = nxt
            pos += 1
            if st == T_LINE:
                line = bytes(self._line) + PyBytes_FromStringAndSize(<const char*>p + start, pos - start)
                self._line.clear()
                _check_trailer_line(line, self._offset + pos - len(line))
                self._section += line
                start = pos
            elif st == T_DONE:
                break
        self._tstate = st
        self._tcount = count
        if st == T_DONE:
            self._state = DONE
            if self._section:
                self._headers = _trailer_fields(bytes(self._section))
                self._section = bytearray()
        else:
            self._line += PyBytes_FromStringAndSize(<const char*>p + start, pos - start)
        return pos


cdef const char* HEX = b"0123456789abcdef"


cdef class ChunkedEncoder:
    """Encode a message body with chunked transfer coding (RFC 9112 §7.1).

    See the Python twin (``streamcore.chunked._py.ChunkedEncoder``).
    """

    cdef bint _finished
    cdef object _trace
    cdef int64_t _bytes_in
    cdef int64_t _bytes_out
    cdef int64_t _chunks
    cdef int64_t _events

    def __init__(self, *, trace=None):
        self._finished = False
        self._trace = safe_trace(trace)
        self._bytes_in = self._bytes_out = self._chunks = self._events = 0

    @property
    def stats(self):
        """Running totals: payload bytes in, wire bytes out, chunks, calls."""
        return ChunkedStats(self._bytes_in, self._bytes_out, self._chunks, self._events)

    def encode(self, data, extensions=()):
        """One chunk carrying ``data``; empty data gives ``b""`` (never a last-chunk)."""
        if self._finished:
            raise StateError("encode() after finish()")
        cdef bytes ext = _format_extensions(extensions) if extensions else b""
        if type(data) is not bytes:
            data = byte_view(data)
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        cdef Py_ssize_t size = view.len
        cdef char digits[16]
        cdef int nd = 0
        cdef uint64_t v = <uint64_t>size
        cdef bytes out
        cdef char* w
        cdef Py_ssize_t elen = len(ext)
        try:
            if size == 0:
                return b""
            while v:
                digits[15 - nd] = HEX[v & 15]
                v >>= 4
                nd += 1
            out = PyBytes_FromStringAndSize(NULL, nd + elen + 2 + size + 2)
            w = PyBytes_AS_STRING(out)
            memcpy(w, digits + 16 - nd, nd)
            w += nd
            if elen:
                memcpy(w, PyBytes_AS_STRING(ext), elen)
                w += elen
            w[0] = 13
            w[1] = 10
            memcpy(w + 2, view.buf, size)
            w += 2 + size
            w[0] = 13
            w[1] = 10
        finally:
            PyBuffer_Release(&view)
        self._bytes_in += size
        self._bytes_out += len(out)
        self._chunks += 1
        self._events += 1
        if self._trace is not None:
            self._trace(_data(bytes(data), True, True, tuple(extensions)))
        return out

    def encode_buffers(self, data, extensions=()):
        """Like encode(), as ``[head, data, b"\\r\\n"]`` for ``writelines`` (no copy)."""
        if self._finished:
            raise StateError("encode() after finish()")
        cdef bytes ext = _format_extensions(extensions) if extensions else b""
        if type(data) is not bytes:
            data = byte_view(data)
        cdef Py_ssize_t size = len(data)
        if size == 0:
            return []
        cdef bytes head = b"%x%s\r\n" % (size, ext)
        self._bytes_in += size
        self._bytes_out += len(head) + size + 2
        self._chunks += 1
        self._events += 1
        if self._trace is not None:
            self._trace(_data(bytes(data), True, True, tuple(extensions)))
        return [head, data, b"\r\n"]

    def finish(self, trailers=(), extensions=()):
        """The last-chunk with its extensions, the trailer fields (validated)
        and the final CRLF (see the Python twin)."""
        if self._finished:
            raise StateError("finish() called twice")
        cdef bytes ext = _format_extensions(extensions) if extensions else b""
        cdef bytes fields = _format_trailers(trailers) if trailers else b""
        self._finished = True
        cdef bytes out = b"0" + ext + b"\r\n" + fields + b"\r\n"
        self._bytes_out += len(out)
        self._events += 1
        if self._trace is not None:
            if fields:
                self._trace(Trailers([(k.encode("latin-1") if isinstance(k, str) else bytes(k),
                                       v.encode("latin-1") if isinstance(v, str) else bytes(v))
                                      for k, v in trailers]))
            self._trace(EndOfMessage(tuple(extensions)))
        return out
