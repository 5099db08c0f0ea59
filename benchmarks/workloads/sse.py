"""Server-Sent Events workloads (issue 3): S1 and S2 decode, E1 encode.

Peers:
- httpx-sse, driven the way its ``iter_sse`` runs over a response: an
  incremental UTF-8 decoder with ``errors="replace"`` (what httpx's
  ``iter_text`` uses) turns each read into text, its ``SSELineDecoder``
  splits lines, each line has its trailing LF stripped and goes to its
  ``SSEDecoder.decode``; ``flush()`` at the end.
- sse-starlette: ``ServerSentEvent(data, event=..., id=...).encode()``.
- aiohttp-sse has no standalone encoder: its ``EventSourceResponse.send``
  is a coroutine that formats and writes into a prepared aiohttp response
  in one go, so it cannot be timed without a server (not a contender).
- a naive f-string encoder that validates nothing (the floor).
"""
from __future__ import annotations

import codecs
import random
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Workload

PY = "streamcore (python)"
CY = "streamcore (cython)"
CY_ONE = "streamcore encode_event (cython)"
PY_ONE = "streamcore encode_event (python)"
CY_BYTES = "streamcore, bytes data (cython)"
CY_ONE_BYTES = "streamcore encode_event, bytes data (cython)"
HTTPX = "httpx-sse"
STARLETTE = "sse-starlette"
NAIVE = "naive f-string"


def _reads(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def s1_stream(n: int = 100_000) -> bytes:
    """S1: token events, ``id: <n>`` and a small JSON ``data`` line, LF endings."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    parts = []
    for i in range(n):
        token = "".join(rng.choice(letters) for _ in range(rng.randint(3, 8)))
        parts.append(f'id: {i}\ndata: {{"token": "{token}", "index": {i}}}\n\n')
    return "".join(parts).encode()


def s2_stream(n: int = 10_000) -> bytes:
    """S2: 8 data lines of 80 characters per event, CRLF endings."""
    rng = random.Random(2)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}\":,"
    parts = []
    for _ in range(n):
        for _ in range(8):
            parts.append("data: " + "".join(rng.choice(alphabet) for _ in range(80)) + "\r\n")
        parts.append("\r\n")
    return "".join(parts).encode()


def _check(events: list[Any]) -> tuple[int, list[tuple[str, str, str]]]:
    """The check value: the number of events and a sample of every 997th
    (data, type, id) -- cheap, so the timing is of the decoding, not of
    the check (the test suite and the fuzzer check every event)."""
    return len(events), [(e.data, e.event, e.id) for e in events[::997]]


def _ours(module_name: str, reads: list[bytes]) -> Callable[[], Callable[[], Any]]:
    def setup() -> Callable[[], Any]:
        import importlib

        mod = importlib.import_module(f"streamcore.{module_name}")
        decoder_cls = mod.SSEDecoder

        def run() -> Any:
            dec = decoder_cls()
            out: list[Any] = []
            for chunk in reads:
                out += dec.feed(chunk)
            dec.eof()
            return _check(out)

        return run

    return setup


def _httpx_sse(reads: list[bytes]) -> Callable[[], Callable[[], Any]]:
    def setup() -> Callable[[], Any]:
        from httpx_sse._decoders import SSEDecoder, SSELineDecoder

        def run() -> Any:
            text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            lines = SSELineDecoder()
            sse = SSEDecoder()
            out = []
            for chunk in reads:
                for line in lines.decode(text_decoder.decode(chunk)):
                    ev = sse.decode(line.rstrip("\n"))
                    if ev is not None:
                        out.append(ev)
            for line in lines.decode(text_decoder.decode(b"", True)) + lines.flush():
                ev = sse.decode(line.rstrip("\n"))
                if ev is not None:
                    out.append(ev)
            return _check(out)

        return run

    return setup


def decode_workloads() -> list[Workload]:
    wls = []
    for name, stream, size, desc in (
        ("S1", s1_stream(), 4096, "decode 100,000 token events (id + JSON data, LF), 4 KiB reads"),
        ("S2", s2_stream(), 16384, "decode 10,000 events of 8 × 80-char data lines (CRLF), 16 KiB reads"),
    ):
        reads = _reads(stream, size)
        from streamcore.sse import _py as _sse_py

        dec = _sse_py.SSEDecoder()
        events = dec.feed(stream)
        expected = _check(events)
        wls.append(
            Workload(
                group="sse",
                name=name,
                description=desc,
                nbytes=len(stream),
                nevents=len(events),
                contenders={
                    CY: _ours("sse._c", reads),
                    PY: _ours("sse._py", reads),
                    HTTPX: _httpx_sse(reads),
                },
                expected=expected,
                ours=(CY, PY),
                targets=[(CY, HTTPX, 8.0), (PY, HTTPX, 1.5)],
                notes=["httpx-sse driven as its iter_sse does: incremental UTF-8 decode "
                       "(errors='replace'), SSELineDecoder, SSEDecoder.decode per line"],
            )
        )
    return wls


def encode_items(n: int = 100_000) -> list[tuple[str, str, str]]:
    """E1: (data, event, id) with event "token", id str(n), data a JSON string."""
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    items = []
    for i in range(n):
        token = "".join(rng.choice(letters) for _ in range(rng.randint(3, 8)))
        items.append((f'{{"token": "{token}", "index": {i}}}', "token", str(i)))
    return items


def encode_workload() -> Workload:
    items = encode_items()
    # the same data as UTF-8 bytes, as orjson.dumps gives it: no decode first
    byte_items = [(d.encode(), e, i) for d, e, i in items]
    expected_bytes = sum(len(f"event: {e}\nid: {i}\ndata: {d}\n\n") for d, e, i in items)

    def ours_batch(module_name: str, batch: list[Any] = items) -> Callable[[], Callable[[], Any]]:
        def setup() -> Callable[[], Any]:
            import importlib

            encode_events = importlib.import_module(f"streamcore.{module_name}").encode_events

            def run() -> Any:
                return len(encode_events(batch))

            return run

        return setup

    def ours_one(module_name: str, batch: list[Any] = items) -> Callable[[], Callable[[], Any]]:
        def setup() -> Callable[[], Any]:
            import importlib

            encode_event = importlib.import_module(f"streamcore.{module_name}").encode_event

            def run() -> Any:
                return len(b"".join([encode_event(d, event=e, id=i) for d, e, i in batch]))

            return run

        return setup

    def starlette() -> Callable[[], Any]:
        from sse_starlette.event import ServerSentEvent

        def run() -> Any:
            # sse-starlette separates lines with CRLF by default; ask for LF
            # so every contender writes the same bytes
            return len(b"".join([ServerSentEvent(d, event=e, id=i, sep="\n").encode()
                                 for d, e, i in items]))

        return run

    def naive() -> Callable[[], Any]:
        def run() -> Any:
            return len(b"".join([f"event: {e}\nid: {i}\ndata: {d}\n\n".encode() for d, e, i in items]))

        return run

    return Workload(
        group="sse",
        name="E1",
        description="encode 100,000 events (event='token', id=str(n), JSON data) into bytes",
        nbytes=expected_bytes,
        nevents=len(items),
        contenders={
            CY: ours_batch("sse._c"),
            PY: ours_batch("sse._py"),
            CY_ONE: ours_one("sse._c"),
            PY_ONE: ours_one("sse._py"),
            CY_BYTES: ours_batch("sse._c", byte_items),
            CY_ONE_BYTES: ours_one("sse._c", byte_items),
            STARLETTE: starlette,
            NAIVE: naive,
        },
        expected=expected_bytes,
        ours=(CY, PY, CY_ONE, PY_ONE, CY_BYTES, CY_ONE_BYTES),
        # "within 1.5x of the naive f-string": at least 1/1.5 = 0.67 of its speed
        targets=[(CY, STARLETTE, 8.0), (CY, NAIVE, 0.67),
                 (CY_ONE, STARLETTE, 8.0), (CY_ONE, NAIVE, 0.67)],
        notes=[
            "streamcore rows use encode_events (one bytes for the batch); the encode_event rows "
            "call it once per event, like the peers, and join",
            "the bytes data rows give data as UTF-8 bytes (what orjson.dumps returns), "
            "checked as UTF-8 and split in place",
            "aiohttp-sse: no standalone encoder (EventSourceResponse.send formats and writes "
            "into a live aiohttp response in one coroutine), so it is not timed",
            "naive f-string validates nothing (no CR/LF/NUL checks, no line splitting)",
        ],
    )


def workloads() -> list[Workload]:
    return decode_workloads() + [encode_workload()]
