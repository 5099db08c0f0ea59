"""streamcore on asyncio (and uvloop): WebSocket servers and clients, and
plain HTTP/1.1 beside them (chunked and SSE responses, served and read; that
part lives in :mod:`streamcore.integrations._asyncio_http` and is
re-exported here).

Theory of operation: one :class:`WebSocket` is the ``asyncio.BufferedProtocol``
of one TCP connection.  The event loop reads into one buffer shared by every
connection of its thread (no ``bytes`` object per read, no buffer per idle
connection); the handshake goes through h11 and
:mod:`streamcore.ws.handshake`, then every read is handed to
:class:`streamcore.ws.Connection` as a memoryview of that buffer (the
connection copies what it keeps, so the buffer is free again when
``receive_data`` returns; with ``views=True`` a listener gets Binary
payloads as views of it instead, unmasked in place, valid during
``on_message``).  Each ``send_*`` of the connection returns one
frame; the frames of one turn of the loop (the replies to one read, the sends
of one turn) are corked and written with one ``transport.writelines`` at the
end of the read callback or of the turn (``loop.call_soon``), at once past
64 KiB so that the transport's high-water mark still pauses a sender.  Pongs
and Closes go through the same queue, so the order on the wire is the order
of the calls.  Once open, a connection keeps neither h11's state nor the
client's handshake object, and has no ``__dict__`` (3.7 KiB of server RSS
per idle connection here, where it was 6.8).

Two ways to use it, on the same object:

* callbacks (the fastest path, no task per connection): a
  :class:`WebSocketListener` whose ``on_message`` runs inside the read
  callback, replying with :meth:`WebSocket.send_nowait`;
* coroutines: ``async for message in ws``, ``await ws.send(...)``,
  ``await ws.close()``.

What the protocol does for you: Pings are answered, the peer's Close is
echoed after the replies to everything before it, keepalive Pings go out
every ``ping_interval`` seconds and the connection fails with 1011
"keepalive ping timeout" when no Pong comes within ``ping_timeout``; a
protocol violation sends the Close the codec chose (1002, 1007, 1009) and
closes the transport gracefully (buffered bytes are flushed, never reset).
Flow control both ways: ``await ws.send()`` waits while the transport's write
buffer is above ``write_limit`` (``pause_writing``/``resume_writing``), and
reading pauses while ``max_queue`` messages wait for ``ws.recv()`` (a bound on
reads: the read that fills the queue is decoded whole) or while writing is
paused.  The
server closes the TCP connection once the closing handshake is complete
(RFC 6455 §7.1.1); a client waits ``close_timeout`` seconds for it, then
closes it itself.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Union, cast

import h11

from .._errors import ProtocolError, StateError
from ..ws import Binary, Close, Connection, PerMessageDeflate, Ping, Pong, Prepared, State, Text
from ..ws.handshake import ClientHandshake, HandshakeError, ServerHandshake, Upgrade
from ._asyncio_http import (
    ChunkedResponse,
    ClientGone,
    ClientResponse,
    EventStreamResponse,
    HTTPConnection,
    HTTPError,
    HTTPHandler,
    Request,
    Response,
    event_source,
    request,
    shutdown,
    shutting_down,
)
from ._queue import take

__all__ = [
    "ChunkedResponse",
    "ClientGone",
    "ClientResponse",
    "ConnectionClosed",
    "EventStreamResponse",
    "HTTPConnection",
    "HTTPError",
    "Options",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketListener",
    "connect",
    "event_source",
    "request",
    "serve",
    "shutdown",
    "shutting_down",
]

log = logging.getLogger("streamcore.integrations.asyncio")

Message = Union[str, bytes]
Handler = Callable[["WebSocket"], Awaitable[None]]

#: bytes the event loop reads at most per read (asyncio's own read size)
READ_SIZE = 1 << 18
#: h11's default bound on a request or response head
MAX_HEAD = 16384
#: corked bytes past which they are written at once (not at the end of the turn)
CORK_LIMIT = 1 << 16
#: memoryviews shorter than this are framed from a bytes copy (measured: at
#: 256 B, 650 ns per echo against 780 ns for the view as it is)
SMALL_VIEW = 2048


_read_buffers = threading.local()


def _read_buffer(size: int) -> memoryview:
    """The read buffer of every connection of this thread's event loop.

    Sharing is safe because each read is decoded inside ``buffer_updated``,
    before the loop reads again, and the codec copies what it keeps; so an
    idle connection costs no read buffer at all.
    """
    pool: dict[int, memoryview] = _read_buffers.__dict__.setdefault("pool", {})
    buffer = pool.get(size)
    if buffer is None:
        buffer = pool[size] = memoryview(bytearray(size))
    return buffer


@dataclasses.dataclass(frozen=True)
class Options:
    """The codec's limits and the flow control of a WebSocket connection:
    the one definition :func:`serve`, :func:`connect` and :class:`WebSocket`
    share.  Each field is also a keyword of :func:`serve` and :func:`connect`
    (``serve(echo, max_queue=4)`` is ``serve(echo, options=Options(max_queue=4))``).
    """

    #: the codec's bound on one message (1 MiB, websockets' default); None: none
    max_message_size: int | None = 1 << 20
    #: the codec's bound on one frame; None: only the message bound
    max_frame_size: int | None = None
    #: messages waiting for ``recv()`` before reading pauses
    max_queue: int = 16
    #: seconds between keepalive Pings (None: none)
    ping_interval: float | None = 20.0
    #: seconds a keepalive Ping may wait for its Pong (None: no limit)
    ping_timeout: float | None = 20.0
    #: seconds the closing handshake may take before the transport goes
    close_timeout: float = 10.0
    #: the transport's write-buffer high-water mark (``send()`` waits above it)
    write_limit: int = 1 << 16
    #: bytes the event loop reads at most per read (the shared read buffer)
    read_size: int = READ_SIZE
    #: a listener's ``on_message`` gets each Binary message as a ``memoryview``
    #: of the read buffer, valid during the callback only (no copy on receive;
    #: see "Zero-copy receive" in docs/asyncio.md); the coroutine API always
    #: gets ``bytes``
    views: bool = False

    def __post_init__(self) -> None:
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")

    @classmethod
    def take(cls, kwargs: dict[str, Any], base: Options | None = None) -> Options:
        """The options named in ``kwargs`` (removed from it) over ``base``."""
        names = [name for name in _OPTION_NAMES if name in kwargs]
        base = base if base is not None else _DEFAULTS
        if not names:
            return base
        return dataclasses.replace(base, **{name: kwargs.pop(name) for name in names})


_OPTION_NAMES = tuple(field.name for field in dataclasses.fields(Options))
_DEFAULTS = Options()


class ConnectionClosed(Exception):
    """The WebSocket connection is closed: raised by ``recv``, ``send`` and
    ``ping`` once it is.  ``code`` and ``reason`` are those of the peer's
    Close frame (``code`` 1006 when the connection ended without one,
    1005 when the Close carried no code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"WebSocket closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason

    @property
    def ok(self) -> bool:
        """True for a normal closure (1000 or 1001, or a Close without a code)."""
        return self.code in (1000, 1001, 1005)


class WebSocketListener:
    """Callbacks for one connection; subclass and override what you need.

    They run inside the event loop's read callback: reply with
    :meth:`WebSocket.send_nowait` and keep them short (start a task for slow
    work).  An exception in a callback fails the connection with 1011.
    """

    def on_open(self, ws: WebSocket) -> None:
        """The opening handshake is complete."""

    def on_message(self, ws: WebSocket, message: Message) -> None:
        """A whole message arrived: ``str`` for Text, ``bytes`` for Binary
        (with ``views=True``, a ``memoryview`` of the shared read buffer,
        valid during this call only: copy what you keep)."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """The connection is closed (as :class:`ConnectionClosed` describes)."""


class WebSocket(asyncio.BufferedProtocol):
    """One WebSocket connection on an asyncio transport; made by :func:`serve`
    and :func:`connect`, not by hand.

    Attributes once open: ``subprotocol`` (the one agreed, or None),
    ``request`` and ``response`` (the handshake's h11 events), ``connection``
    (the :class:`streamcore.ws.Connection`, for ``stats``), ``close_code`` and
    ``close_reason`` (set once closed).
    """

    # slots, not a __dict__ per connection: what an idle connection costs is
    # what the issue bounds (a subclass may add its own attributes)
    __slots__ = (
        "_buffer", "_close_received", "_close_timer", "_closed", "_drainers", "_handler",
        "_handshake", "_http", "_in_read", "_input_ended", "_keepalive", "_keepalive_payload",
        "_listener", "_loop", "_messages", "_opened", "_opts", "_out", "_out_bytes", "_pings",
        "_read_paused", "_reader", "_reading_paused", "_role", "_taken", "_task", "_transport",
        "_write_paused",
        "close_code", "close_reason", "connection", "request", "response", "subprotocol",
        "__weakref__",  # a WeakSet of connections still works
    )

    def __init__(
        self,
        role: str,
        *,
        handshake: ServerHandshake | ClientHandshake,
        handler: Handler | None = None,
        listener: WebSocketListener | None = None,
        options: Options | None = None,
        **overrides: Any,
    ) -> None:
        # ``overrides``: fields of :class:`Options` by keyword
        opts = Options.take(overrides, options)
        if overrides:
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(overrides))}")
        self._role = role
        self._handshake = handshake
        self._handler = handler
        self._listener = listener
        self._opts = opts  # shared by the connections of one server
        self._buffer = _read_buffer(opts.read_size)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._http: h11.Connection | None = None
        self.connection: Any = None  # the ws Connection once open
        self.subprotocol: str | None = None
        self.request: h11.Request | None = None
        self.response: h11.InformationalResponse | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._close_received: tuple[int, str] | None = None
        # waiting messages are _messages[_taken:]; a list, not a deque (a
        # deque's first block is ~600 B an idle connection would carry)
        self._messages: list[Message] = []
        self._taken = 0
        self._reader: asyncio.Future[None] | None = None
        self._read_paused = False  # max_queue messages wait: asks reading to pause
        self._write_paused = False  # the write buffer is full: asks it too
        self._reading_paused = False  # what the transport was last told
        self._drainers: list[asyncio.Future[None]] | None = None  # made when needed
        self._pings: dict[bytes, asyncio.Future[None]] | None = None
        # frames corked in this turn of the loop, written by _flush
        self._out: list[Any] = []
        self._out_bytes = 0
        self._in_read = False  # inside buffer_updated: it flushes when it returns
        self._keepalive: asyncio.TimerHandle | None = None
        self._keepalive_payload: bytes | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._input_ended = False
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._task: asyncio.Task[None] | None = None

    @property
    def transport(self) -> asyncio.Transport | None:
        """The asyncio transport (None before the TCP connection is made)."""
        return self._transport

    # -- the transport's callbacks -----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses: a cast, not a check
        transport = self._transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=self._opts.write_limit)
        if isinstance(self._handshake, ClientHandshake):
            transport.write(self._handshake.send())
        else:
            self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.connection is None:
            self._handshake_data(bytes(self._buffer[:nbytes]))
            if self._out:
                self._flush()
            return
        self._in_read = True
        try:
            self._receive(self._buffer[:nbytes])
        finally:
            self._in_read = False
            if self._out:
                self._flush()  # every reply to this read in one writelines

    def eof_received(self) -> bool:
        if self.connection is not None:
            self._end_of_input(self.connection)
        return False  # let the transport close itself

    def pause_writing(self) -> None:
        self._write_paused = True
        # a peer that sends Pings (or anything we answer) and never reads
        # would grow the write buffer without limit: stop reading until it drains
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()
        drainers = self._drainers
        if drainers:
            self._drainers = None
            for waiter in drainers:
                if not waiter.done():
                    waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._out.clear()  # nothing to write them on
        self._out_bytes = 0
        conn = self.connection
        if conn is not None:
            self._end_of_input(conn, writable=False)
        for timer in (self._keepalive, self._close_timer):
            if timer is not None:
                timer.cancel()
        code, reason = self._close_received or (1006, "")
        self.close_code, self.close_reason = code, reason
        closed = ConnectionClosed(code, reason)
        if not self._opened.done():
            self._opened.set_exception(closed)
            self._opened.exception()  # retrieved: nobody may be waiting
        self.resume_writing()
        pings = self._pings
        if pings:
            self._pings = None
            for waiter in pings.values():
                if not waiter.done():
                    waiter.set_exception(closed)
                    waiter.exception()
        self._wake_reader()
        if not self._closed.done():
            self._closed.set_result(None)
        if self._listener is not None and conn is not None:
            self._call(self._listener.on_close, self, code, reason)

    # -- the opening handshake ----------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        handshake = self._handshake
        transport = self._transport
        assert transport is not None
        if isinstance(handshake, ClientHandshake):
            try:
                upgrade = handshake.receive_data(data)
            except HandshakeError as exc:
                self._opened.set_exception(exc)
                transport.close()
                return
            if upgrade is not None:
                self._open(upgrade)
            return
        http = self._http
        assert http is not None
        try:
            http.receive_data(data)
            event = http.next_event()
        except h11.RemoteProtocolError:
            transport.close()
            return
        if event is h11.NEED_DATA:
            return
        if not isinstance(event, h11.Request):
            transport.close()
            return
        self._upgrade(http, event)

    def _adopt(self, transport: asyncio.Transport, http: h11.Connection,
               request: h11.Request) -> None:
        """Take over a connection whose upgrade request an
        :class:`HTTPConnection` has read (one server, both protocols)."""
        self._transport = transport
        transport.set_write_buffer_limits(high=self._opts.write_limit)
        self._http = http
        self._upgrade(http, request)

    def _upgrade(self, http: h11.Connection, event: h11.Request) -> None:
        handshake = self._handshake
        assert isinstance(handshake, ServerHandshake)
        transport = self._transport
        assert transport is not None
        try:
            upgrade = handshake.upgrade(http, event)
        except HandshakeError as exc:
            transport.write(handshake.reject(http, exc))  # 400 or 426
            transport.close()
            return
        self._open(upgrade)  # writes the 101

    def _open(self, upgrade: Upgrade) -> None:
        # the one-call hand-off: a ready Connection, the events of the frames
        # that came behind the handshake, and the bytes to write first
        opened = upgrade.connect(
            connection_class=Connection,
            max_message_size=self._opts.max_message_size,
            max_frame_size=self._opts.max_frame_size,
            # views only where each is used inside the read callback: the
            # coroutine API queues messages past the read, and a copy of a
            # view costs two passes where the copying codec's unmask is one
            views=self._opts.views and self._listener is not None,
        )
        assert self._transport is not None
        if opened.data:
            self._transport.write(opened.data)  # the 101 (server), and our Close if failed
        # the handshake is over: h11's state and the client's handshake object
        # are not held for the connection's life (``request`` stays, for routing)
        self._http = None
        self._handshake = None  # type: ignore[assignment]
        self.request = upgrade.request
        self.response = upgrade.response
        self.subprotocol = upgrade.subprotocol
        self.connection = opened.connection
        self._opened.set_result(None)
        self._schedule_keepalive()
        if self._listener is not None:
            self._call(self._listener.on_open, self)
        elif self._handler is not None:
            self._task = self._loop.create_task(self._run_handler(self._handler))
        if opened.error is not None:
            self._handle(opened.error.events)
            self._flush()
            self._transport.close()  # data ended with the error's Close
        else:
            self._handle(opened.events)

    async def _run_handler(self, handler: Handler) -> None:
        try:
            await handler(self)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("WebSocket handler failed")
            await self.close(1011, "internal error")
            return
        await self.close()

    # -- receiving -----------------------------------------------------------

    def _receive(self, data: bytes | memoryview) -> None:
        conn = self.connection
        try:
            events = conn.receive_data(data)
        except ProtocolError as err:
            self._handle(err.events)
            self._fail(err.close_code or 1002, "")
            return
        self._handle(events)

    def _handle(self, events: list[Any]) -> None:
        conn = self.connection
        transport = self._transport
        assert transport is not None
        for event in events:
            kind = type(event)
            if kind is Text or kind is Binary:
                if self._listener is not None:
                    if not self._call(self._listener.on_message, self, event.data):
                        return
                else:
                    self._messages.append(event.data)
                    if (len(self._messages) - self._taken >= self._opts.max_queue
                            and not self._read_paused):
                        self._read_paused = True
                        self._update_reading()
            elif kind is Ping:
                self._cork(conn.send_pong(event.data))  # legal until receive_eof()
            elif kind is Pong:
                self._acknowledge(event.data)
            elif kind is Close:
                self._close_received = (1005 if event.code is None else event.code, event.reason)
        self._wake_reader()
        if conn.echo_pending:
            self._cork(conn.data_to_send())  # after the replies above
        if conn.state is State.CLOSED:
            self._handshake_done()

    def _end_of_input(self, conn: Any, writable: bool = True) -> None:
        if self._input_ended:
            return
        self._input_ended = True
        try:
            conn.receive_eof()
        except (ProtocolError, StateError):
            pass  # no Close came: close_code is 1006
        if writable and conn.echo_pending and self._transport is not None:
            self._cork(conn.data_to_send())  # a half-closed peer still reads
            self._flush()

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _acknowledge(self, payload: bytes) -> None:
        if payload == self._keepalive_payload:
            self._keepalive_payload = None
        pings = self._pings
        if not pings:
            return
        # a Pong acknowledges its Ping and every Ping sent before it
        for key in list(pings):
            waiter = pings.pop(key)
            if not waiter.done():
                waiter.set_result(None)
            if key == payload:
                break

    def _call(self, callback: Callable[..., None], *args: Any) -> bool:
        try:
            callback(*args)
        except ConnectionClosed:
            pass  # a reply after our Close: nothing to send it on
        except Exception:
            log.exception("WebSocket listener callback failed")
            self._fail(1011, "internal error")
            return False
        return True

    # -- closing -------------------------------------------------------------

    def _fail(self, code: int, reason: str) -> None:
        """Send our Close (when we still may) and close the transport gracefully."""
        conn = self.connection
        transport = self._transport
        assert transport is not None
        if conn is not None:
            try:
                self._cork(conn.send_close(code, reason))
                # the server closes TCP now and does not read the peer's echo:
                # the handshake's code is the one we sent, not 1006
                if self._close_received is None:
                    self._close_received = (code, reason)
            except StateError:
                if conn.echo_pending:
                    self._cork(conn.data_to_send())
        self._flush()
        transport.close()  # flushes what is buffered; never a reset

    def _handshake_done(self) -> None:
        transport = self._transport
        assert transport is not None
        if self._role == "server":
            self._flush()
            transport.close()  # the server closes TCP first (RFC 6455 §7.1.1)
        elif self._close_timer is None:
            self._close_timer = self._loop.call_later(self._opts.close_timeout, transport.close)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (if nobody has) and wait until the
        connection is closed; the transport is aborted after ``close_timeout``
        seconds without an answer."""
        conn = self.connection
        transport = self._transport
        if conn is None or transport is None:
            if transport is not None:
                transport.close()
            await asyncio.shield(self._closed) if transport is not None else None
            return
        if conn.state is State.OPEN or (conn.state is State.CLOSING and conn.echo_pending):
            if conn.echo_pending:
                self._cork(conn.data_to_send())
            else:
                self._cork(conn.send_close(code, reason))
            self._flush()  # the Close after every message sent before it
            if self.connection.state is State.CLOSED:  # we sent the echo
                self._handshake_done()
            elif self._close_timer is None:
                self._close_timer = self._loop.call_later(self._opts.close_timeout, transport.abort)
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await asyncio.shield(self._closed)

    # -- sending ---------------------------------------------------------------

    def send_nowait(self, message: Message | bytearray | memoryview | Prepared) -> None:
        """Send a Text (``str``) or Binary message now, whatever the write
        buffer holds (for listeners; coroutines use :meth:`send`); a
        :class:`streamcore.ws.Prepared` is written as its shared frame.  Raises
        :class:`ConnectionClosed` once our Close is sent or the transport
        is gone."""
        conn = self.connection
        if conn is None:
            raise StateError("the opening handshake is not complete")
        if self._closed.done():
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        try:
            if isinstance(message, str):
                frame = conn.send_text(message)
            elif isinstance(message, Prepared):
                frame = conn.send_prepared(message)  # a broadcast's shared frame
            elif type(message) is memoryview and len(message) < SMALL_VIEW:
                # a small view (a views=True echo) frames faster as bytes: the
                # codec takes bytes by its fast path, and the copy is tiny
                frame = conn.send_binary(message.tobytes())
            else:
                frame = conn.send_binary(message)
        except StateError:
            raise ConnectionClosed(*(self._close_received or (1006, ""))) from None
        self._cork(frame)

    def _cork(self, frame: Any) -> None:
        """Queue a frame for the one ``writelines`` of this turn of the loop."""
        out = self._out
        out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes >= CORK_LIMIT:
            self._flush()  # so the high-water mark still pauses the sender
        elif len(out) == 1 and not self._in_read:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            out.clear()
            self._out_bytes = 0
            return
        if len(out) == 1:
            transport.write(out[0])
        else:
            transport.writelines(out)
        out.clear()
        self._out_bytes = 0

    async def send(self, message: Message | bytearray | memoryview | Prepared) -> None:
        """Send a message, waiting first while the write buffer is full."""
        await self._drain()
        self.send_nowait(message)

    async def ping(self, data: bytes = b"") -> None:
        """Send a Ping and wait for its Pong."""
        conn = self.connection
        if conn is None or self._closed.done():
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        pings = self._pings
        if pings is None:
            pings = self._pings = {}
        if data in pings:
            raise ValueError("a Ping with this payload is already waiting for its Pong")
        try:
            frame = conn.send_ping(data)
        except StateError:
            raise ConnectionClosed(*(self._close_received or (1006, ""))) from None
        waiter: asyncio.Future[None] = self._loop.create_future()
        pings[bytes(data)] = waiter
        self._cork(frame)
        await waiter

    async def _drain(self) -> None:
        if self._write_paused and not self._closed.done():
            waiter: asyncio.Future[None] = self._loop.create_future()
            if self._drainers is None:
                self._drainers = []
            self._drainers.append(waiter)
            await waiter

    def _schedule_keepalive(self) -> None:
        if self._opts.ping_interval is not None:
            self._keepalive = self._loop.call_later(self._opts.ping_interval, self._send_keepalive)

    def _send_keepalive(self) -> None:
        conn = self.connection
        if conn.state is not State.OPEN or self._transport is None:
            return
        if self._keepalive_payload is not None:  # the previous one never came back
            self._fail(1011, "keepalive ping timeout")
            return
        self._keepalive_payload = os.urandom(4)
        self._cork(conn.send_ping(self._keepalive_payload))
        timeout = self._opts.ping_timeout
        if timeout is not None:
            self._keepalive = self._loop.call_later(timeout, self._keepalive_expired)
        else:
            self._keepalive_payload = None
            self._schedule_keepalive()

    def _keepalive_expired(self) -> None:
        if self._keepalive_payload is not None:
            self._fail(1011, "keepalive ping timeout")
        else:
            interval = self._opts.ping_interval or 0.0
            self._keepalive = self._loop.call_later(
                max(0.0, interval - (self._opts.ping_timeout or 0.0)), self._send_keepalive)

    # -- receiving, the coroutine way -----------------------------------------

    async def recv(self) -> Message:
        """The next message (``str`` for Text, ``bytes`` for Binary); raises
        :class:`ConnectionClosed` once the connection is closed and every
        message that came before has been read."""
        messages = self._messages
        while len(messages) == self._taken:
            if self._closed.done() or (self.connection is not None
                                       and self._close_received is not None):
                raise ConnectionClosed(*(self._close_received or (1006, "")))
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        message, self._taken, left = take(messages, self._taken)
        if self._read_paused and left <= self._opts.max_queue // 2:
            self._read_paused = False
            self._update_reading()
        return cast(Message, message)

    def _update_reading(self) -> None:
        """Pause reading while the queue is full or the write buffer is, and
        resume it only when neither asks for a pause."""
        want = self._read_paused or self._write_paused
        if want is self._reading_paused:
            return
        transport = self._transport
        if transport is None or self._closed.done() or transport.is_closing():
            return
        self._reading_paused = want
        if want:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosed as closed:
            if not closed.ok:
                raise


async def serve(
    handler: Handler | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    listener: Callable[[], WebSocketListener] | None = None,
    subprotocols: Sequence[str] = (),
    select_subprotocol: Callable[[h11.Request, list[str]], str | None] | None = None,
    deflate: PerMessageDeflate | None = None,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    http: HTTPHandler | None = None,
    max_body_size: int | None = 1 << 20,
    keep_alive_timeout: float | None = 5.0,
    options: Options | None = None,
    **server_kwargs: Any,
) -> asyncio.Server:
    """Listen for WebSocket connections on ``host:port`` (0: a free port).

    Give either ``handler``, a coroutine function run once per connection
    with its :class:`WebSocket` (the connection is closed with 1000 when it
    returns, 1011 when it raises), or ``listener``, a factory of
    :class:`WebSocketListener` (one per connection).  ``deflate`` is the
    permessage-deflate policy (None: refuse the extension);
    ``select_subprotocol(request, offered)`` may replace the first-match
    choice among ``subprotocols``.

    ``http``: a coroutine function given each plain HTTP :class:`Request`
    and returning a :class:`Response`, :class:`ChunkedResponse` or
    :class:`EventStreamResponse`; with a WebSocket ``handler`` or
    ``listener`` too, upgrade requests go to WebSocket and the rest to
    ``http`` (one port for both).  ``max_body_size`` bounds a request body
    (413 beyond it); ``keep_alive_timeout`` is how long a connection may
    wait for its next request without a byte arriving (uvicorn's default,
    5 s; None: forever).

    ``options`` and the keywords named by its fields (``max_message_size``,
    ``max_queue``, ``write_limit``... see :class:`Options`) are the codec's
    limits and the flow control described in this module's docstring;
    ``write_limit`` and ``read_size`` hold for HTTP connections too.  The
    other ``server_kwargs`` go to ``loop.create_server``.
    """
    if handler is not None and listener is not None:
        raise TypeError("give exactly one of handler and listener")
    if handler is None and listener is None and http is None:
        raise TypeError("give a WebSocket handler or listener, or an http handler")
    opts = Options.take(server_kwargs, options)
    handshake = ServerHandshake(
        subprotocols=subprotocols,
        deflate=deflate,
        select_subprotocol=select_subprotocol,
        extra_headers=extra_headers,
    )

    def websocket() -> WebSocket:
        return WebSocket(
            "server",
            handshake=handshake,
            handler=handler,
            listener=listener() if listener is not None else None,
            options=opts,
        )

    factory: Callable[[], asyncio.BaseProtocol] = websocket
    if http is not None:
        ws_factory = websocket if handler is not None or listener is not None else None

        def factory() -> HTTPConnection:
            return HTTPConnection(http, websocket=ws_factory, max_body_size=max_body_size,
                                  write_limit=opts.write_limit, read_size=opts.read_size,
                                  idle_timeout=keep_alive_timeout)

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, **server_kwargs)


async def connect(
    uri: str,
    *,
    listener: WebSocketListener | None = None,
    subprotocols: Sequence[str] = (),
    deflate: PerMessageDeflate | None = None,
    origin: str | None = None,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    options: Options | None = None,
    **connection_kwargs: Any,
) -> WebSocket:
    """Open a WebSocket connection to ``uri`` (``ws://host:port/path``, or
    ``wss://`` with ``ssl=`` in ``connection_kwargs`` or the default
    context) and return it once the opening handshake is complete.  Raises
    :class:`~streamcore.ws.HandshakeError` when the server refuses.
    ``options`` and the keywords named by its fields are as for
    :func:`serve`; the other ``connection_kwargs`` go to
    ``loop.create_connection``."""
    opts = Options.take(connection_kwargs, options)
    url = urllib.parse.urlsplit(uri)
    if url.scheme not in ("ws", "wss") or not url.hostname:
        raise ValueError(f"not a ws:// or wss:// URI: {uri!r}")
    secure = url.scheme == "wss"
    port = url.port or (443 if secure else 80)
    default_port = port == (443 if secure else 80)
    host_header = url.hostname if default_port else f"{url.hostname}:{port}"
    if ":" in url.hostname:  # an IPv6 literal
        host_header = f"[{url.hostname}]" + ("" if default_port else f":{port}")
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    handshake = ClientHandshake(
        host_header,
        target,
        subprotocols=subprotocols,
        deflate=deflate,
        origin=origin,
        extra_headers=extra_headers,
    )
    if secure:
        connection_kwargs.setdefault("ssl", True)
    loop = asyncio.get_running_loop()
    _, ws = await loop.create_connection(
        lambda: WebSocket("client", handshake=handshake, listener=listener, options=opts),
        url.hostname,
        port,
        **connection_kwargs,
    )
    try:
        await ws._opened  # noqa: SLF001
    except BaseException:
        if ws._transport is not None:  # noqa: SLF001
            ws._transport.close()  # noqa: SLF001
        raise
    return ws
