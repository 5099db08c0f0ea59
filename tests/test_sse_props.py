"""streamcore.sse properties: round trip, split invariance, and the two
twins agreeing on arbitrary and mutated streams and on encoder inputs."""
from __future__ import annotations

import enum
from types import ModuleType
from typing import Any

import pytest
from helpers import both_twins, cut_at
from hypothesis import given
from hypothesis import strategies as st

from streamcore import ProtocolError, StreamError
from streamcore.sse._common import Event

PY, CY = both_twins("sse")
# a parameter rather than the twin fixture: hypothesis re-runs the body
# many times and function-scoped fixtures are not reset between inputs
both = pytest.mark.parametrize("sse", [PY, CY], ids=["python", "cython"])

# -- strategies --------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # encodable str
line_free = text.filter(lambda s: "\r" not in s and "\n" not in s)
event_types = st.none() | line_free.filter(bool)
ids = st.none() | line_free.filter(lambda s: "\0" not in s)
retries = st.none() | st.integers(min_value=0, max_value=10**30)

# pieces that exercise every rule: field names, colons, spaces, line ends
# (CR, LF, CRLF), BOM, NUL, multi-byte and invalid UTF-8
TOKENS = [
    b"data", b"data:", b"data: ", b"event:", b"event: ", b"id:", b"id: ", b"retry:",
    b"retry: ", b":", b" ", b"  ", b"x", b"yz", b"5", b"42", b"\0", b"\r", b"\n", b"\r\n",
    b"\n\n", b"\r\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb", b"\xc3\xa9", b"\xe2\x82\xac", b"\xe2\x82",
    b"\xf0\x9f\x98\x80", b"\xff", b"\x80", b"foo:", b"Data:", b"\t",
]
token_stream = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)
sse_bytes = token_stream | st.binary(max_size=200)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=8)
limits = st.none() | st.integers(min_value=0, max_value=40)


def normalize(data: str) -> str:
    return data.replace("\r\n", "\n").replace("\r", "\n")


def run(mod: ModuleType, pieces: list[bytes], eof: bool = True, **kw: Any) -> dict[str, Any]:
    """Feed ``pieces``; record every call's result or error and the state after it."""
    dec = mod.SSEDecoder(**kw)
    calls: list[Any] = []
    events: list[Event] = []
    error = None
    for piece in pieces:
        outcome: Any
        try:
            got = dec.feed(piece)
        except StreamError as exc:
            outcome = (type(exc), str(exc), getattr(exc, "offset", None))
            if error is None:
                error = outcome
                events += getattr(exc, "events", [])  # decoded before the problem
                outcome += (list(getattr(exc, "events", [])),)
        else:
            outcome = got
            events += got
        calls.append((outcome, dec.last_event_id, dec.retry, dec.stats))
    if eof:
        try:
            dec.eof()
            calls.append(("eof", dec.last_event_id, dec.retry))
        except StreamError as exc:
            calls.append((type(exc), str(exc), getattr(exc, "offset", None)))
    return {"calls": calls, "events": events, "error": error,
            "last_event_id": dec.last_event_id, "retry": dec.retry}


# -- round trip --------------------------------------------------------------------


@both
@given(data=st.none() | text, event=event_types, id=ids, retry=retries, comment=st.none() | text)
def test_encode_event_then_decode_round_trips(
    sse: ModuleType, data: str | None, event: str | None, id: str | None, retry: int | None,
    comment: str | None,
) -> None:
    wire = sse.encode_event(data, event=event, id=id, retry=retry, comment=comment)
    assert wire.endswith(b"\n\n") or wire == b"\n"
    dec = sse.SSEDecoder(max_event_size=None)
    events = dec.feed(wire)
    expected = [] if data is None else [Event(normalize(data), event or "message", id or "")]
    assert events == expected
    assert dec.last_event_id == (id or "")
    assert dec.retry == retry


@both
@given(items=st.lists(st.tuples(text, event_types, st.sampled_from(["", "1", "2", "é"])), max_size=10))
def test_encode_events_then_decode_round_trips(sse: ModuleType, items: list[Any]) -> None:
    events = [Event(normalize(d), e or "message", i) for d, e, i in items]
    wire = sse.encode_events(events)
    assert sse.SSEDecoder().feed(wire) == events
    assert wire == b"".join(
        sse.encode_event(d, event=None if e == "message" else e,
                         id=i if i != (events[k - 1].id if k else "") else None)
        for k, (d, e, i) in enumerate(events)
    )


# -- split invariance -------------------------------------------------------------


@both
@given(stream=sse_bytes, points=cuts, max_line=limits, max_event=limits)
def test_any_split_gives_same_events_and_errors(
    sse: ModuleType, stream: bytes, points: list[int], max_line: int | None,
    max_event: int | None,
) -> None:
    kw = {"max_line_size": max_line, "max_event_size": max_event}
    pieces = cut_at(stream, [p % (len(stream) + 1) for p in points])
    whole = run(sse, [stream], **kw)
    split = run(sse, pieces, **kw)
    bytewise = run(sse, [stream[i : i + 1] for i in range(len(stream))], **kw)
    assert split["error"] == whole["error"] == bytewise["error"]
    # with the events on the error, nothing is lost whatever the split
    assert split["events"] == whole["events"] == bytewise["events"]
    if whole["error"] is None:
        assert split["last_event_id"] == whole["last_event_id"] == bytewise["last_event_id"]
        assert split["retry"] == whole["retry"] == bytewise["retry"]


@both
@given(data=text, cut=st.integers(min_value=0, max_value=10_000))
def test_split_inside_multibyte_and_crlf(sse: ModuleType, data: str, cut: int) -> None:
    wire = sse.encode_event(data).replace(b"\n", b"\r\n")
    cut %= len(wire) + 1
    assert run(sse, [wire[:cut], wire[cut:]])["events"] == [Event(normalize(data))]


# -- the twins agree --------------------------------------------------------------


def agree(pieces: list[bytes], **kw: Any) -> None:
    assert run(PY, pieces, **kw) == run(CY, pieces, **kw)


@given(stream=sse_bytes, points=cuts, max_line=limits, max_event=limits)
def test_twins_agree_on_arbitrary_streams(
    stream: bytes, points: list[int], max_line: int | None, max_event: int | None
) -> None:
    agree(cut_at(stream, [p % (len(stream) + 1) for p in points]),
          max_line_size=max_line, max_event_size=max_event)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(st.tuples(text, event_types, ids), min_size=1, max_size=5))
    wire = bytearray(b"".join(PY.encode_event(d, event=e, id=i) for d, e, i in events))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "crlf"]))
        at = draw(st.integers(min_value=0, max_value=max(len(wire) - 1, 0)))
        if kind == "flip" and wire:
            wire[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            wire[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "delete" and wire:
            del wire[at : at + draw(st.integers(min_value=1, max_value=4))]
        else:
            wire = bytearray(bytes(wire).replace(b"\n", draw(st.sampled_from([b"\r", b"\r\n"])), 1))
    return bytes(wire)


@given(stream=mutated_streams(), points=cuts, max_line=limits, max_event=st.none() | st.integers(0, 200))
def test_twins_agree_on_mutated_streams(
    stream: bytes, points: list[int], max_line: int | None, max_event: int | None
) -> None:
    agree(cut_at(stream, [p % (len(stream) + 1) for p in points]),
          max_line_size=max_line, max_event_size=max_event)


def outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except (TypeError, ValueError) as exc:
        return (type(exc), str(exc))


class Lying(str):
    """A str subclass whose str(), comparisons and length lie: the encoder
    must write and compare its content only."""

    def __str__(self) -> str:
        return "LIE"

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__

    def __len__(self) -> int:
        return 0


class Kind(str, enum.Enum):
    TOKEN = "token"
    MESSAGE = "message"
    BAD = "a\nb"


def utf8_or_not(draw_from: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """UTF-8 of a str, sometimes with one byte changed or cut (often no
    longer UTF-8), or any bytes at all."""
    def mutate(raw: bytes, at: int, byte: int, cut: bool) -> bytes:
        if not raw:
            return bytes([byte])
        at %= len(raw)
        return raw[:at] if cut else raw[:at] + bytes([byte]) + raw[at + 1:]

    encoded = draw_from.map(lambda t: t.encode("utf-8", "surrogatepass"))  # CESU: not UTF-8
    return (encoded | st.binary(max_size=12)
            | st.builds(mutate, encoded, st.integers(0, 63), st.integers(0, 255), st.booleans()))


special = st.sampled_from(["a\nb", "\r", "x\0", "\ud800", "", "message"])
raw_bytes = utf8_or_not(st.text(max_size=12) | special)
buffers = raw_bytes | raw_bytes.map(bytearray) | raw_bytes.map(memoryview)
str_subclasses = (st.builds(Lying, st.text(max_size=8) | special) | st.sampled_from(list(Kind)))
anything = (st.none() | st.text(max_size=12) | st.integers(-5, 5) | st.booleans()
            | buffers | str_subclasses | special)
mappings = st.dictionaries(st.sampled_from(["data", "event", "id", "retry", "comment", "other"]),
                           anything, max_size=5)


@given(data=anything, event=anything, id=anything, retry=anything, comment=anything)
def test_twins_agree_on_encode_event(data: Any, event: Any, id: Any, retry: Any, comment: Any) -> None:
    kw = {"event": event, "id": id, "retry": retry, "comment": comment}
    assert outcome(PY.encode_event, data, **kw) == outcome(CY.encode_event, data, **kw)


@given(items=st.lists(st.tuples(anything, anything, anything) | mappings | anything, max_size=5),
       last=st.sampled_from(["", "1"]) | str_subclasses)
def test_twins_agree_on_encode_events(items: list[Any], last: str) -> None:
    assert outcome(PY.encode_events, items, last_event_id=last) == outcome(
        CY.encode_events, items, last_event_id=last
    )


@both
@given(raw=utf8_or_not(text), comment=st.booleans())
def test_bytes_are_the_str_path_or_a_value_error(sse: ModuleType, raw: bytes, comment: bool) -> None:
    key = "comment" if comment else "data"
    try:
        text_value = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        with pytest.raises(ValueError) as info:
            sse.encode_event(**{key: raw})
        assert str(info.value).startswith(f"{key} is not UTF-8 ({exc.reason} at byte {exc.start})")
    else:
        assert sse.encode_event(**{key: raw}) == sse.encode_event(**{key: text_value})


@both
@given(text_value=text, event=event_types, id=ids)
def test_str_subclass_is_written_as_its_content(
    sse: ModuleType, text_value: str, event: str | None, id: str | None
) -> None:
    wrap = (lambda v: v) if event is None else Lying
    assert sse.encode_event(Lying(text_value), event=None if event is None else wrap(event),
                            id=None if id is None else Lying(id), comment=Lying(text_value)) == (
        sse.encode_event(text_value, event=event, id=id, comment=text_value))


str_or_utf8 = text | text.map(lambda t: t.encode("utf-8"))
block = st.fixed_dictionaries({}, optional={
    "data": str_or_utf8, "event": event_types, "id": ids,
    "retry": retries, "comment": st.none() | str_or_utf8})
triple = st.tuples(str_or_utf8, event_types.map(lambda e: e or "message"), ids.map(lambda i: i or ""))


@both
@given(items=st.lists(block | triple, max_size=8))
def test_encode_events_with_mapping_items_round_trips(sse: ModuleType, items: list[Any]) -> None:
    """A batch of triples and mappings decodes to what each block says, and is
    the blocks encode_event writes, with the batch rules for event and id."""
    wire = sse.encode_events(items)
    current, retry, expected, parts = "", None, [], []
    for item in items:
        kw = dict(item) if isinstance(item, dict) else dict(zip(("data", "event", "id"), item))
        data, etype, eid = kw.get("data"), kw.get("event") or "message", kw.get("id")
        eid = current if eid is None else eid
        parts.append(sse.encode_event(data, event=None if etype == "message" else etype,
                                      id=None if eid == current else eid,
                                      retry=kw.get("retry"), comment=kw.get("comment")))
        current = eid
        retry = kw.get("retry", None) if kw.get("retry") is not None else retry
        if data is not None:
            data = data if isinstance(data, str) else data.decode("utf-8")
            expected.append(Event(normalize(data), etype, current))
    assert wire == b"".join(parts)
    dec = sse.SSEDecoder(max_event_size=None)
    assert dec.feed(wire) == expected
    assert (dec.last_event_id, dec.retry) == (current, retry)


def test_protocol_errors_are_the_only_decoder_errors() -> None:
    # a LimitError is a ProtocolError: what a caller catches
    out = run(CY, [b"data: 12345"], max_line_size=3)
    assert out["error"] is not None and issubclass(out["error"][0], ProtocolError)


def traced(mod: ModuleType, pieces: list[bytes]) -> list[Any]:
    """What a trace callback sees of the decoder's state at each event."""
    seen: list[Any] = []
    dec: Any = None

    def trace(ev: Event) -> None:
        seen.append((ev, dec.last_event_id, dec.retry, dec.stats))

    dec = mod.SSEDecoder(trace=trace)
    for piece in pieces:
        dec.feed(piece)
    return seen


@given(stream=sse_bytes, points=cuts)
def test_twins_agree_on_what_trace_sees(stream: bytes, points: list[int]) -> None:
    pieces = cut_at(stream, [p % (len(stream) + 1) for p in points])
    assert traced(PY, pieces) == traced(CY, pieces)
