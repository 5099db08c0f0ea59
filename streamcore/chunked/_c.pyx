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
import atexit

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.memoryview cimport PyMemoryView_FromObject
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from . import _common as _c
from ._common import ChunkedStats, Data, EndOfMessage, Trailers
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


cdef extern from *:
    """
    /* Fast allocation of the shared chunked events.

       Data, Trailers and EndOfMessage are NamedTuple subclasses defined in
       pure Python (_common.py) and built by both twins.  Allocated through
       tp_alloc and freed by subtype_dealloc, as the SSE and WebSocket events
       are, a small Data costs ~80 % more decoding time than a cdef class
       with a freelist (docs/design.md, "Twins").  So at import this module
       gives each of the three classes (not their subclasses) a tp_dealloc
       of its own and keeps a freelist of their memory blocks, as CPython
       does for exact tuples:

       - sc_install first checks that the class adds nothing to tuple's
         layout (__slots__ = (): no __dict__, no weakref slot, no
         finalizer, generic alloc and free), so a block of it is a tuple
         block, whoever allocated it (this module, the Python twin's
         tuple.__new__, a pickle load).
       - sc_data_dealloc / sc_event1_dealloc take the fast path only for an
         instance of exactly the class, of the right length, whose items
         are the usual ones (bytes, bools, exact tuples and lists): untrack
         it from the GC, park the block on the class's list, then release
         the items.  No trashcan (the guard against deep recursion when
         freeing nested containers) is needed there: bytes hold nothing,
         and tuples and lists have their own.  A parked block keeps its
         class reference and any True, False or empty tuple it held (they
         refer to nothing and the interpreter keeps them alive anyway), so
         reusing it changes none of their refcounts: that is most of the
         saving over tp_alloc.  It is untracked, so the GC never sees it.
       - Everything else takes sc_event_dealloc_slow, which does what
         subtype_dealloc and tuple's dealloc would: run a __del__ given to
         the class after the install (the class then loses its freelist:
         a finalized block carries the GC's "finalized" bit), untrack,
         trashcan, clear the items, tp_free, release the class.  A subclass instance reaches it from
         its own subtype_dealloc (which calls the nearest base tp_dealloc
         that is not subtype_dealloc: ours), which leaves the class
         reference to us as it does to any heap-type base.
       - sc_block revives a parked block (refcount 1; its type and length
         are intact) or calls tp_alloc when the list is empty; the builders
         store the items (sc_put skips an item already there) and track it.
       - At interpreter exit (atexit) the lists are emptied and parking
         stops, so no block outlives the interpreter; the class references
         held in sc_lists are kept, since atexit handlers registered earlier
         may still decode.  The code stays mapped (CPython never unloads an
         extension module), and Cython refuses a second interpreter.
       - A free-threaded build (Py_GIL_DISABLED) keeps the plain tp_alloc /
         subtype_dealloc path: the lists rely on the GIL.
    */
    #define SC_FREE_MAX 512
    typedef struct {
        PyTypeObject *tp;   /* a strong reference, NULL until installed */
        Py_ssize_t n;       /* the tuple length of a well-formed event */
        int max;            /* 0 until installed and once parking stops */
        int count;
        PyObject *blocks[SC_FREE_MAX];
    } sc_freelist;

    static sc_freelist sc_lists[3];  /* Data, Trailers, EndOfMessage */

    /* Stop parking blocks of `tp` and free those parked. */
    static void sc_disable(PyTypeObject *tp)
    {
        int k;
        Py_ssize_t i;
        for (k = 0; k < 3; k++) {
            sc_freelist *fl = &sc_lists[k];
            if (fl->tp != tp) continue;
            fl->max = 0;
            while (fl->count > 0) {
                PyObject *op = fl->blocks[--fl->count];
                for (i = 0; i < fl->n; i++) Py_CLEAR(((PyTupleObject *)op)->ob_item[i]);
                PyObject_GC_Del(op);
                Py_DECREF(tp);  /* the parked block's class reference */
            }
        }
    }

    /* Everything but the fast paths below: an event with unusual items,
       a subclass instance (reached from its subtype_dealloc), a class
       given a __del__, a full list.  `self` is the class's own dealloc:
       the trashcan, which may defer the work and later call tp_dealloc
       again, is only used when that is it (as tuple's dealloc does). */
    static void sc_event_dealloc_slow(PyObject *op, destructor self)
    {
        int exact = Py_TYPE(op)->tp_dealloc == self;
        PyTypeObject *tp = Py_TYPE(op);
        Py_ssize_t i;
        if (exact && tp->tp_finalize != NULL) {
            /* A __del__ given to the class after the install: the class
               loses its freelist for good (a finalized object's block
               carries the GC's "finalized" bit, and must not be reused). */
            sc_disable(tp);
            if (PyObject_CallFinalizerFromDealloc(op) < 0) return;  /* resurrected */
        }
        PyObject_GC_UnTrack(op);
        Py_TRASHCAN_BEGIN(op, self)
        for (i = Py_SIZE(op) - 1; i >= 0; i--) Py_CLEAR(((PyTupleObject *)op)->ob_item[i]);
        tp->tp_free(op);
        Py_DECREF(tp);
        Py_TRASHCAN_END
    }

    static int sc_is_bool(PyObject *o) { return o == Py_True || o == Py_False; }

    /* The data item of a Data that may be parked: bytes, or (views=True)
       an exact memoryview of bytes or a bytearray, which hold nothing, so
       releasing it cannot nest into other events (no trashcan needed). */
    static int sc_plain_data(PyObject *o)
    {
        PyObject *base;
        if (PyBytes_CheckExact(o)) return 1;
        if (Py_TYPE(o) != &PyMemoryView_Type) return 0;
        base = PyMemoryView_GET_BUFFER(o)->obj;
        return base != NULL && (PyBytes_CheckExact(base) || PyByteArray_CheckExact(base));
    }

    /* views=True: mv[start:start + len], a view of the same memory, built
       without going through the generic subscript dispatch. */
    static PyObject *sc_slice(PyObject *mv, Py_ssize_t start, Py_ssize_t len)
    {
        PyObject *lo, *hi, *sl, *out;
        lo = PyLong_FromSsize_t(start);
        if (lo == NULL) return NULL;
        hi = PyLong_FromSsize_t(start + len);
        if (hi == NULL) { Py_DECREF(lo); return NULL; }
        sl = PySlice_New(lo, hi, NULL);
        Py_DECREF(lo);
        Py_DECREF(hi);
        if (sl == NULL) return NULL;
        out = Py_TYPE(mv)->tp_as_mapping->mp_subscript(mv, sl);
        Py_DECREF(sl);
        return out;
    }

    /* Data: (bytes, bool, bool, exact tuple) is parked with no trashcan
       (bytes hold nothing, a tuple has its own); it keeps its bools and an
       empty tuple, so reusing it costs no refcount changes for them. */
    static void sc_data_dealloc(PyObject *op)
    {
        PyTypeObject *tp = Py_TYPE(op);
        sc_freelist *fl = &sc_lists[0];
        PyObject **it = ((PyTupleObject *)op)->ob_item;
        PyObject *data, *exts;
        if (tp != fl->tp) {
            sc_event_dealloc_slow(op, sc_data_dealloc);
            return;
        }
        if (Py_SIZE(op) != 4 || fl->count >= fl->max || tp->tp_finalize != NULL
                || it[0] == NULL || !sc_plain_data(it[0])
                || it[1] == NULL || !sc_is_bool(it[1]) || it[2] == NULL || !sc_is_bool(it[2])
                || it[3] == NULL || !PyTuple_CheckExact(it[3])) {
            sc_event_dealloc_slow(op, sc_data_dealloc);
            return;
        }
        PyObject_GC_UnTrack(op);
        data = it[0];
        it[0] = NULL;
        exts = it[3];
        if (PyTuple_GET_SIZE(exts) != 0) it[3] = NULL; else exts = NULL;
        fl->blocks[fl->count++] = op;  /* keeps its class reference */
        /* after parking: these may run code that revives blocks */
        Py_DECREF(data);
        Py_XDECREF(exts);
    }

    /* Trailers (a list) and EndOfMessage (a tuple, kept when empty). */
    static void sc_event1_dealloc(PyObject *op)
    {
        PyTypeObject *tp = Py_TYPE(op);
        sc_freelist *fl = tp == sc_lists[1].tp ? &sc_lists[1] : tp == sc_lists[2].tp ? &sc_lists[2] : NULL;
        PyObject **it = ((PyTupleObject *)op)->ob_item;
        PyObject *item;
        if (fl == NULL) {
            sc_event_dealloc_slow(op, sc_event1_dealloc);
            return;
        }
        if (Py_SIZE(op) != 1 || fl->count >= fl->max || tp->tp_finalize != NULL || it[0] == NULL
                || !(PyList_CheckExact(it[0]) || PyTuple_CheckExact(it[0]))) {
            sc_event_dealloc_slow(op, sc_event1_dealloc);
            return;
        }
        PyObject_GC_UnTrack(op);
        item = it[0];
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 0) item = NULL; else it[0] = NULL;
        fl->blocks[fl->count++] = op;
        Py_XDECREF(item);
    }

    /* Give `type` the freelist dealloc; 0, or -1 with TypeError if its
       layout is not the plain one the deallocs assume. */
    static int sc_install(int k, PyObject *type, Py_ssize_t n)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        sc_freelist *fl = &sc_lists[k];
        if (fl->tp != NULL) return 0;
        if (!PyType_Check(type) || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)
                || !(tp->tp_flags & Py_TPFLAGS_HAVE_GC)
                || tp->tp_base == NULL || !PyType_IsSubtype(tp, &PyTuple_Type)
                || tp->tp_basicsize != PyTuple_Type.tp_basicsize
                || tp->tp_itemsize != PyTuple_Type.tp_itemsize
                || tp->tp_dictoffset != 0 || tp->tp_weaklistoffset != 0
                || tp->tp_finalize != NULL || tp->tp_del != NULL
                || tp->tp_alloc != PyType_GenericAlloc || tp->tp_free != PyObject_GC_Del
                || tp->tp_dealloc != tp->tp_base->tp_dealloc) {
            PyErr_Format(PyExc_TypeError, "%R is not a tuple subclass with __slots__ = ()", type);
            return -1;
        }
        Py_INCREF(type);
        fl->tp = tp;
        fl->n = n;
        fl->count = 0;
    #ifdef Py_GIL_DISABLED
        fl->max = 0;
    #else
        fl->max = SC_FREE_MAX;
        tp->tp_dealloc = n == 4 ? sc_data_dealloc : sc_event1_dealloc;
    #endif
        return 0;
    }

    /* Empty the lists and stop parking (at interpreter exit). */
    static void sc_close(void)
    {
        int k;
        for (k = 0; k < 3; k++) {
            if (sc_lists[k].tp != NULL) sc_disable(sc_lists[k].tp);
        }
    }

    static int sc_parked(int k) { return sc_lists[k].count; }

    /* A block for an event of list `fl`: a parked one, alive again with
       refcount 1 (its type and length are intact), or a new one from
       tp_alloc (NULL on error).  Its items are NULL or what a parked block
       keeps; *parked says which. */
    static inline PyObject *sc_block(sc_freelist *fl, int *parked)
    {
        PyObject *op;
        *parked = fl->count > 0 && fl->tp->tp_finalize == NULL;
        if (*parked) {
            op = fl->blocks[--fl->count];
    #if PY_VERSION_HEX < 0x030D0000
            _Py_NewReference(op);
    #else
            (void)PyObject_InitVar((PyVarObject *)op, fl->tp, fl->n);
            Py_DECREF(fl->tp);  /* the class reference it kept while parked */
    #endif
        } else {
            op = fl->tp->tp_alloc(fl->tp, fl->n);  /* tracked already */
            if (op == NULL) return NULL;
        }
    #if PY_VERSION_HEX >= 0x030E0000
        ((PyTupleObject *)op)->ob_hash = -1;  /* tuples cache their hash from 3.14 */
    #endif
        return op;
    }

    /* Store `o` in an item that holds NULL or what a parked block keeps
       (True, False, an empty tuple): often the very object already there,
       and then no refcount changes. */
    static inline void sc_put(PyObject **slot, PyObject *o)
    {
        PyObject *old = *slot;
        if (old != o) {
            Py_INCREF(o);
            *slot = o;
            Py_XDECREF(old);  /* True, False or (): freeing one runs no code */
        }
    }

    static PyObject *sc_data(PyObject *data, int start, int end, PyObject *exts)
    {
        int parked;
        PyObject *op = sc_block(&sc_lists[0], &parked), **items;
        if (op == NULL) return NULL;
        items = ((PyTupleObject *)op)->ob_item;
        Py_INCREF(data);
        items[0] = data;  /* parked blocks never keep it */
        sc_put(&items[1], start ? Py_True : Py_False);
        sc_put(&items[2], end ? Py_True : Py_False);
        sc_put(&items[3], exts);
        if (parked) PyObject_GC_Track(op);
        return op;
    }

    /* A Trailers (k = 1) or an EndOfMessage (k = 2). */
    static PyObject *sc_event1(int k, PyObject *a)
    {
        int parked;
        PyObject *op = sc_block(&sc_lists[k], &parked);
        if (op == NULL) return NULL;
        sc_put(&((PyTupleObject *)op)->ob_item[0], a);
        if (parked) PyObject_GC_Track(op);
        return op;
    }
    """
    int sc_install(int k, object type, Py_ssize_t n) except -1
    void sc_close()
    int sc_parked(int k)
    object sc_data(object data, bint start, bint end, object exts)
    object sc_slice(object mv, Py_ssize_t start, Py_ssize_t length)
    object sc_event1(int k, object a)

# freelist 0: Data, 1: Trailers, 2: EndOfMessage (see the comment above)
sc_install(0, Data, 4)
sc_install(1, Trailers, 1)
sc_install(2, EndOfMessage, 1)


def _close_freelists():
    """Empty the event freelists and stop filling them (run at exit)."""
    sc_close()


atexit.register(_close_freelists)


def _parked():
    """(Data, Trailers, EndOfMessage) blocks parked on the freelists, for tests."""
    return (sc_parked(0), sc_parked(1), sc_parked(2))


cdef inline object _data(bytes data, bint start, bint end, tuple exts):
    return sc_data(data, start, end, exts)


cdef inline object _data_view(object data, bint start, bint end, tuple exts):
    # views=True: a memoryview of bytes or a bytearray is parked like bytes
    return sc_data(data, start, end, exts)


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
    cdef bint _views
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
                 coalesce=False, views=False, trace=None):
        if coalesce and views:
            raise ValueError("coalesce=True and views=True cannot be combined: the pieces of "
                             "several chunks are not one span of the fed buffer")
        cdef int64_t mc = _limit(max_chunk_size, "max_chunk_size")
        self._max_line = _limit(max_line_size, "max_line_size")
        self._max_trailers = _limit(max_trailers_size, "max_trailers_size")
        self._max_chunk = MAX_SIZE if mc == NO_LIMIT else <uint64_t>mc
        self._coalesce = bool(coalesce)
        self._views = bool(views)
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
        if self._eof:
            raise StateError("feed() after eof()")
        if self._error is not None:
            raise raise_again(self._error)
        if self._state == DONE:
            raise StateError("feed() after the end of the chunked body; see unused_data")
        if type(data) is not bytes:
            data = byte_view(data)
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        cdef Py_ssize_t n = view.len
        cdef list events = []
        # views=True: data pieces are slices of one memoryview of the buffer
        cdef object mv = PyMemoryView_FromObject(data) if self._views else None
        try:
            self._run(data, mv, <const unsigned char*>view.buf, n, events)
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

    cdef int _run(self, object obj, object mv, const unsigned char* p, Py_ssize_t n,
                  list events) except -1:
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
                elif mv is not None:
                    events.append(_data_view(sc_slice(mv, pos, take), self._start, end,
                                             _parse_extensions(self._exts) if self._exts else ()))
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
                        events.append(sc_event1(1, self._headers))
                    events.append(sc_event1(2, _parse_extensions(self._exts) if self._exts else ()))
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
            self._trace(_data(bytes(data), True, True, _c.traced_extensions(extensions)))
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
            self._trace(_data(bytes(data), True, True, _c.traced_extensions(extensions)))
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
                self._trace(Trailers(_c.traced_trailers(trailers)))
            self._trace(EndOfMessage(_c.traced_extensions(extensions)))
        return out
