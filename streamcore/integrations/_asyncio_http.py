"""Plain HTTP/1.1 on the asyncio adapter: chunked and Server-Sent Events
responses (server side) and their reading (client side).

Re-exported by :mod:`streamcore.integrations.asyncio`; see docs/asyncio.md.

Server, theory of operation: one :class:`HTTPConnection` is the
``BufferedProtocol`` of one TCP connection.  h11 parses each request (head
and body, bounded by ``max_body_size``); the request goes to the handler in
one task, and the response it returns writes its own body: a
:class:`ChunkedResponse` through :class:`streamcore.chunked.ChunkedEncoder`
(``writelines`` of head, payload and CRLF, never joined), an
:class:`EventStreamResponse` through :func:`streamcore.sse.encode_event`.
h11 writes the response head and keeps the keep-alive bookkeeping; the body
bytes are ours.  A WebSocket upgrade request, when the server also has a
WebSocket handler, is handed to a :class:`~streamcore.integrations.asyncio.WebSocket`
with ``transport.set_protocol``, so one port serves both.

Flow control and failure, with no task beyond the handler's: every write
goes to the transport at once; while the transport's buffer is above
``write_limit`` (``pause_writing``) the writer waits for ``resume_writing``.
The buffer may stay above the limit ``send_timeout`` seconds at most: then
the client counts as frozen and the transport is aborted.  A client that
closes its side (EOF or ``connection_lost``) is gone: the handler's task is
cancelled where it waits, so the user's iterator is closed (its ``finally``
blocks run) and nothing outlives the connection.

Shutdown: :func:`shutdown` gives every response being answered ``grace``
seconds, then cancels it the same way; the response then ends its body as
usual (the last chunk), and keep-alive connections close after it.

Client, theory of operation: :func:`request` sends one request and returns
a :class:`ClientResponse` once the head has come; the body is decoded as it
arrives by :class:`~streamcore.chunked.ChunkedDecoder` (chunked), counted
(``Content-Length``) or read to EOF, and queued; reading pauses while more
than ``max_buffer`` bytes wait for the consumer.  :func:`event_source`
follows an SSE stream with :class:`~streamcore.sse.SSEDecoder` and
reconnects with ``Last-Event-ID`` after ``retry`` milliseconds.
"""
from __future__ import annotations

import asyncio
import logging
import re
import sys
import urllib.parse
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union, cast

import h11

from .._errors import IncompleteError, LimitError, ProtocolError, StreamError
from ..chunked import ChunkedDecoder, ChunkedEncoder
from ..sse import Event, SSEDecoder, encode_event, response_headers

if TYPE_CHECKING:
    from .asyncio import WebSocket

__all__ = [
    "ChunkedResponse",
    "ClientGone",
    "ClientResponse",
    "EventStreamResponse",
    "HTTPConnection",
    "HTTPError",
    "Request",
    "Response",
    "event_source",
    "request",
    "shutdown",
    "shutting_down",
]

log = logging.getLogger("streamcore.integrations.asyncio")

HeaderPairs = Union[Mapping[str, str], Sequence[tuple[Union[bytes, str], Union[bytes, str]]]]
Item = Union[Event, Mapping[str, Any], str, bytes]
Source = Union[AsyncIterable[Item], Callable[[Union[str, None]], AsyncIterable[Item]]]
Body = Union[AsyncIterable[Union[bytes, bytearray, memoryview]],
             Callable[["Request"], AsyncIterable[Union[bytes, bytearray, memoryview]]]]
HTTPHandler = Callable[["Request"], Awaitable["Response | ChunkedResponse | EventStreamResponse"]]

#: h11's default bound on a request or response head
MAX_HEAD = 16384
#: pieces this long or longer go out as ``writelines([size, payload, CRLF])``
#: (the payload never copied); shorter ones are joined into one ``write``,
#: which costs less than three buffers for the transport to walk
JOIN_BELOW = 16384
#: a keep-alive comment: the client dispatches nothing
PING = b":\n\n"
#: corked event bytes past which they are written at once, not at the end of
#: the turn (so the write buffer's high-water mark still pauses the stream)
CORK_LIMIT = 1 << 16

#: set by :func:`shutdown`; iterators may wait on it to end early
shutting_down = asyncio.Event()
_answering: set[HTTPConnection] = set()  # connections running a handler


def _read_buffer(size: int) -> memoryview:
    # the loop-wide read buffer the WebSocket side uses (imported late: that
    # module imports this one)
    from .asyncio import _read_buffer as shared

    return shared(size)


def _pairs(headers: HeaderPairs | None) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(_latin1(k).lower(), _latin1(v)) for k, v in items]


def _latin1(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


class ClientGone(ConnectionError):
    """The client went away (closed, reset, or frozen past ``send_timeout``)
    while a response was being written."""


class HTTPError(StreamError):
    """The server's response cannot be read as asked (a status or content
    type :func:`event_source` does not follow, a body that is not chunked
    for ``aiter_data``)."""


# -- the server ----------------------------------------------------------------


class Request:
    """One request, as the HTTP handler gets it.

    ``method`` and ``target`` (str), ``path`` and ``query`` (the target
    split, percent-decoding left to you), ``headers`` (``(name, value)``
    bytes pairs, names lowercase, in order), ``http_version`` (``"1.1"``),
    ``body`` (bytes, read whole before the handler runs, at most
    ``max_body_size``), ``last_event_id`` (the ``Last-Event-ID`` header,
    None when absent), ``client`` (the peer's address), ``connection``
    (the :class:`HTTPConnection`, whose ``transport`` is there for
    ``get_extra_info`` and ``get_write_buffer_size``).
    """

    __slots__ = ("method", "target", "path", "query", "headers", "http_version", "body",
                 "last_event_id", "client", "connection")

    def __init__(self, event: h11.Request, body: bytes, client: Any,
                 connection: HTTPConnection | None = None) -> None:
        self.connection = connection
        self.method = event.method.decode("ascii")
        self.target = event.target.decode("ascii", "replace")
        path, _, query = self.target.partition("?")
        self.path = path
        self.query = query
        self.headers: list[tuple[bytes, bytes]] = list(event.headers)
        self.http_version = event.http_version.decode("ascii")
        self.body = body
        self.client = client
        self.last_event_id = self.header("last-event-id")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k == key:
                return v.decode("utf-8", "replace")
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Response:
    """A whole response: ``status``, ``headers``, ``body`` (bytes, sent
    with ``Content-Length``)."""

    def __init__(self, body: bytes | str = b"", *, status: int = 200,
                 headers: HeaderPairs | None = None,
                 content_type: str | None = "text/plain; charset=utf-8") -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.status = status
        head = _pairs(headers)
        if content_type is not None and not any(k == b"content-type" for k, _ in head):
            head.insert(0, (b"content-type", content_type.encode("latin-1")))
        self.headers = head

    async def _send(self, conn: HTTPConnection, request: Request) -> None:
        head = self.headers + [(b"content-length", b"%d" % len(self.body))]
        conn.start(self.status, head)
        if request.method != "HEAD" and self.body:
            await conn.write(conn.http.send(h11.Data(data=self.body)) or b"")
        conn.finish(conn.http.send(h11.EndOfMessage()) or b"")


class ChunkedResponse:
    """A response streamed with chunked transfer coding.

    ``body``: an async iterable of bytes-like pieces, each written as one
    chunk as soon as it comes (empty pieces are skipped), or a callable
    given the :class:`Request` that returns one.  ``trailers``: trailer
    fields sent after the last chunk, a list of pairs or a callable
    returning one once the body is done (a checksum, a status).
    ``send_timeout``: seconds the write buffer may stay full before the
    client counts as frozen (None: no limit).  To an HTTP/1.0 client the
    body goes unframed and the connection is closed after it.
    """

    def __init__(self, body: Body, *, status: int = 200, headers: HeaderPairs | None = None,
                 trailers: Sequence[tuple[bytes | str, bytes | str]]
                 | Callable[[], Sequence[tuple[bytes | str, bytes | str]]] | None = None,
                 send_timeout: float | None = 10.0) -> None:
        self.body = body
        self.status = status
        self.headers = _pairs(headers)
        self.trailers = trailers
        self.send_timeout = send_timeout

    async def _send(self, conn: HTTPConnection, request: Request) -> None:
        conn.send_timeout = self.send_timeout
        body = self.body
        iterable = body(request) if callable(body) else body
        chunked = conn.start(self.status, self.headers + [(b"transfer-encoding", b"chunked")])
        if request.method == "HEAD":
            await _close_iterable(iterable)
            conn.finish(conn.http.send(h11.EndOfMessage()) or b"")
            return
        encoder = ChunkedEncoder()
        iterator = iterable.__aiter__()
        try:
            while (piece := await _next(iterator)) is not _DONE:
                if chunked:
                    if len(piece) >= JOIN_BELOW:  # size line, payload, CRLF: never joined
                        await conn.writelines(encoder.encode_buffers(piece))
                    elif piece:  # small: one joined bytes is cheaper than three writes
                        await conn.write(encoder.encode(piece))
                elif piece:
                    await conn.write(piece)
        except asyncio.CancelledError:
            conn.absorb_shutdown()  # re-raises unless shutdown() ended the stream
        finally:
            await _aclose(iterator)
        trailers = self.trailers() if callable(self.trailers) else self.trailers
        conn.http.send(h11.EndOfMessage())  # h11's bookkeeping; the bytes are ours
        conn.finish(encoder.finish(trailers or ()) if chunked else b"")


class EventStreamResponse:
    """A Server-Sent Events response fed by an async iterator of events, as
    :class:`streamcore.integrations.asgi.EventSourceResponse` is on ASGI.

    ``events``: an async iterable of items, or a callable given the
    request's ``Last-Event-ID`` (None when absent) that returns one, so a
    reconnecting client gets what it missed.  Items: a
    :class:`streamcore.sse.Event`, a mapping of
    :func:`~streamcore.sse.encode_event`'s keywords, a ``str`` (the data of
    one message event), or ``bytes`` written as they are (an event encoded
    once for many clients).  ``ping_interval``: seconds of silence before a
    keep-alive comment (None: none); a keep-alive only goes out when nothing
    else was written for that long.  ``send_timeout``: seconds the write
    buffer may stay full, keep-alives included, before the client counts as
    frozen and the stream ends.  ``retry``: a reconnection delay in
    milliseconds, sent first.  The head is that of
    :func:`streamcore.sse.response_headers` plus ``headers``.
    """

    def __init__(self, events: Source, *, status: int = 200, headers: HeaderPairs | None = None,
                 ping_interval: float | None = 15.0, send_timeout: float | None = 10.0,
                 retry: int | None = None) -> None:
        self.events = events
        self.status = status
        self.headers = response_headers(_pairs(headers))
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.retry = retry

    async def _send(self, conn: HTTPConnection, request: Request) -> None:
        # the one encoding of an item, shared with the ASGI response; imported
        # here, not at the top, because that module imports Starlette when it
        # is installed, which an adapter serving no SSE need not load
        from .asgi import encode

        conn.send_timeout = self.send_timeout
        events = self.events
        iterable = events(request.last_event_id) if callable(events) else events
        chunked = conn.start(self.status, self.headers + [(b"transfer-encoding", b"chunked")])
        if request.method == "HEAD":
            await _close_iterable(iterable)
            conn.finish(conn.http.send(h11.EndOfMessage()) or b"")
            return
        encoder = ChunkedEncoder()
        conn.start_keepalive(self.ping_interval, ChunkedEncoder().encode(PING) if chunked else PING)
        conn.cork_with(encoder if chunked else None)
        iterator = iterable.__aiter__()
        try:
            if self.retry is not None:
                await conn.send_event(encode_event(retry=self.retry))
            while (item := await _next(iterator)) is not _DONE:
                await conn.send_event(encode(item))
        except asyncio.CancelledError:
            conn.absorb_shutdown()  # re-raises unless shutdown() ended the stream
        finally:
            conn.stop_keepalive()
            await _aclose(iterator)
        conn.uncork()  # the events still corked, before the last chunk is framed
        conn.http.send(h11.EndOfMessage())
        conn.finish(encoder.finish() if chunked else b"")


_DONE = object()


async def _next(iterator: AsyncIterator[Any]) -> Any:
    # the user's iterator stepped by hand, not by an ``async for`` over a
    # generator of ours: a cancelled response leaves no half-run generator
    # behind for the loop's finalizer to close in a task of its own
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _DONE


async def _aclose(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _close_iterable(iterable: Any) -> None:
    await _aclose(iterable)


class HTTPConnection(asyncio.BufferedProtocol):
    """The server side of one HTTP/1.1 connection; made by
    :func:`~streamcore.integrations.asyncio.serve` when it has an ``http``
    handler, not by hand.  Requests are answered in order (keep-alive and
    pipelining through h11)."""

    # no instance dict: the fan-out benchmark holds a thousand of these
    __slots__ = (
        "_body", "_buffer", "_closed", "_drainers", "_ending", "_gone", "_handler",
        "_last_write", "_loop", "_max_body_size", "_ping", "_ping_bytes", "_ping_interval",
        "_read_paused", "_request", "_shutdown_timer", "_stall", "_task", "_websocket",
        "_write_limit", "_write_paused", "http", "send_timeout", "transport", "__weakref__",
        "_idle_timeout", "_idle", "_corked", "_corked_bytes", "_cork_encoder", "_chunked",
        "_head_tail",
    )

    def __init__(self, handler: HTTPHandler, *, websocket: Callable[[], WebSocket] | None = None,
                 max_body_size: int | None = 1 << 20, write_limit: int = 1 << 16,
                 read_size: int = 1 << 18, idle_timeout: float | None = 5.0) -> None:
        self._handler = handler
        self._idle_timeout = idle_timeout
        self._idle: asyncio.TimerHandle | None = None
        self._websocket = websocket
        self._max_body_size = max_body_size
        self._write_limit = write_limit
        self._buffer = _read_buffer(read_size)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._request: h11.Request | None = None
        self._body = bytearray()
        # a chunked request body being decoded by our ChunkedDecoder(views=True)
        # instead of h11 (see buffer_updated); None otherwise
        self._chunked: Any = None
        self._head_tail = b""  # the last bytes of a request head fed in pieces
        self._task: asyncio.Task[None] | None = None
        self._gone = False
        self._ending: str | None = None  # why we cancelled the task: "gone", "shutdown"
        self._shutdown_timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        self._read_paused = False
        self._drainers: list[asyncio.Future[None]] = []
        self._stall: asyncio.TimerHandle | None = None
        self.send_timeout: float | None = 10.0
        self._ping: asyncio.TimerHandle | None = None
        self._ping_interval: float | None = None
        self._ping_bytes = b""
        self._last_write = 0.0
        # the events of this turn of the loop, written by _uncork (made when needed)
        self._corked: list[bytes] | None = None
        self._corked_bytes = 0
        self._cork_encoder: Any = None
        self._closed: asyncio.Future[None] = self._loop.create_future()

    # -- the transport's callbacks -----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses: a cast, not a check
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self._write_limit)
        self._arm_idle()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self._buffer[:nbytes]
        if self._chunked is not None:  # inside a chunked request body: ours to decode
            self._arm_idle()
            self._chunked_body(data)
            return
        http = self.http
        rest: memoryview | None = None
        if self._task is None and http.their_state is h11.IDLE:
            # h11 gets the request head only: a chunked body behind it goes to
            # our decoder (see _next), which h11 would copy twice and compact
            # once per chunk
            end = self._head_end(data)
            if 0 <= end < nbytes:
                data, rest = data[:end], data[end:]
        try:
            http.receive_data(data)  # type: ignore[arg-type]  # h11 copies it
        except RuntimeError:  # data after h11 was told the input ended
            return
        if self._task is None:
            self._arm_idle()  # bytes came: the wait for a whole request starts again
            self._next(rest)
        elif len(http.trailing_data[0]) > MAX_HEAD and not self._read_paused:
            # a client piling up pipelined requests while we answer one: stop
            # reading until it is answered (h11 would hold them all)
            self._read_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self._task is not None:
            self._client_gone()  # a streaming response has nobody to go to
            return False
        try:
            self.http.receive_data(b"")
        except RuntimeError:
            pass
        self._next()
        return False

    def pause_writing(self) -> None:
        self._write_paused = True
        if self.send_timeout is not None and self._stall is None:
            self._stall = self._loop.call_later(self.send_timeout, self._stalled)

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        for waiter in self._drainers:
            if not waiter.done():
                waiter.set_result(None)
        self._drainers.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client_gone()
        if self._idle is not None:
            self._idle.cancel()
        if self._stall is not None:
            self._stall.cancel()
        self.stop_keepalive()
        if not self._closed.done():
            self._closed.set_result(None)

    # -- requests ---------------------------------------------------------------

    def _head_end(self, data: memoryview) -> int:
        """Where the request head h11 is being fed ends in ``data`` (just past
        its blank line, as h11 finds it: ``\\n\\r?\\n``), or -1."""
        tail = self._head_tail
        if tail:
            joined = tail + bytes(data[:2])
            match = _BLANK_LINE.search(joined)
            if match is not None and match.end() > len(tail):
                self._head_tail = b""
                return match.end() - len(tail)
        match = _BLANK_LINE.search(data)
        if match is not None:
            self._head_tail = b""
            return match.end()
        self._head_tail = (tail + bytes(data[-2:]))[-2:]
        return -1

    def _chunked_body(self, data: memoryview) -> None:
        """Decode a piece of a chunked request body into ``_body`` (one copy:
        the decoder hands out views of the read buffer)."""
        decoder = self._chunked
        try:
            events = decoder.feed(data)
        except ProtocolError as exc:
            self._chunked = None
            self._refuse(400, f"malformed chunked body: {exc}")
            return
        body = self._body
        limit = self._max_body_size
        for event in events:
            if type(event).__name__ == "Data":
                body += event.data
        if limit is not None and len(body) > limit:
            self._chunked = None
            self._refuse(413, "request body too large")
            return
        if decoder.done:
            # h11 still waits for the body it never saw: the last chunk alone
            # ends it there (trailer fields are not kept, as with h11), then
            # what came behind the body goes to h11 as usual
            self._chunked = None
            try:
                self.http.receive_data(b"0\r\n\r\n" + decoder.unused_data)
            except RuntimeError:
                return
            self._next()

    def _give_rest(self, rest: memoryview) -> None:
        """Feed h11 the bytes behind the head it was fed alone (not ours to decode)."""
        try:
            self.http.receive_data(rest)  # type: ignore[arg-type]  # h11 copies it
        except RuntimeError:
            pass

    def _next(self, rest: memoryview | None = None) -> None:
        """Read what h11 can give until a request is complete (then answer it).
        ``rest``: the bytes of this read behind a request head h11 was fed
        alone (a chunked body goes to our decoder, the rest to h11)."""
        http = self.http
        transport = self.transport
        assert transport is not None
        while self._task is None and not self._gone:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if rest is not None:  # not behind a head after all: h11's, in order
                    self._give_rest(rest)
                    rest = None
                    continue
                return
            if isinstance(event, h11.Request):
                if self._websocket is not None and _is_websocket(event):
                    if rest is not None:
                        self._give_rest(rest)  # the frames behind the upgrade
                        rest = None
                    ws = self._websocket()
                    transport.set_protocol(ws)
                    ws._adopt(transport, http, event)  # noqa: SLF001
                    return
                limit = self._max_body_size
                length = _content_length(event)
                if limit is not None and length is not None and length > limit:
                    self._refuse(413, "request body too large")
                    return
                self._request = event
                self._body.clear()
                if http.client_is_waiting_for_100_continue:
                    transport.write(http.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
                if rest is not None:
                    if (length is None and _is_chunked(event)
                            and not http.trailing_data[0]):  # h11 holds none of the body
                        self._chunked = ChunkedDecoder(views=True)
                        if rest:
                            self._chunked_body(rest)
                        return
                    self._give_rest(rest)
                    rest = None
            elif isinstance(event, h11.Data):
                self._body += event.data
                limit = self._max_body_size
                if limit is not None and len(self._body) > limit:
                    self._refuse(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage):
                assert self._request is not None
                request = Request(self._request, bytes(self._body),
                                  transport.get_extra_info("peername"), self)
                self._request = None
                self._body = bytearray()
                if self._idle is not None:
                    self._idle.cancel()
                    self._idle = None
                self._task = self._loop.create_task(self._respond(request))
            elif isinstance(event, h11.ConnectionClosed):
                transport.close()
                return

    def _refuse(self, status: int, why: str) -> None:
        transport = self.transport
        assert transport is not None
        if self.http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = why.encode("utf-8", "replace")
            try:
                data = self.http.send(h11.Response(status_code=status, headers=[
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(body)), (b"connection", b"close")]))
                data = (data or b"") + (self.http.send(h11.Data(data=body)) or b"")
                data += self.http.send(h11.EndOfMessage()) or b""
                transport.write(data)
            except h11.LocalProtocolError:
                pass
        transport.close()

    async def _respond(self, request: Request) -> None:
        _answering.add(self)
        if shutting_down.is_set():
            self._schedule_shutdown(0.0)
        try:
            try:
                response = await self._handler(request)
                await response._send(self, request)  # noqa: SLF001
            except asyncio.CancelledError:
                if self._ending is None:
                    raise  # the server's cancellation, not ours
                if sys.version_info >= (3, 11):
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                if self._ending == "shutdown" and self.transport is not None:
                    self.transport.close()  # cancelled before the response could end
                return
            except ClientGone:
                return
            except Exception:
                log.exception("HTTP handler failed")
                if self.http.our_state is h11.SEND_RESPONSE:
                    self._refuse(500, "internal error")
                elif self.transport is not None:
                    self.transport.abort()  # mid-body: the client must see it failed
                return
        finally:
            _answering.discard(self)
            if self._shutdown_timer is not None:
                self._shutdown_timer.cancel()
                self._shutdown_timer = None
            self._task = None
            self.send_timeout = 10.0
        self._cycle()

    def _cycle(self) -> None:
        transport = self.transport
        assert transport is not None
        if self._gone:
            return
        if shutting_down.is_set():
            transport.close()  # no next request once shutting down
            return
        http = self.http
        if http.our_state is h11.MUST_CLOSE or http.their_state is h11.MUST_CLOSE:
            transport.close()
            return
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
            if self._read_paused:
                self._read_paused = False
                transport.resume_reading()
            self._arm_idle()
            self._next()
        else:
            transport.close()

    # -- what responses call ----------------------------------------------

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
        """Write the response head; True when the body goes chunked (an
        HTTP/1.1 client), False when h11 made it close-delimited (HTTP/1.0)."""
        assert self.transport is not None
        data = self.http.send(h11.Response(status_code=status, headers=headers)) or b""
        self.transport.write(data)
        self._last_write = self._loop.time()
        return self.http.their_http_version != b"1.0"

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write body bytes, then wait while the write buffer is full."""
        if self._gone:
            raise ClientGone("the client went away")
        assert self.transport is not None
        self.transport.write(data)
        self._last_write = self._loop.time()
        if self._write_paused:
            await self._drain()

    async def writelines(self, buffers: list[Any]) -> None:
        """Write several buffers without joining them, then wait like :meth:`write`."""
        if self._gone:
            raise ClientGone("the client went away")
        assert self.transport is not None
        self.transport.writelines(buffers)
        self._last_write = self._loop.time()
        if self._write_paused:
            await self._drain()

    def finish(self, tail: bytes) -> None:
        self.uncork()  # the events of this turn first, then the last chunk
        if tail and self.transport is not None and not self._gone:
            self.transport.write(tail)

    # the events an iterator yields in one turn of the loop: one write
    def cork_with(self, encoder: Any) -> None:
        """Frame corked events as chunks of ``encoder`` (None: unframed)."""
        self._cork_encoder = encoder

    async def send_event(self, data: bytes) -> None:
        """Queue encoded events for one write at the end of this turn of the
        loop (``call_soon``), or at once past ``CORK_LIMIT`` bytes; then wait
        like :meth:`write` while the write buffer is full."""
        if self._gone:
            raise ClientGone("the client went away")
        corked = self._corked
        if corked is None:
            corked = self._corked = []
            self._loop.call_soon(self.uncork)
        corked.append(data)
        self._corked_bytes += len(data)
        if self._corked_bytes >= CORK_LIMIT:
            self.uncork()
        if self._write_paused:
            await self._drain()

    def uncork(self) -> None:
        """Write the corked events now (one write)."""
        corked = self._corked
        if corked is None:
            return
        self._corked = None
        size, self._corked_bytes = self._corked_bytes, 0
        transport = self.transport
        if self._gone or transport is None or transport.is_closing():
            return
        encoder = self._cork_encoder
        if encoder is None:  # HTTP/1.0: the body unframed
            transport.writelines(corked)
        elif size < JOIN_BELOW:  # small events: one chunk, one joined buffer
            transport.write(encoder.encode(corked[0] if len(corked) == 1 else b"".join(corked)))
        else:  # one chunk each, never joined (size line, event, CRLF)
            transport.writelines([b for data in corked for b in encoder.encode_buffers(data)])
        self._last_write = self._loop.time()

    async def _drain(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drainers.append(waiter)
        await waiter
        if self._gone:
            raise ClientGone("the client went away")

    def _stalled(self) -> None:
        self._stall = None
        log.info("client frozen for %ss: aborting the response", self.send_timeout)
        if self.transport is not None:
            self.transport.abort()  # its buffer is what we would wait on

    def _client_gone(self) -> None:
        if self._gone:
            return
        self._gone = True
        writing = bool(self._drainers)
        for waiter in self._drainers:
            if not waiter.done():
                waiter.set_result(None)  # the writer sees _gone
        self._drainers.clear()
        task = self._task
        if task is not None and not task.done() and not writing:
            # waiting on the user's iterator (or handler): stop it there
            self._ending = "gone"
            task.cancel()

    # the keep-alive (and slow request) timeout
    def _arm_idle(self) -> None:
        """(Re)start the wait for a whole request: ``idle_timeout`` seconds
        without a byte while no response runs closes the connection (an idle
        keep-alive connection, or a client trickling nothing)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._idle_timeout is not None:
            self._idle = self._loop.call_later(self._idle_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle = None
        if self._task is None and self.transport is not None:
            self.transport.close()

    # cooperative shutdown
    def _schedule_shutdown(self, grace: float) -> None:
        if self._shutdown_timer is None:
            self._shutdown_timer = self._loop.call_later(grace, self._end_for_shutdown)

    def _end_for_shutdown(self) -> None:
        self._shutdown_timer = None
        task = self._task
        if task is not None and not task.done() and self._ending is None:
            self._ending = "shutdown"
            task.cancel()

    def absorb_shutdown(self) -> None:
        """In a response's ``except CancelledError``: carry on (the body is
        then ended as usual) when :func:`shutdown` cancelled it; re-raise
        otherwise."""
        if self._ending != "shutdown":
            raise  # noqa: PLE0704 - re-raises the CancelledError being handled
        if sys.version_info >= (3, 11):
            asyncio.current_task().uncancel()  # type: ignore[union-attr]

    # keep-alive comments, written only when the stream was idle
    def start_keepalive(self, interval: float | None, data: bytes) -> None:
        self._ping_interval = interval
        self._ping_bytes = data
        if interval is not None:
            self._ping = self._loop.call_later(interval, self._keepalive)

    def stop_keepalive(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None

    def _keepalive(self) -> None:
        interval = self._ping_interval
        assert interval is not None
        if self._gone or self.transport is None:
            return
        idle = self._loop.time() - self._last_write
        if idle >= interval:
            if not self._write_paused:  # a full buffer is not an idle stream
                self.transport.write(self._ping_bytes)
            self._last_write = self._loop.time()
            idle = 0.0
        self._ping = self._loop.call_later(interval - idle, self._keepalive)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


def shutdown(grace: float = 5.0) -> None:
    """End every HTTP response this process is answering on the asyncio
    adapter: each gets ``grace`` seconds to finish by itself (iterators can
    watch :data:`shutting_down`), then its iterator is closed and the body
    ended properly (the last chunk), so clients see a complete stream and
    reconnect, to another process.  Responses that start afterwards get no
    grace; keep-alive connections close after their response.  Call it from
    the event loop's thread (a signal handler added with
    ``loop.add_signal_handler``), after ``server.close()``."""
    shutting_down.set()
    for conn in list(_answering):
        conn._schedule_shutdown(grace)  # noqa: SLF001


def _is_websocket(event: h11.Request) -> bool:
    for name, value in event.headers:
        if name == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _is_chunked(event: h11.Request) -> bool:
    # h11 accepted the head, so "chunked" is the one and last coding (RFC 9112 §6.1)
    for name, value in event.headers:
        if name == b"transfer-encoding":
            return value.lower().rstrip().endswith(b"chunked")
    return False


#: the blank line that ends a head, as h11 finds it
_BLANK_LINE = re.compile(b"\n\r?\n")


def _content_length(event: h11.Request | h11.Response) -> int | None:
    for name, value in event.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it is digits
    return None


# -- the client ----------------------------------------------------------------


_END = object()


class ClientResponse(asyncio.BufferedProtocol):
    """One response read by :func:`request`: ``status``, ``reason``,
    ``headers`` (bytes pairs, names lowercase), ``http_version``, then the
    body through one of :meth:`aiter_data` (chunked ``Data`` events),
    :meth:`aiter_bytes` (any framing) or :meth:`aiter_events` (SSE), and
    ``trailers`` once a chunked body has ended.  An async context manager:
    leaving it closes the connection."""

    __slots__ = (
        "_buffer", "_chunk_limits", "_decoder", "_ended", "_error", "_head_in", "_head_out",
        "_http", "_loop", "_max_buffer", "_method", "_opened", "_queue", "_queued",
        "_read_paused", "_remaining", "_sse", "_sse_limits", "_waiter", "chunked", "headers",
        "http_version", "reason", "status", "trailers", "transport", "__weakref__",
    )

    def __init__(self, http: h11.Connection, head: bytes, *, method: str, max_buffer: int, max_chunk_size: int | None,
                 max_line_size: int | None, max_trailers_size: int | None,
                 max_event_size: int | None, last_event_id: str, retry: int | None,
                 read_size: int) -> None:
        self._head_out = head
        self._method = method
        self._max_buffer = max_buffer
        self._chunk_limits: dict[str, Any] = {
            "max_chunk_size": max_chunk_size, "max_line_size": max_line_size,
            "max_trailers_size": max_trailers_size}
        self._sse_limits: dict[str, Any] = {
            "max_event_size": max_event_size, "last_event_id": last_event_id, "retry": retry}
        self._buffer = _read_buffer(read_size)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._http = http  # it wrote the request; it reads the response head
        self._head_in = bytearray()
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = ""
        self.trailers: list[tuple[bytes, bytes]] = []
        self.chunked = False
        self._decoder: Any = None
        self._remaining: int | None = None  # Content-Length bytes still to come
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._read_paused = False
        self._error: BaseException | None = None
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._sse: Any = None

    # -- the transport's callbacks -----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's too
        self.transport.write(self._head_out)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._ended:
            return
        data: memoryview | None = self._buffer[:nbytes]
        if not self._opened.done():
            data = self._read_head(self._buffer[:nbytes])
        if data is not None:
            self._body(data)

    def eof_received(self) -> bool:
        if not self._ended:
            if not self._opened.done():
                self._failed(IncompleteError("the connection ended inside the response head"))
            elif self._decoder is not None:
                try:
                    self._decoder.eof()
                except ProtocolError as err:
                    self._failed(err)
            elif self._remaining is not None and self._remaining > 0:
                self._failed(IncompleteError(
                    f"the connection ended {self._remaining} bytes before Content-Length"))
            else:
                self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ended:
            self._failed(exc or ConnectionResetError("the connection was lost"))

    # -- reading ---------------------------------------------------------------

    def _read_head(self, data: memoryview) -> memoryview | None:
        start = max(0, len(self._head_in) - 3)
        self._head_in += data
        while True:
            end = self._head_in.find(b"\r\n\r\n", start)
            if end < 0:
                if len(self._head_in) > MAX_HEAD:
                    self._failed(LimitError(f"response head over {MAX_HEAD} bytes"))
                return None
            head = bytes(self._head_in[: end + 4])
            rest = self._head_in[end + 4:]
            try:
                self._http.receive_data(head)
                event = self._http.next_event()
            except h11.RemoteProtocolError as exc:
                self._failed(ProtocolError(f"malformed response head: {exc}"))
                return None
            if isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                self._head_in = bytearray(rest)
                start = 0
                continue
            assert isinstance(event, h11.Response), event
            self._open(event)
            self._head_in = bytearray()
            return memoryview(bytes(rest))

    def _open(self, event: h11.Response) -> None:
        self.status = event.status_code
        self.reason = event.reason.decode("latin-1")
        self.headers = list(event.headers)
        self.http_version = event.http_version.decode("ascii")
        coding = b",".join(v for k, v in self.headers if k == b"transfer-encoding").lower()
        if self._method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._remaining = 0
        elif coding.rstrip().endswith(b"chunked"):
            self.chunked = True
            self._decoder = ChunkedDecoder(**self._chunk_limits)
        else:
            self._remaining = _content_length(event)
        self._opened.set_result(None)
        if self._remaining == 0:
            self._end()

    def _body(self, data: memoryview) -> None:
        if not data or self._ended:
            return
        if self._decoder is not None:
            try:
                events = self._decoder.feed(data)
            except ProtocolError as err:
                self._failed(err)
                return
            for event in events:  # Data, Trailers, EndOfMessage of the decoder's twin
                self._push(event, len(event.data) if type(event).__name__ == "Data" else 0)
            if self._decoder.done:
                self._end()
            return
        remaining = self._remaining
        if remaining is not None:
            data = data[:remaining]
            self._remaining = remaining - len(data)
        self._push(bytes(data), len(data))
        if self._remaining == 0:
            self._end()

    def _push(self, item: Any, size: int) -> None:
        self._queue.append((item, size))
        self._queued += size
        if self._queued > self._max_buffer and not self._read_paused and self.transport:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._queue.append((_END, 0))
        self._wake()
        if self.transport is not None:
            self.transport.close()  # one request per connection

    def _failed(self, exc: BaseException) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = exc
        if not self._opened.done():
            self._opened.set_exception(exc)
            self._opened.exception()
        self._queue.append((_END, 0))
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _pop(self) -> Any:
        while not self._queue:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item, size = self._queue[0]
        if item is _END:
            if self._error is not None:
                raise self._error
            return _END
        self._queue.popleft()
        self._queued -= size
        if self._read_paused and self._queued <= self._max_buffer // 2:
            self._read_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return item

    async def aiter_data(self) -> AsyncIterator[Any]:
        """The body of a chunked response as the decoder's ``Data`` events
        (``chunk_start``, ``chunk_end``, ``extensions``), in order; trailer
        fields land in ``trailers``.  Raises :class:`HTTPError` when the body
        is not chunked, the decoder's ``ProtocolError`` when it is malformed."""
        if not self.chunked:
            raise HTTPError("the response body is not chunked")
        while True:
            item = await self._pop()
            if item is _END:
                return
            kind = type(item).__name__
            if kind == "Data":
                yield item
            elif kind == "Trailers":
                self.trailers = list(item.headers)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as bytes pieces, whatever its framing."""
        while True:
            item = await self._pop()
            if item is _END:
                return
            if isinstance(item, bytes):
                yield item
            elif type(item).__name__ == "Data":
                yield item.data
            elif type(item).__name__ == "Trailers":
                self.trailers = list(item.headers)

    async def aiter_events(self) -> AsyncIterator[Event]:
        """The body as Server-Sent Events, decoded by
        :class:`~streamcore.sse.SSEDecoder` (``last_event_id`` and ``retry``
        follow it)."""
        decoder = self._sse = SSEDecoder(**self._sse_limits)
        async for piece in self.aiter_bytes():
            for event in decoder.feed(piece):
                yield event
        decoder.eof()

    @property
    def last_event_id(self) -> str:
        """The SSE decoder's last event ID (what a reconnect sends)."""
        sse = self._sse
        return str(sse.last_event_id if sse is not None else self._sse_limits["last_event_id"])

    @property
    def retry(self) -> int | None:
        """The SSE decoder's reconnection time in milliseconds, if the stream set one."""
        sse = self._sse
        retry: int | None = sse.retry if sse is not None else self._sse_limits["retry"]
        return retry

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    async def read(self) -> bytes:
        """The whole body (bounded by nothing but your patience: prefer the iterators)."""
        return b"".join([piece async for piece in self.aiter_bytes()])

    async def aclose(self) -> None:
        """Close the connection (the body need not have been read)."""
        if not self._ended:
            self._ended = True
            self._queue.append((_END, 0))
            self._wake()
        if self.transport is not None:
            self.transport.close()

    async def __aenter__(self) -> ClientResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def request(
    url: str,
    *,
    method: str = "GET",
    headers: HeaderPairs | None = None,
    body: bytes = b"",
    max_buffer: int = 1 << 18,
    max_chunk_size: int | None = None,
    max_line_size: int | None = 4096,
    max_trailers_size: int | None = 16384,
    max_event_size: int | None = 16 << 20,
    last_event_id: str = "",
    retry: int | None = None,
    read_size: int = 1 << 18,
    **connection_kwargs: Any,
) -> ClientResponse:
    """Send one request to ``url`` (``http://`` or ``https://``, with
    ``ssl=`` in ``connection_kwargs`` or the default context) and return its
    :class:`ClientResponse` once the head has come.

    ``max_buffer``: body bytes that may wait for the consumer before reading
    pauses.  ``max_chunk_size``, ``max_line_size``, ``max_trailers_size``
    go to the :class:`~streamcore.chunked.ChunkedDecoder`,
    ``max_event_size`` to the :class:`~streamcore.sse.SSEDecoder`;
    ``last_event_id`` and ``retry`` seed it (and ``last_event_id``, when
    set, is sent as ``Last-Event-ID``).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port != (443 if secure else 80):
        host = f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = [(b"host", host.encode("ascii"))] + _pairs(headers)
    if last_event_id and not any(k == b"last-event-id" for k, _ in head):
        head.append((b"last-event-id", last_event_id.encode("utf-8")))
    if body or method in ("POST", "PUT", "PATCH"):
        head.append((b"content-length", b"%d" % len(body)))
    writer = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    data = writer.send(h11.Request(method=method, target=target, headers=head)) or b""
    if body:
        data += writer.send(h11.Data(data=body)) or b""
    data += writer.send(h11.EndOfMessage()) or b""
    if secure:
        connection_kwargs.setdefault("ssl", True)
    loop = asyncio.get_running_loop()
    _, response = await loop.create_connection(
        lambda: ClientResponse(
            writer, data, method=method, max_buffer=max_buffer, max_chunk_size=max_chunk_size,
            max_line_size=max_line_size, max_trailers_size=max_trailers_size,
            max_event_size=max_event_size, last_event_id=last_event_id, retry=retry,
            read_size=read_size),
        parts.hostname, port, **connection_kwargs)
    try:
        await response._opened  # noqa: SLF001
    except BaseException:
        await response.aclose()
        raise
    return response


async def event_source(
    url: str,
    *,
    last_event_id: str = "",
    retry: int = 3000,
    reconnect: bool = True,
    max_reconnects: int | None = None,
    headers: HeaderPairs | None = None,
    **request_kwargs: Any,
) -> AsyncIterator[Event]:
    """Follow the event stream at ``url`` as an ``EventSource`` does: yield
    each :class:`~streamcore.sse.Event`; when the connection ends or fails,
    wait ``retry`` milliseconds (or what the stream's ``retry:`` field set)
    and reconnect with ``Last-Event-ID``, ``max_reconnects`` times at most
    (None: forever; ``reconnect=False``: never).  A response that is not
    ``200`` with ``text/event-stream`` raises :class:`HTTPError` (the
    WHATWG "fail the connection": no reconnect).  Stop by breaking out of
    the loop (or ``aclose()``)."""
    head = [(b"accept", b"text/event-stream"), (b"cache-control", b"no-store")] + _pairs(headers)
    reconnects = 0
    delay: int | None = retry
    while True:
        try:
            response = await request(url, headers=head, last_event_id=last_event_id,
                                     retry=delay, **request_kwargs)
        except OSError:
            response = None
        if response is not None:
            async with response:
                kind = (response.header("content-type") or "").split(";")[0].strip().lower()
                if response.status != 200 or kind != "text/event-stream":
                    raise HTTPError(f"not an event stream: {response.status} {kind!r}")
                try:
                    async for event in response.aiter_events():
                        yield event
                except (OSError, ProtocolError):
                    pass  # a broken connection: reconnect
                last_event_id = response.last_event_id
                delay = response.retry if response.retry is not None else delay
        if not reconnect or (max_reconnects is not None and reconnects >= max_reconnects):
            return
        reconnects += 1
        await asyncio.sleep((delay or 0) / 1000)


