"""httptools (llhttp).  llhttp reports no offset for the end of a message, so
the rest is found by a second, byte-by-byte parse (the byte at which
``on_message_complete`` fires)."""
from __future__ import annotations

import httptools

from ..outcome import ERROR, INCOMPLETE, OK, Outcome
from ._http import HEAD


class _Sink:
    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.headers_done = False
        self.trailers: list[tuple[bytes, bytes]] = []
        self.field = b""
        self.complete = 0

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done and not self.complete:
            self.trailers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete += 1


class HttptoolsChunked:
    name = "httptools"
    protocol = "chunked"
    version = getattr(httptools, "__version__", "?")

    def __init__(self) -> None:
        self._end_cache: tuple[bytes, int | None] = (b"", None)

    def _run(self, chunks: list[bytes]) -> tuple[_Sink, Exception | None, int | None]:
        sink = _Sink()
        parser = httptools.HttpRequestParser(sink)
        fed = 0
        try:
            parser.feed_data(HEAD)
            for piece in chunks:
                parser.feed_data(piece)
                fed += len(piece)
                if sink.complete:
                    return sink, None, fed
        except httptools.HttpParserError as exc:
            return sink, exc, None
        return sink, None, None

    def _end(self, data: bytes) -> int | None:
        if self._end_cache[0] == data:
            return self._end_cache[1]
        _, _, end = self._run([data[i:i + 1] for i in range(len(data))])
        self._end_cache = (data, end)
        return end

    def parse(self, chunks: list[bytes]) -> Outcome:
        sink, exc, _ = self._run(chunks)
        value = (b"".join(sink.body), tuple(sink.trailers))
        if sink.complete:
            data = b"".join(chunks)
            end = self._end(data)
            return Outcome(OK, value, None if end is None else data[end:])
        if exc is not None:
            return Outcome(ERROR, None, None, type(exc).__name__, None, str(exc))
        return Outcome(INCOMPLETE, value)
