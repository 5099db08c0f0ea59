"""Server-Sent Events, pure-Python twin: the readable reference.

WHATWG HTML, "Server-sent events", §9.2.6 "Event stream interpretation".
``_c.pyx`` mirrors this module step by step; both must give the same
events, the same errors (class, message, offset) and the same state after
every call.

Theory of operation
-------------------
The spec decodes the byte stream as UTF-8 first and then splits the text
into lines.  We split the *bytes* into lines and decode each value on its
own, which gives the very same text: CR, LF, ``:`` and space are ASCII
bytes that never occur inside a multi-byte sequence, so a sequence cut
short by one of them is replaced by U+FFFD exactly as the stream decoder
would replace it (Python's decoder replaces each maximal invalid subpart,
the WHATWG rule).  A code point split across two feeds is never split
across lines, because the pending line keeps its bytes until the line ends.

Lines end at CRLF, LF or CR.  A CR ends its line at once (an event whose
last line ends with CR is dispatched without waiting); ``_skip_lf`` then
remembers to swallow an LF that starts the next feed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from .._contract import Buffer, byte_view, check_limit, raise_again, stored_error
from .._errors import ProtocolError, StateError
from .._trace import safe_trace
from ._common import (
    BOM,
    DEFAULT_MAX_EVENT_SIZE,
    Event,
    Item,
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

_new_event = tuple.__new__  # NamedTuple without the keyword-parsing __new__


class SSEDecoder:
    """Incremental ``text/event-stream`` parser (WHATWG HTML §9.2.6).

    Feed it the response body as it arrives; it returns the events each
    feed completes.  ``last_event_id`` and ``retry`` are the reconnection
    state a client keeps (it sends ``Last-Event-ID`` and waits ``retry`` ms).

    ``max_event_size`` bounds the bytes held for one event: the data buffer
    (each data line's value plus its LF), the event type, the id buffer and
    the line still being received.  ``max_line_size`` bounds one line.
    ``None`` means no limit.  Either raises :class:`LimitError` as soon as
    the offending byte arrives; its ``offset`` is that byte's position in
    the stream, whatever the split.
    """

    __slots__ = (
        "_max_event", "_max_line", "_trace", "_line", "_line_start", "_skip_lf",
        "_head", "_data", "_type", "_type_size", "_id", "_id_size",
        "_last_event_id", "_retry", "_pos", "_events", "_feeds", "_error", "_done",
    )

    def __init__(
        self,
        *,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        max_line_size: int | None = None,
        last_event_id: str = "",
        retry: int | None = None,
        trace: Callable[[Event], object] | None = None,
    ) -> None:
        self._max_event = check_limit("max_event_size", max_event_size)  # -1: none
        self._max_line = check_limit("max_line_size", max_line_size)
        self._trace = safe_trace(trace)
        self._line = bytearray()  # the line being received (no terminator yet)
        self._line_start = 0  # stream offset of its first byte
        self._skip_lf = False  # the last byte seen was a CR that ended a line
        self._head: bytes | None = b""  # stream start, until the BOM is decided
        # data buffer: each data line's value and its LF, as bytes, decoded
        # once at dispatch.  Bytes, not one str per line: a str costs ~50
        # bytes of header, so a peer sending "data:xy\n" lines would make
        # us hold seven times what it sent (and past max_event_size).
        self._data = bytearray()
        self._type = ""  # event type buffer
        self._type_size = 0  # its size in bytes
        # reconnection state, seeded by a client that reconnects (browsers do)
        seed_id, seed_retry = check_seed(last_event_id, retry)
        self._id = seed_id  # last event ID buffer (persists across events)
        self._id_size = len(seed_id.encode("utf-8"))  # its size in bytes
        self._last_event_id = seed_id  # last event ID string
        self._retry: int | None = seed_retry  # reconnection time (ms)
        self._pos = 0  # bytes fed so far
        self._events = 0
        self._feeds = 0
        self._error: ProtocolError | None = None
        self._done = False

    # -- reconnection state ------------------------------------------------

    @property
    def last_event_id(self) -> str:
        """The last event ID string: send it as ``Last-Event-ID`` when reconnecting."""
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The reconnection time in milliseconds from the last valid ``retry`` field."""
        return self._retry

    @property
    def stats(self) -> SSEStats:
        """A snapshot of the running totals (see :class:`SSEStats`)."""
        return SSEStats(self._pos, self._events, self._feeds)

    # -- feeding -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse the next bytes of the stream; return the events they complete.

        Raises :class:`LimitError` when a limit is exceeded, with the events
        this call decoded before it on the exception's ``events``; every
        later call raises it again (a copy whose ``events`` is empty: they
        were handed out once).  :class:`StateError` after :meth:`eof`.
        """
        if self._done:
            raise StateError("SSEDecoder.feed() called after eof()")
        if self._error is not None:
            raise raise_again(self._error)
        if type(data) is not bytes:
            # any buffer, any shape or item size (lengths count bytes); the
            # shared rule refuses str, int (bytes(5) would be five NULs)...
            data = byte_view(data)
            if type(data) is not bytes:
                data = bytes(data)  # the one copy: find/rfind/decode need bytes
        base = self._pos  # stream offset of data[0]
        self._pos = base + len(data)
        self._feeds += 1
        if self._head is not None:
            # The UTF-8 decoder strips a BOM once, at the very start of the
            # stream (Encoding standard, "UTF-8 decode"); decide it first.
            held = self._head
            need = 3 - len(held)
            head = held + data[:need]
            if len(head) < 3 and BOM.startswith(head):
                self._head = head  # still undecided: wait for more bytes
                return []
            self._head = None
            if head == BOM:
                data = data[need:]
                base = 3
            else:
                data = held + data  # the held bytes are ordinary stream bytes
                base = 0
        events: list[Event] = []
        try:
            pending = len(self._line)
            committed = len(self._data) + self._type_size + self._id_size
            if (self._max_line >= 0 and pending + len(data) > self._max_line) or (
                self._max_event >= 0 and committed + pending + len(data) > self._max_event
            ):
                self._feed_checked(data, base, events)
            else:
                self._feed_fast(data, base, events)
        except ProtocolError as exc:
            self._error = stored_error(exc, events)
            self._release()  # nothing of the stream is needed again
            raise
        return events

    def eof(self) -> None:
        """End of the stream.  An incomplete event is discarded (WHATWG:
        "Once the end of the file is reached, any pending data must be
        discarded").  After a :class:`ProtocolError` it raises that error
        again (a copy with no events); calling it twice, like feeding after
        it, raises :class:`StateError`."""
        if self._done:
            raise StateError("SSEDecoder.eof() called twice")
        self._done = True
        self._release()
        if self._error is not None:
            raise raise_again(self._error)

    def _release(self) -> None:
        """Drop the pending line, data and event type (end or error)."""
        self._line = bytearray()
        self._data = bytearray()
        self._type = ""
        self._type_size = 0

    # -- the fast path: no limit can be reached within this feed -----------

    def _feed_fast(self, data: bytes, base: int, events: list[Event]) -> None:
        i = 0
        n = len(data)
        if self._skip_lf and n:
            self._skip_lf = False
            if data[0] == 10:  # the LF of a CRLF cut between two feeds
                i = 1
        if self._line:
            # Finish the pending line first: find its end in this feed.
            j = data.find(b"\n", i)
            k = data.find(b"\r", i, n if j < 0 else j)
            end = k if k >= 0 else j
            if end < 0:
                self._line += data[i:] if i else data
                return
            self._line += data[i:end]
            line = bytes(self._line)
            self._line.clear()
            self._process((line,), events)
            i = end + 1
            if data[end] == 13:
                if i < n:
                    if data[i] == 10:
                        i += 1
                else:
                    self._skip_lf = True
        if i >= n:
            return
        # Complete lines run up to the last CR or LF; what follows is pending.
        cut = max(data.rfind(b"\n", i), data.rfind(b"\r", i), i - 1) + 1
        if cut < n:
            self._line_start = base + cut
            self._line += data[cut:]
        if cut == i:
            return
        if data[cut - 1] == 13 and cut == n:
            self._skip_lf = True
        block = data[i:cut] if i or cut < n else data
        if block.isascii():
            # ASCII: decode the block once (the same text as decoding each
            # value) and work on str lines.
            text = block.decode("ascii")
            if "\r" not in text:
                lines = text.split("\n")
            else:
                lines = text.split("\r\n")  # CRLF only is common, and cheap
                ends = len(lines) - 1
                if ends != block.count(b"\r") or ends != block.count(b"\n"):
                    # a lone CR or LF too: normalize every line end to LF
                    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            lines.pop()  # the block ends with a line end: the last piece is ""
            self._process_text(lines, events)
        else:
            self._process(block.splitlines(), events)  # CRLF, LF and CR only

    def _process(self, lines: Iterable[bytes], events: list[Event]) -> None:
        """Interpret complete lines (WHATWG §9.2.6, "process the field").

        The general path, for any bytes: values are decoded on their own
        (UTF-8, U+FFFD for invalid sequences).  ``_process_text`` is the
        same steps for lines already decoded from an all-ASCII block."""
        for line in lines:
            if not line:
                self._dispatch(events)
                continue
            if line[0] == 58:  # ':' a comment line: ignore it
                continue
            # Field name before the first colon; one leading space removed
            # from the value; a line with no colon is a name with empty value.
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                # append the value and an LF to the data buffer (the LF is
                # counted here and added by the join at dispatch)
                self._data += value
                self._data.append(10)
            elif name == b"id":
                if b"\0" not in value:  # an id holding NUL is ignored
                    self._id = value.decode("utf-8", "replace")
                    self._id_size = len(value)
            elif name == b"event":
                self._type = value.decode("utf-8", "replace")
                self._type_size = len(value)
            elif name == b"retry":
                retry = parse_retry(value)
                if retry is not None:
                    self._retry = retry
            # any other field is ignored

    def _dispatch(self, events: list[Event]) -> None:
        """A blank line: dispatch the event (§9.2.6 "dispatch the event")."""
        # 1. The last event ID string takes the buffer's value, even when
        #    nothing is dispatched (the id buffer itself is not reset).
        self._last_event_id = self._id
        ev = None
        if self._data:
            # 4. The data buffer without its final LF, decoded once.
            ev = _new_event(
                Event,
                (str(memoryview(self._data)[:-1], "utf-8", "replace"), self._type or "message", self._id),
            )
            events.append(ev)
            self._events += 1
            self._data = bytearray()  # a new one: a large event's memory is not kept
        # 2./5. Reset the data and event type buffers.
        self._type = ""
        self._type_size = 0
        if ev is not None and self._trace is not None:
            self._trace(ev)

    def _process_text(self, lines: list[str], events: list[Event]) -> None:
        """``_process`` for the lines of an all-ASCII block (str, so no
        decoding, and sizes in characters are sizes in bytes).  The hot
        path: buffers live in locals and go back at the end, or before a
        trace call; ``data:`` and ``id:`` lines with the usual single space
        are matched by prefix before the general field split."""
        carried = self._data  # data lines of earlier feeds (bytes, each with its LF)
        data: list[str] = []  # data lines of this block
        etype = self._type
        id_buffer = self._id
        last_id = self._last_event_id
        trace = self._trace
        new_event = _new_event
        event_cls = Event
        produced = len(events)
        for line in lines:
            if not line:
                last_id = id_buffer
                if data or carried:
                    if carried:  # the event began in an earlier feed
                        head = str(carried, "utf-8", "replace")  # ends with LF
                        value = head + "\n".join(data) if data else head[:-1]
                        carried = self._data = bytearray()
                    else:
                        value = data[0] if len(data) == 1 else "\n".join(data)
                    ev = new_event(event_cls, (value, etype or "message", id_buffer))
                    events.append(ev)
                    data = []
                    if trace is not None:
                        self._type, self._type_size = "", 0
                        self._id, self._last_event_id = id_buffer, last_id
                        self._events += len(events) - produced
                        produced = len(events)
                        trace(ev)
                etype = ""
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("id: "):
                if "\0" not in line:
                    id_buffer = line[4:]
                    self._id_size = len(id_buffer)
            elif line[0] == ":":
                continue
            else:
                name, _, value = line.partition(":")
                if value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "id":
                    if "\0" not in value:
                        id_buffer = value
                        self._id_size = len(value)
                elif name == "event":
                    etype = value
                    self._type_size = len(value)
                elif name == "retry":
                    retry = parse_retry(value.encode("ascii"))
                    if retry is not None:
                        self._retry = retry
        if data:  # the event goes on in a later feed: keep its lines as bytes
            carried += "\n".join(data).encode("ascii")
            carried.append(10)
        self._data = carried
        self._type = etype
        if not etype:
            self._type_size = 0
        self._id = id_buffer
        self._last_event_id = last_id
        self._events += len(events) - produced

    # -- the checked path: a limit may be reached within this feed ---------

    def _feed_checked(self, data: bytes, base: int, events: list[Event]) -> None:
        """Line by line, checking each line against the limits before it is
        stored or interpreted.  Slower, and only used for the feeds that
        bring a line or an event close to a limit."""
        i = 0
        n = len(data)
        if self._skip_lf and n:
            self._skip_lf = False
            if data[0] == 10:
                i = 1
        while i < n:
            if not self._line:
                self._line_start = base + i
            j = data.find(b"\n", i)
            k = data.find(b"\r", i, n if j < 0 else j)
            end = k if k >= 0 else j
            stop = n if end < 0 else end
            self._check(len(self._line) + stop - i)
            if end < 0:
                self._line += data[i:]
                return
            self._line += data[i:end]
            line = bytes(self._line)
            self._line.clear()
            self._process((line,), events)
            i = end + 1
            if data[end] == 13:
                if i < n:
                    if data[i] == 10:
                        i += 1
                else:
                    self._skip_lf = True

    def _check(self, size: int) -> None:
        """Raise if the pending line, now ``size`` bytes long, breaks a limit.

        The offset is the first byte past the limit, computed from where the
        line started, so it is the same however the stream was split.  When
        both limits break at once the line limit is reported."""
        start = self._line_start
        line_at = event_at = -1
        if self._max_line >= 0 and size > self._max_line:
            line_at = start + self._max_line
        committed = len(self._data) + self._type_size + self._id_size
        if self._max_event >= 0 and committed + size > self._max_event:
            event_at = start + self._max_event - committed
        if line_at >= 0 and (event_at < 0 or line_at <= event_at):
            raise line_limit_error(self._max_line, line_at)
        if event_at >= 0:
            raise event_limit_error(self._max_event, event_at)


# -- encoding ------------------------------------------------------------------


def encode_event(
    data: str | Buffer | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | Buffer | None = None,
) -> bytes:
    """One event in ``text/event-stream`` form, UTF-8, ending in a blank line.

    Written in the order comment, ``event``, ``id``, ``retry``, ``data``
    (arguments are checked in that order too).  ``data`` and ``comment``
    are a str or a bytes-like object holding UTF-8 (what orjson returns),
    split on CRLF, CR and LF into one ``data:`` or ``:`` line each, so the
    decoder gives back ``data`` with LF line ends; bytes that are not UTF-8
    raise ValueError.  ``event`` and ``id`` are a str and must not hold CR
    or LF, ``id`` no NUL, and ``event`` must not be empty (ValueError);
    ``retry`` is a non-negative int (milliseconds).  A str subclass (an
    ``enum.StrEnum`` member) counts as the text it holds.  ``data=None``
    writes no data line: the client dispatches nothing but still takes
    ``id`` and ``retry``.  A str that cannot be UTF-8 encoded (a lone
    surrogate) raises UnicodeEncodeError, a ValueError.
    """
    out = []
    if comment is not None:
        for line in _encode_field(comment, "comment").split(b"\n"):
            out.append(b": " + line + b"\n" if line else b":\n")
    if event is not None:
        out.append(b"event: " + check_event_type(event).encode("utf-8") + b"\n")
    if id is not None:
        out.append(b"id: " + check_id(id).encode("utf-8") + b"\n")
    if retry is not None:
        check_retry(retry)
        out.append(b"retry: %d\n" % retry)
    if data is not None:
        raw = _encode_field(data, "data")
        for line in raw.split(b"\n"):
            out.append(b"data: " + line + b"\n")
    out.append(b"\n")
    return b"".join(out)


def _encode_field(value: object, what: str) -> bytes:
    """UTF-8 of a data or comment value (str, or checked UTF-8 bytes) with
    CRLF and CR turned into LF: the bytes are split exactly as the str is,
    since CR and LF never occur inside a multi-byte sequence."""
    raw: bytes
    if type(value) is str:
        raw = value.encode("utf-8")
    elif type(value) is bytes:
        check_utf8(value, what)
        raw = value
    else:
        raw = field_utf8(value, what)  # bytearray, memoryview, str subclasses
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


def encode_events(events: Iterable[Item], *, last_event_id: str = "") -> bytes:
    """Many events at once, one bytes out: the fast path for a batch.

    Each item is an :class:`Event`, any ``(data, event, id)`` triple, or a
    mapping of :func:`encode_event`'s keywords (``data``, ``event``, ``id``,
    ``retry``, ``comment``, each optional) for the blocks a triple cannot
    say: a ``retry``, a comment, an id without data.  ``event:`` is written
    unless the type is ``"message"`` (what the client assumes); ``id:`` only
    when the id differs from the one before it, starting from
    ``last_event_id`` (what the client already holds; a mapping without
    ``id`` keeps it), so decoding the output gives back exactly the same
    events.  Each block's fields are written as :func:`encode_event` writes
    them; checks and errors as :func:`encode_event`, item by item.
    """
    current = as_text(last_event_id, "last_event_id")
    if type(events) is not list and type(events) is not tuple:
        events = list(events)  # it may be walked twice
    try:
        return _encode_events_fast(events, current)
    except (TypeError, ValueError):
        # Redo it the slow way, which raises the exact error (same class and
        # message as the compiled twin) for the first bad field in order.
        pass
    return _encode_events_exact(events, current)


def _encode_events_fast(events: Iterable[Item], current: str) -> bytes:
    """Triples of exact str with one-line data only; anything else raises
    (TypeError or ValueError) for the exact path to redo the batch."""
    out: list[str] = []
    append = out.append
    for item in events:
        kind: object = type(item)
        if kind is not tuple and kind is not Event and kind is not list:
            raise ValueError  # a mapping, or another iterable: the exact path
        data, etype, eid = item
        if type(etype) is not str or type(eid) is not str:
            raise ValueError  # str subclasses, bad types: the exact path
        if type(data) is not str:
            if type(data) is not bytes:
                raise ValueError
            # UTF-8 bytes give the very lines their text gives; not UTF-8
            # (UnicodeDecodeError, a ValueError): the exact path says why
            data = data.decode("utf-8")
        if etype != "message":
            check_event_type(etype)
            append(f"event: {etype}\n")
        if eid != current:
            check_id(eid)
            append(f"id: {eid}\n")
            current = eid
        if "\n" in data or "\r" in data:
            raise ValueError  # multi-line: the exact path splits it
        append(f"data: {data}\n\n")
    return "".join(out).encode("utf-8")


def _encode_events_exact(events: Iterable[Item], current: str) -> bytes:
    out: list[bytes] = []
    for item in events:
        data, etype, eid, retry, comment, has_data = unpack_item(item, current)
        if comment is not None:
            for line in _encode_field(comment, "comment").split(b"\n"):
                out.append(b": " + line + b"\n" if line else b":\n")
        etype = as_text(etype, "event")
        if etype != "message":
            out.append(b"event: " + check_event_type(etype).encode("utf-8") + b"\n")
        eid = as_text(eid, "id")
        if eid != current:
            current = check_id(eid)
            out.append(b"id: " + current.encode("utf-8") + b"\n")
        if retry is not None:
            out.append(b"retry: %d\n" % check_retry(retry))
        if has_data:
            for line in _encode_field(data, "data").split(b"\n"):
                out.append(b"data: " + line + b"\n")
        out.append(b"\n")
    return b"".join(out)


def keepalive(comment: str | Buffer = "") -> bytes:
    """A comment-only block (``:\\n\\n``) that keeps proxies and clients from
    timing out an idle stream; the client dispatches nothing."""
    return encode_event(comment=comment)
