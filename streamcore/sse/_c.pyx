# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Server-Sent Events, compiled twin.

Mirrors ``_py.py`` step by step (read that module for the theory of
operation and the WHATWG steps).  What differs is only how: lines are found
by a C loop over the caller's buffer, the line, data and event-type buffers
are plain C byte buffers, values are decoded straight from those bytes, and
each event is one tuple allocation of the shared ``Event`` NamedTuple.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeUTF8
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

from .._contract import byte_view, check_limit, raise_again, stored_error
from .._errors import ProtocolError, StateError
from .._trace import safe_trace
from ._common import (
    BOM,
    DEFAULT_MAX_EVENT_SIZE,
    Event,
    SSEStats,
    as_text,
    check_event_type,
    check_id,
    check_retry,
    check_seed,
    check_utf8,
    event_limit_error,
    field_utf8,
    line_limit_error,
    parse_retry,
    response_headers,
    unpack_item,
)

__all__ = [
    "Event", "SSEDecoder", "SSEStats", "encode_event", "encode_events", "keepalive",
    "response_headers",
]

cdef extern from *:
    """
    /* One Event (a tuple subclass) from three new-style str references,
       without going through the NamedTuple's keyword-parsing __new__. */
    static PyObject* sse_make_event(PyTypeObject* tp, PyObject* a, PyObject* b, PyObject* c) {
        PyObject* o = tp->tp_alloc(tp, 3);
        if (o == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(o, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(o, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(o, 2, c);
        return o;
    }
    """
    object sse_make_event(PyTypeObject* tp, object a, object b, object c)

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    /* 1 if s[0:n] is UTF-8 as Python's strict codec takes it (no overlong
       forms, no surrogates D800-DFFF, nothing past U+10FFFF), else 0.
       ASCII is skipped eight bytes at a time. */
    static int sse_utf8_valid(const unsigned char* s, Py_ssize_t n) {
        Py_ssize_t i = 0;
        while (i < n) {
            unsigned char c = s[i], c1;
            if (c < 0x80) {
                uint64_t w;
                i++;
                while (i + 8 <= n) {
                    memcpy(&w, s + i, 8);
                    if (w & 0x8080808080808080ULL) break;
                    i += 8;
                }
                continue;
            }
            if (c < 0xC2 || c > 0xF4) return 0;  /* continuation, overlong C0/C1, past F4 */
            if (i + 1 >= n) return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80) return 0;
            if (c < 0xE0) { i += 2; continue; }
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)
                    || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
                return 0;  /* overlong, surrogate, past U+10FFFF */
            if (i + 2 >= n || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c < 0xF0) { i += 3; continue; }
            if (i + 3 >= n || (s[i + 3] & 0xC0) != 0x80) return 0;
            i += 4;
        }
        return 1;
    }
    """
    bint sse_utf8_valid(const unsigned char* s, Py_ssize_t n)

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_Check(object o)
    bint PyDict_Check(object o)
    bint PyTuple_Check(object o)
    bint PyTuple_CheckExact(object o)
    Py_ssize_t PyTuple_GET_SIZE(object o)

cdef PyTypeObject* EVENT_TYPE = <PyTypeObject*>Event
cdef str MESSAGE = "message"
cdef str EMPTY = ""
cdef bytes BOM_B = BOM
cdef long long DEFAULT_MAX = DEFAULT_MAX_EVENT_SIZE

cdef enum:
    LF = 10
    CR = 13


# -- a growable C byte buffer ----------------------------------------------------

# A decoder's buffers come from PyMem_* (not libc malloc), so tracemalloc
# sees them like the Python twin's (tests/test_sse_memory.py measures both).
# An encoder's output buffer lives for one call and is copied out once:
# libc malloc/realloc, measurably faster for the multi-megabyte batches of
# encode_events (large reallocs move pages instead of copying).

cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap
    bint borrowed  # p is the caller's (stack) memory: copy out on growth, never free
    bint doubling  # an encoder's output: libc memory, grown by doubling, freed soon


#: a decoder buffer larger than this is freed, not kept, once its line or
#: event is done: one large event does not pin its memory for the stream's life
cdef Py_ssize_t KEEP_AT_MOST = 1 << 16


cdef int buf_reserve(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t want = b.n + extra
    cdef Py_ssize_t cap
    cdef char* p
    if want <= b.cap:
        return 0
    if b.doubling:
        cap = b.cap * 2 if b.cap else 256
        while cap < want:
            cap *= 2
    elif want <= b.cap + (b.cap >> 3):
        # a decoder buffer grows by an eighth (CPython's bytearray rule): cost
        # stays linear however small the feeds, and what it holds stays
        # within received + received/8 + a constant
        cap = want + (want >> 3) + 64
    else:
        cap = want  # a big jump (one large read): exactly what is needed
    if b.borrowed:
        p = <char*>(malloc(cap) if b.doubling else PyMem_Malloc(cap))
        if p != NULL and b.n:
            memcpy(p, b.p, b.n)
        b.borrowed = False
    elif b.doubling:
        p = <char*>realloc(b.p, cap)
    else:
        p = <char*>PyMem_Realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef inline void buf_release(Buf* b):
    """Free a (decoder) buffer: it is empty from now on."""
    PyMem_Free(b.p)
    b.p = NULL
    b.n = b.cap = 0


cdef inline void buf_done(Buf* b):
    """Empty a decoder buffer whose line or event is done; free it if large."""
    b.n = 0
    if b.cap > KEEP_AT_MOST:
        buf_release(b)


cdef inline int buf_add(Buf* b, const char* s, Py_ssize_t k) except -1:
    if b.n + k > b.cap:
        buf_reserve(b, k)
    if k:
        memcpy(b.p + b.n, s, k)
    b.n += k
    return 0


cdef inline int buf_byte(Buf* b, char c) except -1:
    if b.n + 1 > b.cap:
        buf_reserve(b, 1)
    b.p[b.n] = c
    b.n += 1
    return 0


cdef inline str decode(const char* s, Py_ssize_t k):
    if k == 0:
        return EMPTY
    return PyUnicode_DecodeUTF8(s, k, "replace")


# -- decoding ------------------------------------------------------------------------

cdef class SSEDecoder:
    """Incremental ``text/event-stream`` parser (WHATWG HTML §9.2.6).

    See ``streamcore.sse.SSEDecoder`` for the documentation; this is the
    compiled twin of ``streamcore.sse._py.SSEDecoder``.
    """

    cdef long long _max_event  # -1: no limit
    cdef long long _max_line
    cdef object _trace
    cdef Buf _line  # the line being received (no terminator yet)
    cdef long long _line_start  # stream offset of its first byte
    cdef bint _skip_lf  # the last byte seen was a CR that ended a line
    cdef object _head  # bytes at stream start until the BOM is decided; None after
    cdef Buf _data  # data buffer: each data line's value followed by LF
    cdef Buf _type  # event type buffer
    cdef str _id  # last event ID buffer (persists across events)
    cdef Py_ssize_t _id_size
    cdef str _last_event_id
    cdef object _retry
    cdef long long _pos
    cdef long long _events
    cdef long long _feeds
    cdef object _error
    cdef bint _done

    def __cinit__(self):
        self._line.p = NULL
        self._line.n = self._line.cap = 0
        self._line.borrowed = self._line.doubling = False
        self._data.p = NULL
        self._data.n = self._data.cap = 0
        self._data.borrowed = self._data.doubling = False
        self._type.p = NULL
        self._type.n = self._type.cap = 0
        self._type.borrowed = self._type.doubling = False

    def __dealloc__(self):
        buf_release(&self._line)
        buf_release(&self._data)
        buf_release(&self._type)

    cdef void _release(self):
        """Drop the pending line, data and event type (end or error)."""
        buf_release(&self._line)
        buf_release(&self._data)
        buf_release(&self._type)

    def __init__(self, *, max_event_size=DEFAULT_MAX_EVENT_SIZE, max_line_size=None,
                 last_event_id="", retry=None, trace=None):
        self._max_event = check_limit("max_event_size", max_event_size)
        self._max_line = check_limit("max_line_size", max_line_size)
        self._trace = safe_trace(trace)
        self._line_start = 0
        self._skip_lf = False
        self._head = b""
        # reconnection state, seeded by a client that reconnects (browsers do)
        seed_id, seed_retry = check_seed(last_event_id, retry)
        self._id = seed_id
        self._id_size = len((<str>seed_id).encode("utf-8"))
        self._last_event_id = seed_id
        self._retry = seed_retry
        self._pos = 0
        self._events = 0
        self._feeds = 0
        self._error = None
        self._done = False

    @property
    def last_event_id(self):
        """The last event ID string: send it as ``Last-Event-ID`` when reconnecting."""
        return self._last_event_id

    @property
    def retry(self):
        """The reconnection time in milliseconds from the last valid ``retry`` field."""
        return self._retry

    @property
    def stats(self):
        """A snapshot of the running totals (see ``SSEStats``)."""
        return SSEStats(self._pos, self._events, self._feeds)

    def feed(self, data):
        """Parse the next bytes of the stream; return the events they complete."""
        cdef Py_buffer view
        cdef list events
        cdef long long base
        cdef bytes held, head, joined
        cdef Py_ssize_t need
        if self._done:
            raise StateError("SSEDecoder.feed() called after eof()")
        if self._error is not None:
            raise raise_again(self._error)
        if not PyBytes_CheckExact(data):
            # the shared rule: any buffer as flat bytes (a copy only for a
            # non-contiguous view), TypeError for anything else
            data = byte_view(data)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            base = self._pos
            self._pos = base + view.len
            self._feeds += 1
            events = []
            if self._head is not None:
                # Stream start: strip a BOM once (slow path, Python objects).
                held = self._head
                need = 3 - len(held)
                joined = PyBytes_FromStringAndSize(<char*>view.buf, view.len)
                head = held + joined[:need]
                if len(head) < 3 and BOM_B.startswith(head):
                    self._head = head
                    return events
                self._head = None
                if head == BOM_B:
                    joined = joined[need:]
                    base = 3
                else:
                    joined = held + joined
                    base = 0
                self._run(<const unsigned char*>PyBytes_AS_STRING(joined),
                          PyBytes_GET_SIZE(joined), base, events)
            else:
                self._run(<const unsigned char*>view.buf, view.len, base, events)
        except ProtocolError as exc:
            self._error = stored_error(exc, events)
            self._release()  # nothing of the stream is needed again
            raise
        finally:
            PyBuffer_Release(&view)
        return events

    def eof(self):
        """End of the stream; an incomplete event is discarded."""
        if self._done:
            raise StateError("SSEDecoder.eof() called twice")
        self._done = True
        self._release()
        if self._error is not None:
            raise raise_again(self._error)

    cdef int _run(self, const unsigned char* p, Py_ssize_t n, long long base,
                  list events) except -1:
        cdef Py_ssize_t i = 0, j, total
        cdef Py_ssize_t next_lf = -1, next_cr = -1  # next LF / CR at or after i (n: none)
        cdef const unsigned char* r
        if self._skip_lf and n:
            self._skip_lf = False
            if p[0] == LF:  # the LF of a CRLF cut between two feeds
                i = 1
        while i < n:
            # The end of the line: the nearer of the next LF and the next CR.
            # Each is searched with memchr only once it has been passed, so
            # the buffer is scanned at most twice in all (once with no CR).
            if next_lf < i:
                r = <const unsigned char*>memchr(p + i, LF, n - i)
                next_lf = n if r == NULL else r - p
            if next_cr < i:
                r = <const unsigned char*>memchr(p + i, CR, n - i)
                next_cr = n if r == NULL else r - p
            j = next_lf if next_lf < next_cr else next_cr
            if self._line.n == 0:
                self._line_start = base + i
            total = self._line.n + (j - i)
            if (self._max_line >= 0 and total > self._max_line) or (
                self._max_event >= 0
                and self._data.n + self._type.n + self._id_size + total > self._max_event
            ):
                self._check(total)
            if j == n:
                buf_add(&self._line, <const char*>p + i, n - i)
                return 0
            if self._line.n:
                buf_add(&self._line, <const char*>p + i, j - i)
                self._process(<const unsigned char*>self._line.p, self._line.n, events)
                buf_done(&self._line)
            else:
                self._process(p + i, j - i, events)
            i = j + 1
            if p[j] == CR:
                if i < n:
                    if p[i] == LF:
                        i += 1
                else:
                    self._skip_lf = True
        return 0

    cdef int _check(self, Py_ssize_t size) except -1:
        # same rule as _py.SSEDecoder._check
        cdef long long start = self._line_start
        cdef long long line_at = -1, event_at = -1
        cdef long long committed = self._data.n + self._type.n + self._id_size
        if self._max_line >= 0 and size > self._max_line:
            line_at = start + self._max_line
        if self._max_event >= 0 and committed + size > self._max_event:
            event_at = start + self._max_event - committed
        if line_at >= 0 and (event_at < 0 or line_at <= event_at):
            raise line_limit_error(self._max_line, line_at)
        if event_at >= 0:
            raise event_limit_error(self._max_event, event_at)
        return 0

    cdef int _process(self, const unsigned char* s, Py_ssize_t k, list events) except -1:
        """Interpret one complete line (WHATWG §9.2.6, "process the field")."""
        cdef const unsigned char* colon
        cdef const unsigned char* v
        cdef Py_ssize_t name_len, vlen, d
        cdef long long r
        cdef object ev
        cdef str etype
        if k == 0:
            # blank line: dispatch the event; the last event ID string takes
            # the buffer's value even when nothing is dispatched
            self._last_event_id = self._id
            if self._data.n:
                etype = MESSAGE if self._type.n == 0 else decode(self._type.p, self._type.n)
                # the final LF of the data buffer is left out
                ev = sse_make_event(EVENT_TYPE, decode(self._data.p, self._data.n - 1),
                                    etype, self._id)
                events.append(ev)
                self._events += 1
                buf_done(&self._data)
                if self._trace is not None:
                    buf_done(&self._type)
                    self._trace(ev)
            buf_done(&self._type)
            return 0
        if s[0] == 58:  # ':' a comment line
            return 0
        colon = <const unsigned char*>memchr(s, 58, k)
        if colon == NULL:
            name_len = k
            v = s + k
            vlen = 0
        else:
            name_len = colon - s
            v = colon + 1
            vlen = k - name_len - 1
            if vlen and v[0] == 32:  # one leading space removed
                v += 1
                vlen -= 1
        if name_len == 4:
            if memcmp(s, b"data", 4) == 0:
                buf_add(&self._data, <const char*>v, vlen)
                buf_byte(&self._data, LF)
        elif name_len == 2:
            if s[0] == 105 and s[1] == 100:  # "id"
                if vlen == 0 or memchr(v, 0, vlen) == NULL:  # NUL: ignored
                    self._id = decode(<const char*>v, vlen)
                    self._id_size = vlen
        elif name_len == 5:
            if memcmp(s, b"event", 5) == 0:
                self._type.n = 0
                buf_add(&self._type, <const char*>v, vlen)
            elif memcmp(s, b"retry", 5) == 0:
                # only ASCII digits; short values parsed here, long ones
                # by the shared cold path
                if 0 < vlen <= 18:
                    r = 0
                    for d in range(vlen):
                        if v[d] < 48 or v[d] > 57:
                            return 0
                        r = r * 10 + (v[d] - 48)
                    self._retry = r
                elif vlen > 18:
                    value = parse_retry(PyBytes_FromStringAndSize(<const char*>v, vlen))
                    if value is not None:
                        self._retry = value
        return 0


# -- encoding ------------------------------------------------------------------------

cdef struct Field:
    const char* p
    Py_ssize_t n


cdef inline object utf8(object text, Field* f):
    """Point ``f`` at the UTF-8 of ``text`` (an exact str).  Returns the
    bytes object that owns the memory (None for ASCII, read in place)."""
    cdef bytes owner
    if PyUnicode_IS_COMPACT_ASCII(text):
        f.p = <const char*>PyUnicode_DATA(text)
        f.n = PyUnicode_GET_LENGTH(text)
        return None
    owner = PyUnicode_AsUTF8String(text)  # UnicodeEncodeError on lone surrogates
    f.p = PyBytes_AS_STRING(owner)
    f.n = PyBytes_GET_SIZE(owner)
    return owner


cdef inline bint has_line_end(Field* f, bint nul):
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(f.n):
        c = <unsigned char>f.p[i]
        if c <= CR and (c == LF or c == CR or (nul and c == 0)):
            return True
    return False


cdef inline int write_field(Buf* w, const char* prefix, Py_ssize_t plen, Field* f) except -1:
    """``prefix + value + LF`` for a one-line field (event, id)."""
    buf_reserve(w, plen + f.n + 1)
    memcpy(w.p + w.n, prefix, plen)
    memcpy(w.p + w.n + plen, f.p, f.n)
    w.n += plen + f.n + 1
    w.p[w.n - 1] = LF
    return 0


cdef int write_lines(Buf* w, const char* prefix, Py_ssize_t plen, Field* f,
                     bint comment) except -1:
    """``prefix + line + LF`` for each line of ``f`` split on CRLF, CR, LF."""
    cdef Py_ssize_t i = 0, j, n = f.n
    cdef const unsigned char* s = <const unsigned char*>f.p
    cdef unsigned char c
    while True:
        j = i
        while j < n:
            c = s[j]
            if c <= CR and (c == LF or c == CR):
                break
            j += 1
        if comment and j == i:
            buf_byte(w, 58)  # an empty comment line is ":" alone
        else:
            buf_reserve(w, plen + (j - i) + 1)
            memcpy(w.p + w.n, prefix, plen)
            memcpy(w.p + w.n + plen, s + i, j - i)
            w.n += plen + (j - i)
        buf_byte(w, LF)
        if j == n:
            return 0
        i = j + 1
        if s[j] == CR and i < n and s[i] == LF:
            i += 1


cdef inline bint ascii_field(object text, Field* f, bint nonempty):
    """Point ``f`` at ``text`` in place if it is an exact ASCII str (and not
    empty, if asked): the hot path of ``event`` and ``id``.  False sends the
    caller to ``put_event`` / ``put_id``, which check everything."""
    if not PyUnicode_CheckExact(text) or not PyUnicode_IS_COMPACT_ASCII(text):
        return False
    f.p = <const char*>PyUnicode_DATA(text)
    f.n = PyUnicode_GET_LENGTH(text)
    return f.n > 0 or not nonempty


cdef int put_event(Buf* w, object event) except -1:
    """``event: <type>`` and LF, checked: the cold path (non-ASCII, a str
    subclass read as its content, or an error to raise).  The argument is
    never rebound, so the hot path's callers take no reference."""
    cdef Field f
    cdef object owner
    if not PyUnicode_CheckExact(event):
        return put_event(w, as_text(event, "event"))
    if PyUnicode_GET_LENGTH(event) == 0 or not PyUnicode_IS_COMPACT_ASCII(event):
        check_event_type(event)  # raises, or passes a non-ASCII type
    owner = utf8(event, &f)
    if has_line_end(&f, False):
        check_event_type(event)
    return write_field(w, b"event: ", 7, &f)


cdef int put_id(Buf* w, object id) except -1:
    """``id: <id>`` and LF, checked, as ``put_event``."""
    cdef Field f
    cdef object owner
    if not PyUnicode_CheckExact(id):
        return put_id(w, as_text(id, "id"))
    if not PyUnicode_IS_COMPACT_ASCII(id):
        check_id(id)
    owner = utf8(id, &f)
    if has_line_end(&f, True):
        check_id(id)
    return write_field(w, b"id: ", 4, &f)


cdef inline bint bytes_field(object raw, Field* f):
    """Point ``f`` at the bytes of ``raw`` (exact bytes) if they are UTF-8;
    False (and the slow path raises the error) if not."""
    f.p = PyBytes_AS_STRING(raw)
    f.n = PyBytes_GET_SIZE(raw)
    return sse_utf8_valid(<const unsigned char*>f.p, f.n)


cdef int write_text(Buf* w, const char* prefix, Py_ssize_t plen, object value,
                    bint comment, str what) except -1:
    """The lines of a ``data`` or ``comment`` value that is not an exact str:
    a bytes-like object, validated as UTF-8 and split in place (no decode),
    or a str subclass, read as its content (``as_text``)."""
    cdef Field f
    cdef Py_buffer view
    cdef object owner
    if PyBytes_CheckExact(value):
        f.p = PyBytes_AS_STRING(value)
        f.n = PyBytes_GET_SIZE(value)
        if not sse_utf8_valid(<const unsigned char*>f.p, f.n):
            check_utf8(value, what)  # raises the shared ValueError
        return write_lines(w, prefix, plen, &f, comment)
    if PyUnicode_Check(value):
        text = as_text(value, what)
        owner = utf8(text, &f)
        return write_lines(w, prefix, plen, &f, comment)
    try:
        owner = byte_view(value)  # bytearray, or a flat view of any buffer
    except TypeError:
        field_utf8(value, what)  # raises the shared TypeError
        raise
    PyObject_GetBuffer(owner, &view, PyBUF_SIMPLE)
    try:
        f.p = <const char*>view.buf
        f.n = view.len
        if not sse_utf8_valid(<const unsigned char*>f.p, f.n):
            check_utf8(owner, what)
        write_lines(w, prefix, plen, &f, comment)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef bytes take(Buf* w):
    cdef bytes out = PyBytes_FromStringAndSize(w.p, w.n)
    return out


def encode_event(data=None, *, event=None, id=None, retry=None, comment=None):
    """One event in ``text/event-stream`` form (see ``streamcore.sse.encode_event``)."""
    cdef Buf w
    cdef Field f
    cdef object owner
    cdef char small[512]  # most events fit: no heap allocation for them
    w.p = small
    w.n = 0
    w.cap = sizeof(small)
    w.borrowed = w.doubling = True
    try:
        if comment is not None:
            if PyUnicode_CheckExact(comment):
                owner = utf8(comment, &f)
                write_lines(&w, ": ", 2, &f, True)
            else:
                write_text(&w, ": ", 2, comment, True, "comment")
        if event is not None:
            if ascii_field(event, &f, True) and not has_line_end(&f, False):
                write_field(&w, b"event: ", 7, &f)
            else:
                put_event(&w, event)  # raises, or a non-ASCII type or str subclass
        if id is not None:
            if ascii_field(id, &f, False) and not has_line_end(&f, True):
                write_field(&w, b"id: ", 4, &f)
            else:
                put_id(&w, id)
        if retry is not None:
            check_retry(retry)
            owner = b"retry: %d\n" % retry
            buf_add(&w, PyBytes_AS_STRING(owner), PyBytes_GET_SIZE(owner))
        if data is not None:
            if PyUnicode_CheckExact(data):
                owner = utf8(data, &f)
                write_lines(&w, "data: ", 6, &f, False)
            elif PyBytes_CheckExact(data) and bytes_field(data, &f):
                write_lines(&w, "data: ", 6, &f, False)  # UTF-8 bytes, split in place
            else:
                write_text(&w, "data: ", 6, data, False, "data")
        buf_byte(&w, LF)
        return take(&w)
    finally:
        if not w.borrowed:
            free(w.p)


def encode_events(events, *, last_event_id=""):
    """Many events at once, one bytes out (see ``streamcore.sse.encode_events``)."""
    cdef Buf w
    cdef Field f
    cdef object owner, item, data, etype, eid, retry, comment
    cdef bint block  # the item came through unpack_item: it may carry retry, no data
    cdef bint has_data = False  # set with block (read only then)
    cdef object current = last_event_id
    if not PyUnicode_CheckExact(current):
        current = as_text(current, "last_event_id")
    w.p = NULL
    w.n = w.cap = 0
    w.borrowed = False
    w.doubling = True
    try:
        buf_reserve(&w, 1 << 16)
        for item in events:
            if ((PyTuple_CheckExact(item) or Py_TYPE(item) == EVENT_TYPE)
                    and PyTuple_GET_SIZE(item) == 3):
                data = <object>PyTuple_GET_ITEM(item, 0)
                etype = <object>PyTuple_GET_ITEM(item, 1)
                eid = <object>PyTuple_GET_ITEM(item, 2)
                block = False
            else:
                # a mapping (retry, comment, id or data alone), or any triple
                data, etype, eid, retry, comment, has_data = unpack_item(item, current)
                block = True
                if comment is not None:
                    if PyUnicode_CheckExact(comment):
                        owner = utf8(comment, &f)
                        write_lines(&w, ": ", 2, &f, True)
                    else:
                        write_text(&w, ": ", 2, comment, True, "comment")
            if not PyUnicode_CheckExact(etype):
                etype = as_text(etype, "event")
            if etype is not MESSAGE and etype != MESSAGE:
                if ascii_field(etype, &f, True) and not has_line_end(&f, False):
                    write_field(&w, b"event: ", 7, &f)
                else:
                    put_event(&w, etype)
            if not PyUnicode_CheckExact(eid):
                eid = as_text(eid, "id")
            if eid is not current and eid != current:
                if ascii_field(eid, &f, False) and not has_line_end(&f, True):
                    write_field(&w, b"id: ", 4, &f)
                else:
                    put_id(&w, eid)
                current = eid
            if block and retry is not None:
                check_retry(retry)
                owner = b"retry: %d\n" % retry
                buf_add(&w, PyBytes_AS_STRING(owner), PyBytes_GET_SIZE(owner))
            if not block or has_data:
                if PyUnicode_CheckExact(data):
                    owner = utf8(data, &f)
                    write_lines(&w, "data: ", 6, &f, False)
                elif PyBytes_CheckExact(data) and bytes_field(data, &f):
                    write_lines(&w, "data: ", 6, &f, False)
                else:
                    write_text(&w, "data: ", 6, data, False, "data")
            buf_byte(&w, LF)
        return take(&w)
    finally:
        free(w.p)


def keepalive(comment=""):
    """A comment-only block that keeps an idle stream open (see ``streamcore.sse.keepalive``)."""
    return encode_event(comment=comment)
