"""What both SSE twins share: the event type, the stats snapshot, limit
checks, error messages and the cold paths (argument validation, long
``retry`` values).  Defined once so the twins cannot drift.

WHATWG HTML, "Server-sent events", §9.2.6 "Event stream interpretation".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Union, cast

from .._contract import Buffer, byte_view, field_pairs, short_repr
from .._errors import LimitError
from .._events import event

__all__ = [
    "BOM",
    "as_text",
    "check_event_type",
    "check_id",
    "check_retry",
    "check_utf8",
    "field_utf8",
    "unpack_item",
    "DEFAULT_MAX_EVENT_SIZE",
    "Event",
    "Item",
    "SSEStats",
    "event_limit_error",
    "line_limit_error",
    "parse_retry",
    "response_headers",
]

#: the UTF-8 byte order mark, stripped once at the very start of the stream
#: (the "UTF-8 decode" algorithm of the Encoding standard does exactly that)
BOM = b"\xef\xbb\xbf"

#: Users stream multi-megabyte events (LLM tool results, base64 images); a
#: 1 MiB cap in another SSE client broke them.  16 MiB bounds memory per
#: connection while staying far above any legitimate event we have seen.
DEFAULT_MAX_EVENT_SIZE = 16 << 20

#: Python refuses to convert longer decimal strings to int (CVE-2020-10735);
#: a ``retry`` value with more significant digits than this is ignored.
MAX_RETRY_DIGITS = 4300


class _Event(NamedTuple):
    data: str
    event: str = "message"
    id: str = ""


@event
class Event(_Event):
    """One dispatched server-sent event (WHATWG HTML §9.2.6, "dispatch the event").

    ``data`` is the data buffer with its final LF removed; ``event`` the
    event type ("message" when the stream named none); ``id`` the last event
    ID string at dispatch time, like ``MessageEvent.lastEventId``.

    The idiom of every streamcore event (:mod:`streamcore._events`): a
    NamedTuple subclass that both twins build directly (the compiled one
    through ``tp_alloc`` and item stores, the Python one through
    ``tuple.__new__``), so their events are the very same class; equality
    compares the class too, so an Event never equals a plain tuple.
    """

    __slots__ = ()


class SSEStats(NamedTuple):
    """A snapshot of an :class:`SSEDecoder`'s running totals."""

    #: bytes given to ``feed`` so far (BOM and line ends included)
    bytes_in: int
    #: events dispatched (blank lines with an empty data buffer are not events)
    events: int
    #: calls to ``feed``
    feeds: int


def line_limit_error(limit: int, offset: int) -> LimitError:
    """The error for a line longer than ``max_line_size``."""
    return LimitError(
        f"SSE line longer than max_line_size={limit} bytes; "
        "pass max_line_size=... (or None for no limit) to SSEDecoder to raise it",
        offset=offset,
    )


def event_limit_error(limit: int, offset: int) -> LimitError:
    """The error for an event larger than ``max_event_size``."""
    return LimitError(
        f"SSE event larger than max_event_size={limit} bytes "
        "(data, event type, id and the pending line); "
        "pass max_event_size=... (or None for no limit) to SSEDecoder to raise it",
        offset=offset,
    )


def parse_retry(value: bytes) -> int | None:
    """The ``retry`` field: base-ten integer when the value is only ASCII digits.

    WHATWG: "If the field value consists of only ASCII digits, then interpret
    the field value as an integer in base ten ... Otherwise, ignore the
    field."  An empty value is ignored, as browsers do.  ``bytes.isdigit``
    is true for ASCII digits only (unlike ``int()``, which takes ``+5``,
    `` 5``, ``1_0`` and non-ASCII digits).
    """
    if not value.isdigit():
        return None
    if len(value) > MAX_RETRY_DIGITS:
        value = value.lstrip(b"0") or b"0"
        if len(value) > MAX_RETRY_DIGITS:
            return None  # beyond any clock; Python would refuse to convert it
    return int(value)


# -- encoder validation (cold paths shared by both twins) ----------------------


def as_text(value: object, what: str) -> str:
    """``value`` as an exact str, or TypeError.

    A str subclass (an ``enum.StrEnum`` member, a tagged str type) counts as
    the text it holds, read without calling any of its methods: an
    overridden ``__str__``, ``__eq__``, ``__format__`` or ``splitlines``
    changes nothing that is written or compared.  The real type is tested
    (``issubclass(type(...))``), not ``__class__``, as the compiled twin does.
    """
    if type(value) is str:
        return value
    if issubclass(type(value), str):
        return str.__str__(cast(str, value))  # an exact copy of the content
    raise TypeError(f"{what} must be a str, not {type(value).__name__}")


def check_utf8(raw: Buffer, what: str) -> None:
    """ValueError unless ``raw`` is UTF-8 (strict: no surrogates, no overlong
    forms, nothing past U+10FFFF).

    An event stream is UTF-8 and nothing else (WHATWG HTML §9.2.5); a client
    would decode a bad sequence as U+FFFD, so the data it received would not
    be the data that was sent.  The compiled twin validates in C and calls
    this only when it found a bad sequence, for the very same message.
    """
    try:
        str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} is not UTF-8 ({exc.reason} at byte {exc.start}); an event stream "
            "is UTF-8, a client would read U+FFFD there"
        ) from None


def field_utf8(value: object, what: str) -> bytes:
    """The UTF-8 of a ``data`` or ``comment`` value: a str (a subclass read
    as its content, see :func:`as_text`), or a bytes-like object holding
    UTF-8 (bytes, bytearray, any memoryview: what ``json.dumps(...).encode()``
    or orjson gives), checked by :func:`check_utf8`.

    TypeError for anything else; a lone surrogate in a str raises
    UnicodeEncodeError (a ValueError), as ``str.encode`` does.
    """
    if issubclass(type(value), str):
        return str.encode(cast(str, value), "utf-8")
    try:
        view = byte_view(value)
    except TypeError:
        raise TypeError(
            f"{what} must be a str or a bytes-like object, not {type(value).__name__}"
        ) from None
    check_utf8(view, what)
    return bytes(view)


def check_event_type(event: object) -> str:
    """``event`` as a field value, or TypeError / ValueError saying why not."""
    event = as_text(event, "event")
    if not event:
        raise ValueError("event must not be empty (omit it for the default type 'message')")
    if "\n" in event or "\r" in event:
        raise ValueError(f"event must not contain CR or LF: {event!r}")
    return event


def check_id(id: object) -> str:
    """``id`` as a field value, or TypeError / ValueError saying why not."""
    id = as_text(id, "id")
    if "\n" in id or "\r" in id:
        raise ValueError(f"id must not contain CR or LF: {id!r}")
    if "\0" in id:
        raise ValueError(f"id must not contain NUL (clients ignore such an id): {id!r}")
    return id


def check_seed(last_event_id: object, retry: object) -> tuple[str, int | None]:
    """The reconnection state a client seeds a new decoder with.

    ``last_event_id``: the ``Last-Event-ID`` it sent (a str that the stream
    could have set: no NUL, CR or LF, WHATWG "id" field rules); ``retry``:
    the reconnection time in ms it learned, or None.  TypeError / ValueError
    say why not.
    """
    if not isinstance(last_event_id, str):
        raise TypeError(f"last_event_id must be a str, not {type(last_event_id).__name__}")
    if "\x00" in last_event_id or "\r" in last_event_id or "\n" in last_event_id:
        raise ValueError("last_event_id must not contain NUL, CR or LF (no stream can set it)")
    try:
        last_event_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("last_event_id must be encodable as UTF-8 (no lone surrogates)") from None
    return str(last_event_id), None if retry is None else check_retry(retry)


def check_retry(retry: object) -> int:
    """``retry`` as a field value, or TypeError / ValueError saying why not."""
    # bool is an int subclass: refuse it, or True would be written "True"
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise TypeError(f"retry must be an int (milliseconds), not {type(retry).__name__}")
    if retry < 0:
        raise ValueError(f"retry must be a non-negative int (milliseconds), not {retry}")
    return retry


#: one item of ``encode_events``: an Event, a (data, event, id) triple, or a
#: mapping of encode_event's keywords
Item = Union[Event, "tuple[str | Buffer, str, str]", Mapping[str, object]]

#: the keys a mapping item of ``encode_events`` may have: encode_event's arguments
ITEM_KEYS = frozenset(("data", "event", "id", "retry", "comment"))


def unpack_item(
    item: object, current: str
) -> tuple[object, object, object, object, object, bool]:
    """``(data, event, id, retry, comment, has_data)`` of one item given to
    ``encode_events``, before any field is checked.

    A mapping holds ``encode_event``'s arguments by name, each optional:
    a missing (or None) ``event`` is ``"message"``, a missing ``id`` keeps
    ``current`` (the client's last event ID: no ``id:`` line), a missing
    ``data`` writes no data line (``has_data`` False: the client dispatches
    nothing).  Anything else is a ``(data, event, id)`` triple (an
    :class:`Event` is one) with no retry or comment.  A mapping is tested
    before unpacking, so a dict of three keys is never read as a triple of
    its key names.
    """
    if isinstance(item, Mapping):
        for key in item:
            if key not in ITEM_KEYS:
                raise TypeError(
                    f"encode_events() item has an unexpected key {key!r} "
                    "(the keys are data, event, id, retry, comment)"
                )
        etype = item.get("event")
        eid = item.get("id")
        data = item.get("data")
        return (data, "message" if etype is None else etype, current if eid is None else eid,
                item.get("retry"), item.get("comment"), data is not None)
    data, etype, eid = cast("tuple[object, object, object]", item)
    return data, etype, eid, None, None, True


# -- the response head -----------------------------------------------------------

#: WHATWG HTML §9.2.5: the MIME type is ``text/event-stream`` and the stream
#: is always UTF-8 (a client ignores any ``charset`` parameter, so none is sent).
#: ``no-store``: an event stream is live, never to be replayed from a cache.
#: ``x-accel-buffering: no``: nginx (and proxies that copy it) pass each
#: event on at once instead of filling a buffer first.
#: No ``connection: keep-alive``: HTTP/1.1 keeps connections open by default,
#: and HTTP/2 and HTTP/3 treat a connection-specific field as malformed
#: (RFC 9113 §8.2.2, RFC 9114 §4.2); the server sets framing and connection
#: fields itself (no ``content-length``: the body has no known end).
_HEAD = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
)

#: RFC 9110 §5.6.2 tchar
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def _header_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return str.encode(value, "ascii")
        except UnicodeEncodeError:
            raise ValueError(f"header {what} must be ASCII when given as a str: {short_repr(value)}") from None
    raise TypeError(f"header {what} must be bytes or str, not {type(value).__name__}")


def response_headers(
    extra: Iterable[tuple[bytes | str, bytes | str]] = (),
) -> list[tuple[bytes, bytes]]:
    """The header fields of an event-stream response, as ``(name, value)``
    pairs of bytes with lowercase names: the shape of ASGI's
    ``http.response.start`` ``headers`` and of ``h11.Response(headers=...)``.

    ``content-type: text/event-stream``, ``cache-control: no-store`` and
    ``x-accel-buffering: no``, then ``extra`` (names lowercased, str taken as
    ASCII).  An ``extra`` field with one of those names replaces it in place
    (e.g. ``[("cache-control", "no-cache")]``); a Mapping is taken as its
    ``.items()``, a name or value other than str or bytes-like is a TypeError.  A name that is not an RFC
    9110 token, or a value holding CR, LF or NUL, is a ValueError (header
    injection); a new list is returned each call.
    """
    head = list(_HEAD)
    for pair in field_pairs(extra, "extra headers"):
        name_, value_ = pair
        name = _header_bytes(name_, "name").lower()
        value = _header_bytes(value_, "value")
        if not name or not _TCHAR.issuperset(name):
            raise ValueError(f"header name must be a token (RFC 9110 §5.6.2): {short_repr(name)}")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError(f"header value must not contain CR, LF or NUL: {short_repr(value)}")
        for k, (known, _) in enumerate(head[: len(_HEAD)]):
            if known == name:
                head[k] = (name, value)
                break
        else:
            head.append((name, value))
    return head
