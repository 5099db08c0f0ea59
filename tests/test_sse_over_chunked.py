"""SSE over HTTP/1.1 chunked: the SSE decoder fed straight from the chunked
decoder's ``Data`` events, with no copy and no joining in between.

A server that streams ``text/event-stream`` without a Content-Length sends
it chunked; chunk boundaries have nothing to do with event or line
boundaries, and may fall inside a CRLF or a UTF-8 sequence.
"""
from __future__ import annotations

import itertools
import random
from types import ModuleType
from typing import Any

import pytest
from helpers import load_twin, random_split
from hypothesis import given
from hypothesis import strategies as st

from streamcore import LimitError
from streamcore.sse._common import Event

PAIRS = list(itertools.product(["python", "cython"], repeat=2))
pairs = pytest.mark.parametrize(
    "chunked,sse",
    [(load_twin("chunked", c), load_twin("sse", s)) for c, s in PAIRS],
    ids=[f"chunked-{c}+sse-{s}" for c, s in PAIRS],
)

EVENTS = [
    Event("hello", "greeting", "1"),
    Event("line one\nline two", "message", "2"),
    Event("😀 é € 中文", "message", "3"),
    Event("", "ping", "3"),
]


def chunked_body(chunked: ModuleType, body: bytes, sizes: list[int]) -> bytes:
    """``body`` as a chunked body with chunks of the given sizes (cycled)."""
    enc = chunked.ChunkedEncoder()
    out = []
    i = 0
    for size in itertools.cycle(sizes):
        if i >= len(body):
            break
        out.append(enc.encode(body[i : i + size]))
        i += size
    out.append(enc.finish())
    return b"".join(out)


def sse_over_chunked(chunked: ModuleType, sse: ModuleType, reads: list[bytes],
                     **kw: Any) -> tuple[list[Event], Any]:
    """The receiving loop the docs show: every Data payload goes to the SSE
    decoder as it is (the very object the chunked decoder made)."""
    body = chunked.ChunkedDecoder(**kw)
    events_in = sse.SSEDecoder()
    events: list[Event] = []
    done = False
    for read in reads:
        if done:
            break  # the body is over (what follows would be the next message)
        for ev in body.feed(read):
            if isinstance(ev, chunked.Data):
                events += events_in.feed(ev.data)  # no copy, no join
            elif isinstance(ev, chunked.EndOfMessage):
                events_in.eof()
                done = True
    assert done
    return events, events_in


@pairs
@pytest.mark.parametrize("sizes", [[1], [3], [7, 1, 13], [4096]])
def test_events_through_chunked_body(chunked: ModuleType, sse: ModuleType, sizes: list[int]) -> None:
    body = sse.encode_events(EVENTS).replace(b"\n", b"\r\n")
    wire = chunked_body(chunked, body, sizes)
    rng = random.Random(len(wire))
    for reads in ([wire], [wire[i : i + 1] for i in range(len(wire))], random_split(wire, rng)):
        events, dec = sse_over_chunked(chunked, sse, reads)
        assert events == EVENTS
        assert dec.last_event_id == "3"


@pairs
def test_coalesced_data_feeds_the_decoder_too(chunked: ModuleType, sse: ModuleType) -> None:
    body = sse.encode_events(EVENTS)
    wire = chunked_body(chunked, body, [5])
    events, _ = sse_over_chunked(chunked, sse, [wire[i : i + 50] for i in range(0, len(wire), 50)],
                                 coalesce=True)
    assert events == EVENTS


@pairs
def test_payload_object_is_passed_without_copy(chunked: ModuleType, sse: ModuleType) -> None:
    wire = chunked_body(chunked, b"data: x\n\n", [4])
    seen = []

    class Recorder:
        """An SSE decoder stand-in that records what it is given."""

        def __init__(self) -> None:
            self.inner = sse.SSEDecoder()

        def feed(self, data: Any) -> list[Event]:
            seen.append(data)
            return self.inner.feed(data)

    rec = Recorder()
    payloads = []
    events = []
    for ev in chunked.ChunkedDecoder().feed(wire):
        if isinstance(ev, chunked.Data):
            payloads.append(ev.data)
            events += rec.feed(ev.data)
    assert events == [Event("x")]
    assert all(a is b for a, b in zip(seen, payloads)) and len(seen) == len(payloads)


@pairs
def test_event_limit_offset_counts_body_bytes(chunked: ModuleType, sse: ModuleType) -> None:
    # the SSE decoder counts the bytes of the event stream (the chunked
    # body), not of the chunked framing around them
    wire = chunked_body(chunked, b"data: " + b"x" * 100 + b"\n\n", [7])
    body = chunked.ChunkedDecoder()
    dec = sse.SSEDecoder(max_event_size=50)
    with pytest.raises(LimitError) as info:
        for ev in body.feed(wire):
            if isinstance(ev, chunked.Data):
                dec.feed(ev.data)
    assert info.value.offset == 50


@pairs
@given(data=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=5),
       sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_any_chunking_any_reads(chunked: ModuleType, sse: ModuleType, data: list[str],
                                sizes: list[int], seed: int) -> None:
    items = [Event(d.replace("\r\n", "\n").replace("\r", "\n")) for d in data]
    body = sse.encode_events(items)
    wire = chunked_body(chunked, body, sizes)
    events, _ = sse_over_chunked(chunked, sse, random_split(wire, random.Random(seed)))
    assert events == items
