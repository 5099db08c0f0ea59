# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""WebSocket frame codec, compiled twin of ``_py.py`` (read that first).

Same classes, same state between calls, same order of checks; what differs
is only how bytes are touched: headers are parsed from a ``const unsigned
char*``, payloads are unmasked straight into the ``bytes`` object that
becomes the event's data (one pass over the payload), UTF-8 is validated by
a C state machine with an 8-bytes-at-a-time ASCII path, and events are built
with one allocation each.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.memoryview cimport PyMemoryView_FromObject
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE, _PyBytes_Resize
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.string cimport memcpy

import os

from .._contract import byte_view, raise_again, stored_error
from .._errors import LimitError, ProtocolError
from ._common import VIEWS_WRITABLE as _VIEWS_WRITABLE
from ._common import (
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
    err_inflated_too_big,
    inflate_limit,
    err_frame_too_big,
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
    register_mask_pool,
)
from ._connection import ConnectionBase

__all__ = ["Connection", "Encoder", "Receiver", "Utf8Validator", "apply_mask"]

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #define sc_bytes_ptr(o) PyBytes_AS_STRING(o)
    #define sc_bytes_size(o) PyBytes_GET_SIZE(o)
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif

    /* XOR n bytes of src with the 4-byte key, starting at key byte `phase`,
       into dst (which may be src).  Byte head until dst is 8-byte aligned,
       then wide words (64 bytes per iteration: AVX2 when the CPU has it,
       else SSE2, else 8-byte words the compiler vectorises), then the byte
       tail. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define SC_HAVE_AVX2_DISPATCH 1
    __attribute__((target("avx2")))
    static Py_ssize_t sc_mask_avx2(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                                   uint32_t r)
    {
        Py_ssize_t i = 0;
        __m256i m = _mm256_set1_epi32((int)r);
        for (; i + 64 <= n; i += 64) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
            _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, m));
            _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, m));
        }
        return i;
    }
    static int sc_avx2 = -1;
    #endif

    static inline void sc_mask_copy(unsigned char *dst, const unsigned char *src,
                                    Py_ssize_t n, const unsigned char *key, int phase)
    {
        unsigned char k[8];
        Py_ssize_t i = 0;
        int j;
        for (j = 0; j < 4; j++) k[j] = k[j + 4] = key[(phase + j) & 3];
        while (i < n && (((uintptr_t)(dst + i)) & 7)) { dst[i] = src[i] ^ k[i & 3]; i++; }
        if (n - i >= 8) {
            /* the key as it lines up at byte i; both halves of the 64-bit
               word are equal, so this is the same on either endianness */
            uint32_t r;
            uint64_t m;
            memcpy(&r, k + (i & 3), 4);
            m = ((uint64_t)r << 32) | r;
    #ifdef SC_HAVE_AVX2_DISPATCH
            if (n - i >= 256) {
                if (sc_avx2 < 0) {
                    __builtin_cpu_init();
                    sc_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
                }
                if (sc_avx2) i += sc_mask_avx2(dst + i, src + i, n - i, r);
            }
    #endif
    #if defined(__SSE2__)
            {
                __m128i mm = _mm_set1_epi32((int)r);
                for (; i + 64 <= n; i += 64) {
                    __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
                    __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
                    __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
                    __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
                    _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, mm));
                    _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, mm));
                    _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, mm));
                    _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, mm));
                }
            }
    #endif
            for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy(&w, src + i, 8);
                w ^= m;
                memcpy(dst + i, &w, 8);
            }
        }
        for (; i < n; i++) dst[i] = src[i] ^ k[i & 3];
    }

    /* Incremental strict UTF-8 (RFC 3629): the DFA of _common.utf8_scan.
       Returns the index of the first invalid byte, or -1; *pstate carries
       the state across calls.  ASCII runs go 8 bytes at a time. */
    static const unsigned char sc_lo[8] = {0, 0x80, 0x80, 0x80, 0xA0, 0x80, 0x90, 0x80};
    static const unsigned char sc_hi[8] = {0, 0xBF, 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    static const unsigned char sc_after[8] = {0, 0, 1, 2, 1, 1, 2, 2};

    static Py_ssize_t sc_utf8_scan(const unsigned char *s, Py_ssize_t n, int *pstate)
    {
        int state = *pstate;
        Py_ssize_t i = 0;
        while (i < n) {
            unsigned char b;
            if (state == 0) {
                while (i + 8 <= n) {
                    uint64_t w;
                    memcpy(&w, s + i, 8);
                    if (w & 0x8080808080808080ULL) break;
                    i += 8;
                }
                while (i < n && s[i] < 0x80) i++;
                if (i >= n) break;
                b = s[i];
                /* whole sequences while 4 bytes are in hand: same verdicts,
                   same indexes as the byte-at-a-time DFA below */
                if (i + 4 <= n) {
                    unsigned char c1 = s[i + 1];
                    if (b >= 0xC2 && b <= 0xDF) {
                        if ((c1 & 0xC0) != 0x80) { *pstate = 1; return i + 1; }
                        i += 2;
                        continue;
                    }
                    if (b >= 0xE0 && b <= 0xEF) {
                        int st = b == 0xE0 ? 4 : b == 0xED ? 5 : 2;
                        if (c1 < sc_lo[st] || c1 > sc_hi[st]) { *pstate = st; return i + 1; }
                        if ((s[i + 2] & 0xC0) != 0x80) { *pstate = 1; return i + 2; }
                        i += 3;
                        continue;
                    }
                    if (b >= 0xF0 && b <= 0xF4) {
                        int st = b == 0xF0 ? 6 : b == 0xF4 ? 7 : 3;
                        if (c1 < sc_lo[st] || c1 > sc_hi[st]) { *pstate = st; return i + 1; }
                        if ((s[i + 2] & 0xC0) != 0x80) { *pstate = 2; return i + 2; }
                        if ((s[i + 3] & 0xC0) != 0x80) { *pstate = 1; return i + 3; }
                        i += 4;
                        continue;
                    }
                    *pstate = 0;
                    return i;
                }
                if (b >= 0xC2 && b <= 0xDF) state = 1;
                else if (b == 0xE0) state = 4;
                else if (b == 0xED) state = 5;
                else if (b >= 0xE1 && b <= 0xEF) state = 2;
                else if (b == 0xF0) state = 6;
                else if (b == 0xF4) state = 7;
                else if (b >= 0xF1 && b <= 0xF3) state = 3;
                else { *pstate = state; return i; }
                i++;
            } else {
                b = s[i];
                if (b < sc_lo[state] || b > sc_hi[state]) { *pstate = state; return i; }
                state = sc_after[state];
                i++;
            }
        }
        *pstate = state;
        return -1;
    }

    /* Strict decode; None (not an exception) when the bytes are not UTF-8. */
    static PyObject *sc_decode_utf8(const char *s, Py_ssize_t n)
    {
        PyObject *r = PyUnicode_DecodeUTF8(s, n, NULL);
        if (r == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return r;
    }

    /* Masked text, fused: unmask straight into a new ASCII str and keep it if
       every byte is ASCII (the common case: JSON), so the payload is touched
       once and no decoder runs.  None (no exception) when it is not ASCII. */
    static PyObject *sc_unmask_ascii(const unsigned char *src, Py_ssize_t n,
                                     const unsigned char *key)
    {
        PyObject *s;
        unsigned char *d;
        uint64_t acc = 0;
        Py_ssize_t i = 0;
        if (n == 0) return PyUnicode_New(0, 127);
        s = PyUnicode_New(n, 127);
        if (s == NULL) return NULL;
        d = PyUnicode_1BYTE_DATA(s);
        sc_mask_copy(d, src, n, key, 0);
        for (; i + 8 <= n; i += 8) { uint64_t w; memcpy(&w, d + i, 8); acc |= w; }
        for (; i < n; i++) acc |= d[i];
        if (acc & 0x8080808080808080ULL) {
            Py_DECREF(s);
            Py_RETURN_NONE;
        }
        return s;
    }

    /* An event: a tuple subclass instance built with one allocation. */
    static PyObject *sc_event2(PyObject *tp, PyObject *a, PyObject *b)
    {
        PyTypeObject *t = (PyTypeObject *)tp;
        PyObject *o = t->tp_alloc(t, 2);
        if (o == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(o, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(o, 1, b);
        return o;
    }

    static PyObject *sc_event1(PyObject *tp, PyObject *a)
    {
        PyTypeObject *t = (PyTypeObject *)tp;
        PyObject *o = t->tp_alloc(t, 1);
        if (o == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(o, 0, a);
        return o;
    }
    """
    void sc_mask_copy(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                      const unsigned char *key, int phase) nogil
    Py_ssize_t sc_utf8_scan(const unsigned char *s, Py_ssize_t n, int *pstate) nogil
    object sc_decode_utf8(const char *s, Py_ssize_t n)
    object sc_unmask_ascii(const unsigned char *src, Py_ssize_t n, const unsigned char *key)
    object sc_event2(object tp, object a, object b)
    char* sc_bytes_ptr(PyObject* o)
    Py_ssize_t sc_bytes_size(PyObject* o)
    object sc_event1(object tp, object a)
    bint PyUnicode_IS_ASCII(object s)

cdef enum:
    OP_CONT = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA
    # payload buffers are allocated at most this big at a time, so a header
    # announcing a huge frame (with no limit configured) allocates only as the
    # bytes arrive
    CHUNK_CAP = 16 * 1024 * 1024
    # the first payload buffer of a frame split across reads, at least
    CHUNK_MIN = 4096
    # masked text up to this size is unmasked on the stack or into its str
    STACK_TEXT = 1024

cdef object _Text = Text
cdef object _Binary = Binary
cdef str VIEWS_WRITABLE = _VIEWS_WRITABLE
cdef object _Ping = Ping
cdef object _Pong = Pong
cdef object _True = True
cdef object _False = False

# ---------------------------------------------------------------------------
# Masking (RFC 6455 §5.3)
# ---------------------------------------------------------------------------


def apply_mask(data, mask):
    """Return ``data`` XOR-ed with the 4-byte ``mask`` (RFC 6455 §5.3).

    Masking and unmasking are the same operation.  Raises ValueError when
    ``mask`` is not 4 bytes long.
    """
    cdef Py_buffer d
    cdef Py_buffer m
    cdef bytes out
    cdef Py_ssize_t n
    if type(data) is bytes and type(mask) is bytes and PyBytes_GET_SIZE(mask) == 4:
        # the common case without the buffer protocol's bookkeeping
        n = PyBytes_GET_SIZE(data)
        out = PyBytes_FromStringAndSize(NULL, n)
        sc_mask_copy(<unsigned char*>PyBytes_AS_STRING(out),
                     <const unsigned char*>PyBytes_AS_STRING(data), n,
                     <const unsigned char*>PyBytes_AS_STRING(mask), 0)
        return out
    mask = byte_view(mask)  # any buffer, as in the Python twin; lengths in bytes
    data = byte_view(data)
    PyObject_GetBuffer(mask, &m, PyBUF_SIMPLE)
    try:
        if m.len != 4:
            raise ValueError(f"mask must be 4 bytes, not {m.len}")
        PyObject_GetBuffer(data, &d, PyBUF_SIMPLE)
        try:
            out = PyBytes_FromStringAndSize(NULL, d.len)
            sc_mask_copy(<unsigned char*>PyBytes_AS_STRING(out), <const unsigned char*>d.buf,
                         d.len, <const unsigned char*>m.buf, 0)
            return out
        finally:
            PyBuffer_Release(&d)
    finally:
        PyBuffer_Release(&m)


# ---------------------------------------------------------------------------
# UTF-8 validation (RFC 3629, RFC 6455 §8.1)
# ---------------------------------------------------------------------------

cdef Py_ssize_t _pending_len(const unsigned char* s, Py_ssize_t n, int state):
    """Bytes at the end of ``s`` that start an incomplete code point."""
    cdef Py_ssize_t k = n
    if state == 0:
        return 0
    while k > 0:
        k -= 1
        if (s[k] & 0xC0) != 0x80:
            break
    return n - k


cdef class Utf8Validator:
    """Incremental strict UTF-8 validation and decoding (see the Python twin)."""

    cdef int _state
    cdef bytes _tail
    cdef bint _failed

    def __init__(self):
        self._state = 0
        self._tail = b""
        self._failed = False

    def feed(self, data):
        if self._failed:
            return None, 0
        cdef bytes buf = bytes(data)
        cdef Py_ssize_t idx = sc_utf8_scan(<const unsigned char*>PyBytes_AS_STRING(buf),
                                           PyBytes_GET_SIZE(buf), &self._state)
        if idx >= 0:
            self._failed = True
            return None, idx
        return self._complete(buf), -1

    cdef str _complete(self, bytes buf):
        # the text of every complete code point; the rest waits in _tail
        if self._tail:
            buf = self._tail + buf
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pend = _pending_len(<const unsigned char*>PyBytes_AS_STRING(buf), n,
                                            self._state)
        self._tail = buf[n - pend:] if pend else b""
        return sc_decode_utf8(PyBytes_AS_STRING(buf), n - pend)

    def finish(self):
        """True when everything fed was valid and no code point is left open."""
        return not self._failed and self._state == 0


def utf8_first_invalid(data):
    """Index of the first byte of ``data`` that makes it invalid UTF-8, -1 if
    it is valid, ``len(data)`` if it ends inside a sequence."""
    cdef Py_buffer v
    cdef int state = 0
    cdef Py_ssize_t idx
    PyObject_GetBuffer(data, &v, PyBUF_SIMPLE)
    try:
        idx = sc_utf8_scan(<const unsigned char*>v.buf, v.len, &state)
        if idx < 0 and state != 0:
            return v.len
        return idx
    finally:
        PyBuffer_Release(&v)


# ---------------------------------------------------------------------------
# Sending: frame serialization (RFC 6455 §5.2)
# ---------------------------------------------------------------------------

#: mask keys are drawn from the OS in batches of this many bytes and sliced
MASK_BATCH = 4096


cdef class Encoder:
    """Serialize frames for one side of a connection (see the Python twin)."""

    def forget_keys(self):
        """Drop the batch of mask keys (called in a child after os.fork())."""
        self._pool = b""
        self._pos = 0

    cdef bint _client
    cdef bytes _pool
    cdef Py_ssize_t _pos
    cdef object __weakref__
    cdef readonly long long bytes_out
    cdef readonly long long frames_out
    cdef readonly long long messages_out

    def __init__(self, bint client):
        self._client = client
        self._pool = b""
        self._pos = 0
        if client:
            register_mask_pool(self)  # a forked child draws its own keys
        self.bytes_out = 0
        self.frames_out = 0
        self.messages_out = 0

    cdef bytes _build(self, int b0, const unsigned char* src, Py_ssize_t n):
        cdef Py_ssize_t hl = 2
        cdef unsigned char* out
        cdef const unsigned char* key
        cdef bytes frame
        cdef int i
        if n >= 65536:
            hl = 10
        elif n >= 126:
            hl = 4
        if self._client:
            hl += 4
        frame = PyBytes_FromStringAndSize(NULL, hl + n)
        out = <unsigned char*>PyBytes_AS_STRING(frame)
        out[0] = <unsigned char>b0
        # §5.2: the minimal length encoding: 7 bits, or 126 + 16 bits, or 127 + 64 bits
        if n < 126:
            out[1] = <unsigned char>n
        elif n < 65536:
            out[1] = 126
            out[2] = <unsigned char>(n >> 8)
            out[3] = <unsigned char>n
        else:
            out[1] = 127
            for i in range(8):
                out[2 + i] = <unsigned char>((<unsigned long long>n) >> (56 - 8 * i))
        if self._client:
            out[1] |= 0x80
            if self._pos + 4 > PyBytes_GET_SIZE(self._pool):
                self._pool = os.urandom(MASK_BATCH)
                self._pos = 0
            key = <const unsigned char*>PyBytes_AS_STRING(self._pool) + self._pos
            self._pos += 4
            memcpy(out + hl - 4, key, 4)
            sc_mask_copy(out + hl, src, n, key, 0)
        elif n:
            memcpy(out + hl, src, n)
        self.bytes_out += hl + n
        self.frames_out += 1
        return frame

    def frame(self, int opcode, payload, bint fin=True, bint rsv1=False):
        """One frame carrying ``payload`` (masked when we are the client)."""
        cdef Py_buffer v
        cdef int b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        PyObject_GetBuffer(payload, &v, PyBUF_SIMPLE)
        try:
            out = self._build(b0, <const unsigned char*>v.buf, v.len)
        finally:
            PyBuffer_Release(&v)
        if fin and opcode < 8:
            self.messages_out += 1
        return out

    def text(self, text):
        """A whole text message in one frame (a str subclass: the text it holds)."""
        cdef Py_ssize_t n
        cdef const char* s
        cdef bytes encoded
        if type(text) is not str:
            text = exact_text(text)
        if PyUnicode_IS_ASCII(text):
            # the UTF-8 of an ASCII str is its own buffer: no encoded copy
            s = PyUnicode_AsUTF8AndSize(text, &n)
            out = self._build(0x80 | OP_TEXT, <const unsigned char*>s, n)
        else:
            # a temporary copy, rather than the UTF-8 cache PyUnicode_AsUTF8
            # would attach to the str for as long as it lives
            encoded = text.encode("utf-8")
            out = self._build(0x80 | OP_TEXT, <const unsigned char*>PyBytes_AS_STRING(encoded),
                              PyBytes_GET_SIZE(encoded))
        self.messages_out += 1
        return out

    def count_message(self, long long nbytes):
        """Count a whole message's frame framed elsewhere (a Prepared one)."""
        self.bytes_out += nbytes
        self.frames_out += 1
        self.messages_out += 1


# ---------------------------------------------------------------------------
# Receiving
# ---------------------------------------------------------------------------


cdef class Receiver:
    """Parse the peer's frames into events (see the Python twin: the same
    steps, ``_feed``, ``_header``, ``_payload_piece``, ``_stream_piece``,
    ``_inflate``, ``_end_frame``, ``_close``)."""

    cdef bint _client
    cdef long long _max_msg
    cdef long long _max_frame
    cdef bint _assemble
    cdef object _session
    # views=True: binary payloads as memoryviews of the buffer fed (``_mv``,
    # whose memory starts at ``_base``), set during a feed only
    cdef bint _views
    cdef object _mv
    cdef const unsigned char* _base
    cdef unsigned char _hdr[14]
    cdef Py_ssize_t _hlen
    cdef long long _offset
    cdef object _error
    # the frame being received
    cdef bint _in_payload
    cdef bint _fin
    cdef bint _rsv1
    cdef int _opcode
    cdef bint _masked
    cdef unsigned char _key[4]
    cdef long long _length
    cdef long long _got
    cdef long long _payload_start
    cdef bint _stream  # a data frame delivered piece by piece (assemble=False)
    cdef long long _frame_out  # inflated bytes of this frame so far (compressed)
    cdef PyObject* _buf  # owned bytes being filled (grown in place), or NULL
    cdef Py_ssize_t _chunk_fill
    cdef list _chunks  # full chunks of a frame bigger than CHUNK_CAP
    # the data message being received
    cdef int _msg_op
    cdef bint _msg_comp
    cdef long long _msg_size
    cdef long long _msg_wire
    cdef bytearray _mbuf  # an assembled message's earlier frames (None: none yet)
    cdef int _u8state  # assembled text: the validating DFA's state
    cdef Utf8Validator _utf8  # streamed text: validates and keeps an incomplete code point
    # observability
    cdef readonly bint close_received
    cdef readonly long long bytes_in
    cdef readonly long long frames_in
    cdef readonly long long messages_in

    def __init__(self, bint client, long long max_message_size, long long max_frame_size,
                 bint assemble, session, bint views=False):
        self._client = client
        self._views = views
        self._mv = None
        self._max_msg = max_message_size
        self._max_frame = max_frame_size
        self._assemble = assemble
        self._session = session
        self._hlen = 0
        self._offset = 0
        self._error = None
        self._in_payload = False
        self._stream = False
        self._frame_out = 0
        self._buf = NULL
        self._chunks = []
        self._msg_op = 0
        self._mbuf = None
        self.close_received = False
        self.bytes_in = 0
        self.frames_in = 0
        self.messages_in = 0

    @property
    def offset(self):
        return self._offset + self._hlen

    @property
    def idle(self):
        """True between frames outside any message (a clean place to end)."""
        return not self._in_payload and self._hlen == 0 and self._msg_op == 0

    @property
    def in_message(self):
        """True from the end of a data frame with FIN=0 to the end of its message."""
        return self._msg_op != 0 and not (
            self._in_payload and (self._opcode == OP_TEXT or self._opcode == OP_BINARY))

    @property
    def error(self):
        return self._error

    def feed(self, data):
        """Parse ``data``; return the events it completes."""
        cdef Py_buffer v
        cdef list events
        if self._error is not None:
            raise raise_again(self._error)
        if self._views:
            # a server unmasks binary payloads in place: the buffer must be writable
            try:
                PyObject_GetBuffer(data, &v, PyBUF_SIMPLE if self._client else PyBUF_WRITABLE)
            except BufferError:
                raise TypeError(VIEWS_WRITABLE) from None
            self._mv = PyMemoryView_FromObject(data)
            self._base = <const unsigned char*>v.buf
        else:
            PyObject_GetBuffer(data, &v, PyBUF_SIMPLE)
        try:
            self.bytes_in += v.len
            if self.close_received:
                return []  # RFC 6455 §5.5.1: nothing after the peer's Close counts
            events = []
            try:
                self._feed(<const unsigned char*>v.buf, v.len, events)
            except ProtocolError as exc:
                self._error = stored_error(exc, events)
                raise
            return events
        finally:
            self._mv = None
            PyBuffer_Release(&v)

    cdef Py_ssize_t _header(self, const unsigned char* h, Py_ssize_t avail,
                            long long at) except -2:
        """Check and read a header at ``h``; its length, or -1 if incomplete."""
        cdef int b0 = h[0]
        cdef int b1 = h[1]
        cdef int fin = b0 & 0x80
        cdef int rsv = b0 & 0x70
        cdef int opcode = b0 & 0x0F
        cdef int masked
        cdef unsigned long long length
        cdef long long size
        cdef Py_ssize_t hlen
        cdef bint comp
        cdef int i
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
                length = (<unsigned long long>h[2] << 8) | h[3]
                if length < 126:
                    raise err_non_minimal(at + 1, length)
            else:
                length = 0
                for i in range(8):
                    length = (length << 8) | h[2 + i]
                if length >> 63:
                    raise err_top_bit(at + 1)
                if length < 65536:
                    raise err_non_minimal(at + 1, length)

        # -- limits, checked on the announced length -------------------------
        if self._max_frame >= 0 and <long long>length > self._max_frame:
            raise err_frame_too_big(at + 1, length, self._max_frame)
        if opcode < 8 and self._max_msg >= 0:
            # compressed: the wire size so far, bounded a little above the limit
            if opcode == OP_CONT:
                comp = self._msg_comp
                size = (self._msg_wire if comp else self._msg_size) + <long long>length
            else:
                comp = rsv != 0
                size = <long long>length
            if comp:
                if size > deflate_wire_limit(self._max_msg):
                    raise err_message_too_big(at + 1, size, self._max_msg)
            elif size > self._max_msg:
                raise err_message_too_big(at + 1, size, self._max_msg)
        self._fin = fin != 0
        self._rsv1 = rsv != 0
        self._opcode = opcode
        self._masked = masked != 0
        if masked:
            memcpy(self._key, h + hlen - 4, 4)
        self._length = <long long>length
        return hlen

    cdef int _feed(self, const unsigned char* p, Py_ssize_t n, list events) except -1:
        cdef long long base = self._offset + self._hlen  # stream offset of p[0]
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t hl = -1
        cdef Py_ssize_t want
        cdef Py_ssize_t take
        cdef Py_ssize_t length
        cdef bint got_header = False
        cdef int opcode
        cdef const unsigned char* src
        cdef unsigned char tmp[STACK_TEXT]
        cdef bytes payload
        cdef object text
        cdef int state

        # -- an incomplete header kept from the last call: complete it --------
        if self._hlen:
            while True:
                if self._hlen >= 2:
                    hl = self._header(self._hdr, self._hlen, self._offset)
                    if hl >= 0:
                        break
                    want = 2 + (2 if (self._hdr[1] & 0x7F) == 126 else
                                8 if (self._hdr[1] & 0x7F) == 127 else 0)
                    if self._hdr[1] & 0x80:
                        want += 4
                else:
                    want = 2
                if pos >= n:
                    return 0
                take = want - self._hlen
                if take > n - pos:
                    take = n - pos
                memcpy(self._hdr + self._hlen, p + pos, take)
                self._hlen += take
                pos += take
            self._hlen = 0
            got_header = True

        while True:
            if not got_header:
                if self._in_payload:
                    if pos >= n:
                        break
                    take = <Py_ssize_t>(self._length - self._got)
                    if take > n - pos:
                        take = n - pos
                    if self._stream:
                        self._stream_piece(p + pos, take, base + pos, events)
                        pos += take
                        if self._got == self._length:
                            self._in_payload = False
                        continue
                    self._payload_piece(p + pos, take, base + pos)
                    pos += take
                    if self._got == self._length:
                        self._in_payload = False
                        self._end_frame(events)
                        if self.close_received:
                            break
                    continue
                if n - pos < 2:
                    break
                hl = self._header(p + pos, n - pos, base + pos)
                if hl < 0:
                    break
                pos += hl
            got_header = False
            self.frames_in += 1
            opcode = self._opcode
            length = <Py_ssize_t>self._length

            # -- fast path: a whole unfragmented uncompressed message in hand --
            if self._fin and opcode != OP_CONT and opcode < 8 and not self._rsv1 and n - pos >= length:
                src = p + pos
                if opcode == OP_TEXT:
                    text = None
                    if self._masked:
                        if length <= STACK_TEXT:
                            text = sc_unmask_ascii(src, length, self._key)
                            if text is None:
                                sc_mask_copy(tmp, src, length, self._key, 0)
                                src = tmp
                        else:
                            payload = PyBytes_FromStringAndSize(NULL, length)
                            sc_mask_copy(<unsigned char*>PyBytes_AS_STRING(payload), src,
                                         length, self._key, 0)
                            src = <const unsigned char*>PyBytes_AS_STRING(payload)
                    if text is None:
                        text = sc_decode_utf8(<const char*>src, length)
                    if text is None:
                        state = 0
                        want = sc_utf8_scan(src, length, &state)
                        if want < 0:
                            raise err_utf8_incomplete(base + pos + length, "text message")
                        raise err_utf8(base + pos + want, "text message")
                    events.append(sc_event2(_Text, text, _True))
                elif self._views:
                    if self._masked:  # in place: feed() checked the buffer is writable
                        sc_mask_copy(<unsigned char*>src, src, length, self._key, 0)
                    events.append(sc_event2(_Binary, self._mv[pos:pos + length], _True))
                else:
                    payload = PyBytes_FromStringAndSize(NULL, length)
                    if self._masked:
                        sc_mask_copy(<unsigned char*>PyBytes_AS_STRING(payload), src, length,
                                     self._key, 0)
                    else:
                        memcpy(PyBytes_AS_STRING(payload), src, length)
                    events.append(sc_event2(_Binary, payload, _True))
                self.messages_in += 1
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
                self._mbuf = None
                self._u8state = 0
                self._utf8 = Utf8Validator() if opcode == OP_TEXT and not self._assemble else None
            self._stream = opcode < 8 and not self._assemble
            self._drop_buf()  # a buffered frame's bytes start afresh (streamed: none)
            self._chunk_fill = 0
            if self._chunks:
                self._chunks = []
            if opcode < 8:
                if self._msg_comp:
                    self._msg_wire += length
                else:
                    self._msg_size += length
            if length == 0:
                if self._stream:
                    self._stream_piece(p + pos, 0, base + pos, events)
                else:
                    self._end_frame(events)
                    if self.close_received:
                        break
            else:
                self._in_payload = True
        self._offset = base + pos
        if pos < n and not self.close_received:
            # an incomplete header (at most 13 bytes): keep it
            memcpy(self._hdr, p + pos, n - pos)
            self._hlen = n - pos
        return 0

    cdef int _payload_piece(self, const unsigned char* src, Py_ssize_t take,
                            long long at) except -1:
        """Unmask one piece of a buffered frame's payload into the frame's
        bytes; validate text as it arrives (fail fast)."""
        cdef Py_ssize_t room
        cdef Py_ssize_t t
        cdef Py_ssize_t idx
        cdef long long left
        cdef long long size
        cdef unsigned char* dst
        cdef bint text = (self._opcode < 8 and self._msg_op == OP_TEXT
                          and not self._msg_comp)
        cdef Py_ssize_t cap
        cdef object fresh
        while take > 0:
            # Memory grows with the bytes that arrived, never with the
            # announced length: the frame's buffer starts at twice what this
            # piece brings (at least CHUNK_MIN) and doubles in place (realloc)
            # as bytes keep coming, never past the frame's end or CHUNK_CAP; a
            # frame bigger than CHUNK_CAP continues in a list of full buffers.
            # Twice, not once: a frame split across two reads, the common
            # case, then mostly fits the first buffer and needs no realloc
            # (W2 in benchmarks/: 1 frame in 4 is split; sizing at the piece
            # itself cost ~7 % there).
            left = self._length - self._got
            if self._buf == NULL:
                size = 2 * <long long>take if 2 * take > CHUNK_MIN else CHUNK_MIN
                if size > left:
                    size = left
                if size > CHUNK_CAP:
                    size = CHUNK_CAP
                fresh = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>size)
                self._buf = <PyObject*>fresh
                Py_INCREF(fresh)  # owned through the raw pointer
                fresh = None
                self._chunk_fill = 0
            cap = sc_bytes_size(self._buf)
            if self._chunk_fill == cap:  # full, the frame goes on: grow in place
                size = 2 * <long long>cap
                if size < cap + take:
                    size = cap + take
                if size > cap + left:
                    size = cap + left
                if size > CHUNK_CAP:
                    size = CHUNK_CAP
                _PyBytes_Resize(&self._buf, <Py_ssize_t>size)
                cap = <Py_ssize_t>size
            room = cap - self._chunk_fill
            t = take if take < room else room
            dst = <unsigned char*>sc_bytes_ptr(self._buf) + self._chunk_fill
            if self._masked:
                sc_mask_copy(dst, src, t, self._key, <int>(self._got & 3))
            else:
                memcpy(dst, src, t)
            if text:
                idx = sc_utf8_scan(dst, t, &self._u8state)
                if idx >= 0:
                    raise err_utf8(at + idx, "text message")
            self._got += t
            self._chunk_fill += t
            src += t
            at += t
            take -= t
            if self._chunk_fill == CHUNK_CAP and self._got < self._length:
                self._chunks.append(self._take_buf())
        return 0

    cdef int _stream_piece(self, const unsigned char* src, Py_ssize_t take, long long at,
                           list events) except -1:
        """Deliver the piece of a streamed data frame this read brought, at
        once (see the Python twin): unmasked into the event's bytes."""
        cdef bytes piece
        cdef object data
        cdef object text = None
        cdef Utf8Validator utf8 = self._utf8
        cdef bint fin
        cdef Py_ssize_t idx
        cdef Py_ssize_t start
        if self._views and self._utf8 is None and not self._msg_comp:
            # binary, uncompressed: a view of the buffer fed, unmasked in place
            if take and self._masked:
                sc_mask_copy(<unsigned char*>src, src, take, self._key, <int>(self._got & 3))
            self._got += take
            fin = self._fin and self._got == self._length
            if fin or take:
                start = src - self._base
                events.append(sc_event2(_Binary, self._mv[start:start + take],
                                        _True if fin else _False))
            if fin:
                self._msg_op = 0
                self.messages_in += 1
            return 0
        piece = PyBytes_FromStringAndSize(NULL, take)
        data = piece
        if take:
            if self._masked:
                sc_mask_copy(<unsigned char*>PyBytes_AS_STRING(piece), src, take, self._key,
                             <int>(self._got & 3))
            else:
                memcpy(PyBytes_AS_STRING(piece), src, take)
        self._got += take
        fin = self._fin and self._got == self._length
        if self._msg_comp:
            data = self._inflate(piece, fin)
            if utf8 is not None:
                text, idx = utf8.feed(data)
                if text is None:
                    raise err_utf8(self._payload_start, "compressed text message")
                if fin and not utf8.finish():
                    raise err_utf8_incomplete(self._payload_start, "compressed text message")
        elif utf8 is not None:
            text, idx = utf8.feed(piece)
            if text is None:
                raise err_utf8(at + idx, "text message")
            if fin and not utf8.finish():
                raise err_utf8_incomplete(at + take, "text message")
        if utf8 is not None:
            if fin or len(<str>text):
                events.append(sc_event2(_Text, text, _True if fin else _False))
        elif fin or PyBytes_GET_SIZE(data):
            events.append(sc_event2(_Binary, PyMemoryView_FromObject(data) if self._views else data,
                                    _True if fin else _False))
        if fin:
            self._msg_op = 0
            self._utf8 = None
            self.messages_in += 1
        return 0

    cdef bytes _inflate(self, bytes payload, bint fin):
        """RFC 7692 §7.2.2: inflate compressed payload bytes of the current
        frame, bounded by what is left of both limits (see the Python twin)."""
        limit = inflate_limit(self._max_msg, self._msg_size, self._max_frame, self._frame_out)
        try:
            out = bytes(self._session.decompress(payload, fin, limit))
        except LimitError:
            raise err_inflated_too_big(self._payload_start, self._max_msg, self._msg_size,
                                       self._max_frame, self._frame_out) from None
        except Exception as exc:  # zlib.error and the session's errors
            raise err_deflate(exc, self._payload_start) from None
        self._msg_size += PyBytes_GET_SIZE(out)
        self._frame_out += PyBytes_GET_SIZE(out)
        return out

    cdef object _take_buf(self):
        """The frame's buffer as a bytes object the caller owns (b"" if none)."""
        if self._buf == NULL:
            return b""
        cdef object out = <object>self._buf
        Py_XDECREF(self._buf)
        self._buf = NULL
        return out

    cdef void _drop_buf(self):
        Py_XDECREF(self._buf)
        self._buf = NULL

    def __dealloc__(self):
        Py_XDECREF(self._buf)
        self._buf = NULL

    cdef int _end_frame(self, list events) except -1:
        """A buffered frame is complete: a control frame, or a frame of an
        assembled message (the message's event on its last frame)."""
        cdef int opcode = self._opcode
        cdef bytes payload
        cdef object piece
        cdef object text
        cdef bint fin = self._fin
        cdef Py_ssize_t idx
        cdef int op
        if self._chunks:
            self._chunks.append(self._take_buf())
            payload = b"".join(self._chunks)
            self._chunks = []
        else:
            payload = self._take_buf()
        if opcode >= 8:
            if opcode == OP_PING:
                events.append(sc_event1(_Ping, payload))
            elif opcode == OP_PONG:
                events.append(sc_event1(_Pong, payload))
            else:
                events.append(self._close(payload))
            return 0
        op = self._msg_op
        piece = payload
        if self._msg_comp:
            piece = self._inflate(payload, fin)
            if op == OP_TEXT:
                idx = sc_utf8_scan(<const unsigned char*>PyBytes_AS_STRING(piece),
                                   PyBytes_GET_SIZE(piece), &self._u8state)
                if idx >= 0:
                    raise err_utf8(self._payload_start, "compressed text message")
                if fin and self._u8state != 0:
                    raise err_utf8_incomplete(self._payload_start, "compressed text message")
        elif fin and op == OP_TEXT and self._u8state != 0:
            raise err_utf8_incomplete(self._payload_start + self._length, "text message")
        # one growing bytearray, never a list of pieces: a message sent in
        # a million 1-byte frames costs no more memory than one frame
        if not fin:
            if self._mbuf is None:
                self._mbuf = bytearray(piece)
            else:
                self._mbuf += piece
            return 0
        if self._mbuf is not None:
            self._mbuf += piece
            piece = bytes(self._mbuf)
            self._mbuf = None
        if op == OP_TEXT:
            text = sc_decode_utf8(PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece))
            events.append(sc_event2(_Text, text, _True))
        else:
            events.append(sc_event2(_Binary, PyMemoryView_FromObject(piece) if self._views else piece,
                                    _True))
        self._msg_op = 0
        self.messages_in += 1
        return 0

    cdef object _close(self, bytes payload):
        """Parse a Close frame's payload (RFC 6455 §5.5.1, §7.1.5, §7.1.6)."""
        cdef long long at = self._payload_start
        cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
        cdef int state = 0
        cdef Py_ssize_t idx
        if n == 0:
            code = None
            reason = ""
        elif n == 1:
            raise err_close_one_byte(at)
        else:
            code = (<const unsigned char*>PyBytes_AS_STRING(payload))[0] * 256 + \
                (<const unsigned char*>PyBytes_AS_STRING(payload))[1]
            if not close_code_is_valid(code):
                raise err_close_code(at, code)
            reason = sc_decode_utf8(PyBytes_AS_STRING(payload) + 2, n - 2)
            if reason is None:
                idx = sc_utf8_scan(<const unsigned char*>PyBytes_AS_STRING(payload) + 2, n - 2,
                                   &state)
                if idx < 0:
                    raise err_utf8_incomplete(at + n, "close reason")
                raise err_utf8(at + 2 + idx, "close reason")
        self.close_received = True
        return Close(code, reason)


class Connection(ConnectionBase):
    __doc__ = ConnectionBase.__doc__
    _Receiver = Receiver
    _Encoder = Encoder
