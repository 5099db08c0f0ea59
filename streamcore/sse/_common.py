"""What both SSE twins share: the event type, the stats snapshot, limit
checks, error messages and the cold paths (argument validation, long
``retry`` values).  Defined once so the twins cannot drift.

WHATWG HTML, "Server-sent events", §9.2.6 "Event stream interpretation".
"""
from __future__ import annotations

from typing import NamedTuple, cast

from .._errors import LimitError
from .._events import event

__all__ = [
    "BOM",
    "check_event_type",
    "check_id",
    "check_retry",
    "split_lines",
    "unpack_item",
    "DEFAULT_MAX_EVENT_SIZE",
    "Event",
    "SSEStats",
    "event_limit_error",
    "line_limit_error",
    "parse_retry",
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


def split_lines(text: str, what: str) -> list[str]:
    """Split on CRLF, CR and LF only: the three line ends of the event
    stream grammar (``str.splitlines`` would also split on VT, FF, U+2028...)."""
    if type(text) is not str:
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def check_event_type(event: object) -> str:
    """``event`` as a field value, or TypeError / ValueError saying why not."""
    if type(event) is not str:
        raise TypeError(f"event must be a str, not {type(event).__name__}")
    if not event:
        raise ValueError("event must not be empty (omit it for the default type 'message')")
    if "\n" in event or "\r" in event:
        raise ValueError(f"event must not contain CR or LF: {event!r}")
    return event


def check_id(id: object) -> str:
    """``id`` as a field value, or TypeError / ValueError saying why not."""
    if type(id) is not str:
        raise TypeError(f"id must be a str, not {type(id).__name__}")
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


def unpack_item(item: object) -> tuple[object, object, object]:
    """``(data, event, id)`` of one item given to ``encode_events``."""
    data, event, id = cast("tuple[object, object, object]", item)
    return data, event, id
