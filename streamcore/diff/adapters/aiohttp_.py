"""aiohttp's two request parsers: the C one (llhttp inside) and the pure-Python
``HttpRequestParserPy``.  Trailers are not reported by aiohttp.

``feed_data`` raises when the bytes after a complete message are bad, and
the complete message is lost with the exception; to report the parse of
the first message, a failing read is replayed byte by byte on a fresh
parser to see whether the body ended before the error.
"""
from __future__ import annotations

import asyncio
import importlib
from typing import Any

import aiohttp
from aiohttp import http_parser

from ..outcome import ERROR, INCOMPLETE, OK, Outcome
from ._http import HEAD


class _Protocol:
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


class _Aiohttp:
    protocol = "chunked"
    version = aiohttp.__version__
    parser_class: Any = None

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._cache: tuple[bytes, tuple[Any, int | None]] = (b"\x00nothing", (None, None))

    def _new(self) -> Any:
        return self.parser_class(_Protocol(), self._loop, 2 ** 16, max_line_size=8190,
                                 max_field_size=8190)

    def _feed(self, chunks: list[bytes]) -> tuple[Any, int | None, Exception | None]:
        """(payload of the first message, bytes fed when it ended, error)."""
        parser = self._new()
        msgs, _, _ = parser.feed_data(HEAD)
        payload = msgs[0][1] if msgs else None
        fed = 0
        for piece in chunks:
            try:
                msgs, _, _ = parser.feed_data(piece)
            except Exception as exc:  # aiohttp raises several classes; all are "reject"
                return payload, None, exc
            fed += len(piece)
            if payload is None and msgs:
                payload = msgs[0][1]
            if payload is not None and payload.is_eof():
                return payload, fed, None
        return payload, None, None

    def _bytewise(self, data: bytes) -> tuple[Any, int | None]:
        if self._cache[0] != data:
            payload, end, _ = self._feed([data[i:i + 1] for i in range(len(data))])
            self._cache = (data, (payload, end))
        return self._cache[1]

    def parse(self, chunks: list[bytes]) -> Outcome:
        data = b"".join(chunks)
        payload, end, exc = self._feed(chunks)
        if exc is not None:
            # did the body end inside the failing read, before the error?
            payload, end = self._bytewise(data)
            if end is None:
                return Outcome(ERROR, None, None, type(exc).__name__, None, str(exc).strip()[:200])
        body = b"".join(getattr(payload, "_buffer", ())) if payload is not None else b""
        if end is None:
            return Outcome(INCOMPLETE, (body, None))
        # the read that ended the body may hold the next request too: the
        # exact end comes from a byte-by-byte parse
        exact_end = self._bytewise(data)[1]
        return Outcome(OK, (body, None), data[exact_end if exact_end is not None else end:])


class AiohttpCChunked(_Aiohttp):
    name = "aiohttp-c"

    def __init__(self) -> None:
        # the compiled parser; ImportError = unavailable
        compiled = importlib.import_module("aiohttp._http_parser")
        self.parser_class = compiled.HttpRequestParser
        super().__init__()


class AiohttpPyChunked(_Aiohttp):
    name = "aiohttp-py"
    parser_class = http_parser.HttpRequestParserPy
