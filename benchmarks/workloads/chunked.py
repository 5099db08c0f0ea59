"""Chunked transfer coding (RFC 9112 §7.1): decode and encode, against peers.

Decode workloads feed a pre-built chunked body, already cut into reads the
way a transport would hand them over, and collect the body pieces the parser
gives back; encode workloads turn a list of ready payload pieces into wire
bytes.  Everything that is not the job (building the body, cutting it into
reads, hashing the result) happens outside the timed run:

* each run starts from a fresh parser/encoder and returns the raw output
  (the list of body pieces, or of wire buffers) plus a "finished" flag;
* ``check`` (outside the clock, once, on the warm-up run) joins the pieces
  and returns ``(length, crc32, finished)`` for decoding, and for encoding
  decodes the wire bytes with a small reference decoder and returns
  ``(body length, body crc32, number of chunks)``, so a contender that
  loses, reorders, duplicates or corrupts a byte gets no number.

The consumer runs one small piece of Python per body piece, for every
contender, as real code does: for streamcore and h11 it walks the returned
events and appends ``event.data`` of each ``Data``; httptools calls a Python
``on_body`` method that appends (issue 2: "httptools crosses into Python once
per body piece"); aiohttp's parser calls its Python ``StreamReader.feed_data``.
Every contender pays for the same thing: keeping every body byte it was
handed.  "httptools (on_body=list.append)" shows httptools with no Python
per piece at all (a C-level ``list.append`` as the callback): the fastest
httptools can be driven, a consumer that does nothing with the body.
"""
from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from benchmarks.harness import Workload

MiB = 1 << 20

#: the response head the peers that parse whole messages must see first;
#: streamcore's decoder starts at the body (its caller parsed the head)
HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

CY = "streamcore (cython)"
CY_CO = "streamcore (cython, coalesce)"
CY_ZC = "streamcore (cython, views)"
PY = "streamcore (python)"
PY_CO = "streamcore (python, coalesce)"
PY_ZC = "streamcore (python, views)"
CY_WL = "streamcore (cython, writelines)"
H11 = "h11"
HTTPTOOLS = "httptools"
HTTPTOOLS_C = "httptools (on_body=list.append)"
AIOHTTP = "aiohttp (C parser)"
AIOHTTP_WRITER = "aiohttp (StreamWriter)"


# --- inputs (built once, outside the clock) -------------------------------------------

@cache
def body(size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (a fixed seed: same every run)."""
    return random.Random(0x5C0DE).randbytes(size)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def encode_reference(chunks: Iterable[bytes]) -> bytes:
    """The wire form of ``chunks``: lower-case hex size, no extensions, no trailers."""
    out: list[bytes] = []
    for c in chunks:
        out.append(b"%x\r\n" % len(c))
        out.append(c)
        out.append(b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def decode_reference(wire: bytes) -> tuple[bytes, int]:
    """Body and chunk count of a well-formed chunked body (for checking encoders).

    Deliberately simple and strict (no extensions, no trailers): encoders in
    these workloads never produce either, so anything else is a wrong result.
    """
    pos = 0
    out: list[bytes] = []
    count = 0
    while True:
        eol = wire.index(b"\r\n", pos)
        line = wire[pos:eol]
        if not line or any(ch not in b"0123456789abcdefABCDEF" for ch in line):
            raise ValueError(f"bad chunk-size line {line[:20]!r} at {pos}")
        size = int(line, 16)
        pos = eol + 2
        if size == 0:
            if wire[pos:] != b"\r\n":
                raise ValueError(f"bad end of body at {pos}: {wire[pos:pos + 20]!r}")
            return b"".join(out), count
        out.append(wire[pos:pos + size])
        if wire[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError(f"chunk data not followed by CRLF at {pos + size}")
        pos += size + 2
        count += 1


def crc(data: bytes) -> int:
    return zlib.crc32(data)


# --- checks (outside the clock) --------------------------------------------------------

def check_decode(result: tuple[list[Any], bool]) -> tuple[int, int, bool]:
    got, finished = result
    joined = b"".join(got)
    return len(joined), crc(joined), finished


def check_encode(result: list[Any]) -> tuple[int, int, int]:
    wire = b"".join(result)
    data, count = decode_reference(wire)
    return len(data), crc(data), count


# --- decode contenders -----------------------------------------------------------------

def _streamcore_decoder(module_name: str, reads: Sequence[bytes], coalesce: bool,
                        views: bool = False) -> Callable[[], Any]:
    import importlib

    mod = importlib.import_module(f"streamcore.{module_name}")
    Decoder, Data = mod.ChunkedDecoder, mod.Data

    def run() -> tuple[list[bytes], bool]:
        # views=True: each ev.data is a memoryview into the read; kept here
        # past the next feed, which is sound only because every read is its
        # own bytes object that nothing overwrites (see DECODE_NOTES)
        dec = Decoder(coalesce=coalesce, views=views)
        got: list[bytes] = []
        append = got.append
        for buf in reads:
            for ev in dec.feed(buf):
                if type(ev) is Data:
                    append(ev.data)
        return got, dec.done

    return run


def _h11_decoder(reads: Sequence[bytes]) -> Callable[[], Any]:
    import h11

    Data, EndOfMessage, NEED_DATA = h11.Data, h11.EndOfMessage, h11.NEED_DATA
    request = h11.Request(method="GET", target="/", headers=[("Host", "bench")])

    def run() -> tuple[list[Any], bool]:
        # h11 frames a response only after the request it answers, and
        # parses the head itself: both are in the timed part (about 22 µs
        # measured, against 2 ms and more for the body).
        conn = h11.Connection(h11.CLIENT)
        conn.send(request)
        conn.send(h11.EndOfMessage())
        conn.receive_data(HEAD)
        head = conn.next_event()
        assert type(head) is h11.Response, head
        got: list[Any] = []
        append = got.append
        finished = False
        next_event = conn.next_event
        for buf in reads:
            conn.receive_data(buf)
            while True:
                ev = next_event()
                if ev is NEED_DATA:
                    break
                if type(ev) is Data:
                    append(ev.data)
                elif type(ev) is EndOfMessage:
                    finished = True
                    break
        return got, finished

    return run


def _httptools_decoder(reads: Sequence[bytes], c_level: bool = False) -> Callable[[], Any]:
    import httptools

    class Collector:
        """The protocol object httptools calls back: a Python ``on_body``, as
        servers built on httptools have (one crossing into Python per body
        piece, like the consumer loop of the Sans-I/O contenders)."""

        def __init__(self) -> None:
            self.got: list[bytes] = []
            self.finished = False

        def on_body(self, body: bytes) -> None:
            self.got.append(body)

        def on_message_complete(self) -> None:
            self.finished = True

    class CCollector(Collector):
        """``on_body`` *is* ``list.append``: no Python code runs per body piece."""

        def __init__(self) -> None:
            super().__init__()
            self.on_body = self.got.append  # type: ignore[method-assign,assignment]

    make = CCollector if c_level else Collector

    def run() -> tuple[list[bytes], bool]:
        proto = make()
        parser = httptools.HttpResponseParser(proto)
        feed = parser.feed_data
        feed(HEAD)  # the head is parsed in the timed part: negligible
        for buf in reads:
            feed(buf)
        return proto.got, proto.finished

    return run


def _aiohttp_decoder(reads: Sequence[bytes]) -> Callable[[], Any]:
    from aiohttp._http_parser import HttpResponseParser

    class Protocol:
        """What the parser's StreamReader calls for flow control: nothing happens.

        aiohttp pauses the transport (and its parser) when the payload buffer
        passes its high-water mark; with no transport there is nothing to
        pause, and the limit below keeps that path from running at all.
        """

        _reading_paused = False

        def pause_reading(self) -> None:
            pass

        def resume_reading(self, resume_parser: bool = True) -> None:
            pass  # called once, at the end of the body

    class Loop:
        """Never used: StreamReader only makes futures when a reader awaits."""

    proto, loop = Protocol(), Loop()
    limit = 1 << 30  # flow control never kicks in: we measure parsing, not pausing

    def run() -> tuple[list[bytes], bool]:
        parser = HttpResponseParser(proto, loop, limit)
        feed = parser.feed_data
        messages, _upgraded, _tail = feed(HEAD)  # timed, negligible
        (_message, payload), = messages
        for buf in reads:
            feed(buf)
        # the body pieces as aiohttp stored them (StreamReader's deque), read
        # without copying; the check joins them outside the clock
        return list(payload._buffer), payload.is_eof()

    return run


# --- encode contenders -----------------------------------------------------------------

def _streamcore_encoder(module_name: str, chunks: Sequence[bytes], writelines: bool) -> Callable[[], Any]:
    import importlib

    Encoder = importlib.import_module(f"streamcore.{module_name}").ChunkedEncoder

    if writelines:
        def run() -> list[Any]:
            # what transport.writelines(enc.encode_buffers(c)) is handed:
            # the payload buffers themselves, never copied into one bytes
            enc = Encoder()
            out: list[Any] = []
            extend = out.extend
            encode_buffers = enc.encode_buffers
            for c in chunks:
                extend(encode_buffers(c))
            out.append(enc.finish())
            return out
    else:
        def run() -> list[Any]:
            enc = Encoder()
            out: list[Any] = []
            append = out.append
            encode = enc.encode
            for c in chunks:
                append(encode(c))
            out.append(enc.finish())
            return out

    return run


def _h11_encoder(chunks: Sequence[bytes]) -> Callable[[], Any]:
    import h11

    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    response = h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])

    def run() -> list[Any]:
        # a server connection that has read a request and sent the chunked
        # response head; both steps are timed (negligible next to the body)
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(request)
        conn.next_event()  # Request
        conn.next_event()  # EndOfMessage
        conn.send(response)
        out: list[Any] = []
        append = out.append
        send = conn.send
        Data = h11.Data
        for c in chunks:
            append(send(Data(data=c)))
        append(send(h11.EndOfMessage()))
        return out

    return run


def _aiohttp_encoder(chunks: Sequence[bytes]) -> Callable[[], Any]:
    from aiohttp.http_writer import StreamWriter

    class Transport:
        """Collects what StreamWriter writes (write or writelines, by size and Python)."""

        def __init__(self) -> None:
            self.out: list[Any] = []
            self.write = self.out.append
            self.writelines = self.out.extend

        def is_closing(self) -> bool:
            return False

    class Protocol:
        """What StreamWriter reads: the transport, and whether writing is paused."""

        _paused = False

        def __init__(self) -> None:
            self.transport = Transport()

    def drive(coro: Any) -> None:
        """Run a coroutine that never suspends (nothing is ever paused here)."""
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError("aiohttp's writer suspended: it cannot be driven without a loop")

    def run() -> list[Any]:
        # an aiohttp handler's `await resp.write(chunk)` per chunk, then
        # `await resp.write_eof()`, minus the event loop and the socket;
        # the response head is not written (not part of the job)
        proto = Protocol()
        writer = StreamWriter(proto, None)  # type: ignore[arg-type]
        writer.enable_chunking()
        write = writer.write
        for c in chunks:
            drive(write(c))
        drive(writer.write_eof())
        return proto.transport.out

    return run


# --- the workloads ---------------------------------------------------------------------

def _decode_workload(name: str, description: str, body_size: int, chunk_size: int, read_size: int,
                     targets: list[tuple[str, str, float]], notes: list[str]) -> Workload:
    data = body(body_size)
    chunks = pieces(data, chunk_size)
    wire = encode_reference(chunks)
    reads = pieces(wire, read_size)
    return Workload(
        group="chunked",
        name=name,
        description=description,
        nbytes=len(data),
        nevents=len(chunks),
        contenders={
            CY: lambda: _streamcore_decoder("chunked._c", reads, coalesce=False),
            CY_CO: lambda: _streamcore_decoder("chunked._c", reads, coalesce=True),
            PY: lambda: _streamcore_decoder("chunked._py", reads, coalesce=False),
            PY_CO: lambda: _streamcore_decoder("chunked._py", reads, coalesce=True),
            CY_ZC: lambda: _streamcore_decoder("chunked._c", reads, coalesce=False, views=True),
            PY_ZC: lambda: _streamcore_decoder("chunked._py", reads, coalesce=False, views=True),
            H11: lambda: _h11_decoder(reads),
            HTTPTOOLS: lambda: _httptools_decoder(reads),
            HTTPTOOLS_C: lambda: _httptools_decoder(reads, c_level=True),
            AIOHTTP: lambda: _aiohttp_decoder(reads),
        },
        expected=(len(data), crc(data), True),
        check=check_decode,
        ours=(CY, CY_CO, CY_ZC, PY, PY_CO, PY_ZC),
        targets=targets,
        notes=DECODE_NOTES + notes,
    )


def _encode_workload(name: str, description: str, body_size: int, chunk_size: int,
                     targets: list[tuple[str, str, float]], notes: list[str]) -> Workload:
    data = body(body_size)
    chunks = pieces(data, chunk_size)
    return Workload(
        group="chunked",
        name=name,
        description=description,
        nbytes=len(data),
        nevents=len(chunks),
        contenders={
            CY: lambda: _streamcore_encoder("chunked._c", chunks, writelines=False),
            CY_WL: lambda: _streamcore_encoder("chunked._c", chunks, writelines=True),
            PY: lambda: _streamcore_encoder("chunked._py", chunks, writelines=False),
            H11: lambda: _h11_encoder(chunks),
            AIOHTTP_WRITER: lambda: _aiohttp_encoder(chunks),
        },
        expected=(len(data), crc(data), len(chunks)),
        check=check_encode,
        ours=(CY, CY_WL, PY),
        targets=targets,
        notes=ENCODE_NOTES + notes,
    )


DECODE_NOTES = [
    "Consumers: streamcore and h11 walk the events in Python and append each Data's "
    "bytes; httptools calls a Python on_body method that appends (one crossing into "
    "Python per body piece, as in servers built on it); the `on_body=list.append` row "
    "is httptools with a C-level callback and no Python per piece.",
    "h11, httptools and aiohttp parse the 46-byte response head "
    "(`HTTP/1.1 200 OK` + `Transfer-Encoding: chunked`) inside the timed run "
    "(a fresh parser per run must see it; h11 also needs the request it answers); "
    "streamcore's decoder starts at the body. Measured alone, that costs about 22 µs "
    "for h11, 5 µs for httptools, 2 µs for aiohttp: negligible next to the body.",
    "`views`: `ChunkedDecoder(views=True)`, zero-copy receive: each `Data.data` is a "
    "memoryview into the read fed, for consumers that write the body straight out. "
    "The consumer keeps the views past the next feed, which is sound here only "
    "because every read is its own bytes object that nothing overwrites; a consumer "
    "reusing its read buffer must write or copy each view before the next feed.",
    "aiohttp: `aiohttp._http_parser.HttpResponseParser` (llhttp, lenient flags as "
    "aiohttp sets them) driven with a stub protocol and a stub loop; its StreamReader "
    "limit is set to 1 GiB so flow control (pause_reading) never runs.",
]

ENCODE_NOTES = [
    "httptools has no encoder.",
    "aiohttp: `aiohttp.http_writer.StreamWriter` writes into a transport from "
    "coroutines; driven here with a stub protocol whose transport collects the "
    "writes, each `write(chunk)` / `write_eof()` coroutine run to completion with "
    "`send(None)` (nothing is ever paused, so none suspends). It is a bytes-out "
    "writer, not a Sans-I/O encoder: the coroutine per chunk is part of its cost.",
    "h11: a server connection that has read a request and sent the response head "
    "(timed, negligible), then `send(Data(...))` per chunk and `send(EndOfMessage())`.",
    "`writelines`: `encode_buffers` returns header, payload and CRLF as separate "
    "buffers for `transport.writelines`, so the payload is never copied.",
]


def workloads() -> list[Workload]:
    return [
        _decode_workload(
            "C1", "decode 8 MiB as 64 KiB chunks, fed in 64 KiB reads",
            8 * MiB, 64 * 1024, 64 * 1024,
            targets=[(CY, HTTPTOOLS, 1.0), (CY_ZC, HTTPTOOLS, 1.5)],
            notes=[],
        ),
        _decode_workload(
            "C2", "decode 8 MiB as 4 KiB chunks, fed in 16391-byte reads",
            8 * MiB, 4 * 1024, 16391,
            targets=[(CY, HTTPTOOLS, 1.0), (CY, H11, 30.0), (PY, H11, 3.0),
                     (CY_ZC, HTTPTOOLS, 1.5), (CY_ZC, H11, 30.0)],
            notes=[],
        ),
        _decode_workload(
            "C3", "decode 200,000 chunks of 24 bytes, fed in 4 KiB reads",
            200_000 * 24, 24, 4 * 1024,
            targets=[(CY, HTTPTOOLS, 1.0), (CY, H11, 30.0), (CY_CO, HTTPTOOLS, 3.0),
                     (PY, H11, 3.0)],
            notes=[],
        ),
        _encode_workload(
            "E1", "encode 8 MiB as 4 KiB chunks",
            8 * MiB, 4 * 1024,
            targets=[(CY, H11, 10.0)],
            notes=[],
        ),
        _encode_workload(
            "E2", "encode 200,000 chunks of 24 bytes",
            200_000 * 24, 24,
            targets=[(CY, H11, 10.0)],
            notes=[],
        ),
    ]


# --- the copy floor --------------------------------------------------------------------

def copy_floor(budget: float = 0.5) -> str:
    """How close to h11 x30 / x10 a copying codec can get on this machine.

    A decoder that returns body bytes as ``bytes`` (and an ``encode()`` that
    returns one ``bytes`` per chunk) copies every payload byte at least once.
    The floor is the time of exactly that copy and nothing else (every piece
    copied once with ``memoryview.tobytes``); ``h11 time / floor`` is then the
    highest ratio to h11 that any such codec can reach here.  Run:

        python -m benchmarks.workloads.chunked
    """
    from benchmarks.harness import time_contender

    lines = ["| workload | copy floor (ms) | h11 (ms) | best reachable ratio to h11 | target |",
             "|---|---:|---:|---:|---:|"]
    for wl in workloads():
        targets = [want for ours, peer, want in wl.targets if peer == H11 and ours == CY]
        if wl.name not in ("C1", "C2", "E1"):  # C3/E2: per-object cost, not copying, dominates
            continue
        if wl.name.startswith("C"):
            chunk_size, read_size = {"C1": (64 * 1024, 64 * 1024), "C2": (4 * 1024, 16391)}[wl.name]
            views = [memoryview(r) for r in
                     pieces(encode_reference(pieces(body(wl.nbytes), chunk_size)), read_size)]
        else:
            views = [memoryview(c) for c in pieces(body(wl.nbytes), 4 * 1024)]

        def floor_setup(views: list[memoryview] = views) -> Callable[[], Any]:
            return lambda: [v.tobytes() for v in views]

        floor = time_contender(floor_setup, None, budget)
        peer = time_contender(wl.contenders[H11], wl.expected, budget, check=wl.check)
        if floor.seconds and peer.seconds:
            lines.append(f"| {wl.name} | {floor.seconds * 1e3:.2f} | {peer.seconds * 1e3:.2f} | "
                         f"{peer.seconds / floor.seconds:.1f}× | "
                         + (f"{targets[0]:g}×" if targets else "—") + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(copy_floor())
