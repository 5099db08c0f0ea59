"""streamcore as uvicorn's WebSocket protocol: ``uvicorn app:app --ws streamcore.integrations.uvicorn:WebSocketProtocol``.

Theory of operation: uvicorn's HTTP protocol (h11, httptools or zttp) sees
an upgrade request, builds ``WebSocketProtocol(config=..., server_state=...,
app_state=...)``, calls ``connection_made(transport)``, hands the transport
over (``set_protocol``) and replays the request head through
``data_received``.  From there this class owns the TCP connection:

* the head is parsed by an :class:`h11.Connection` and validated by
  :mod:`streamcore.ws.handshake` (a bad request gets its 400 or 426 before
  the application runs); the application then gets ``websocket.connect``
  and answers with ``websocket.accept`` (the 101, with its subprotocol and
  headers), ``websocket.close`` (403) or the ``websocket.http.response``
  denial extension (any status, a streamed binary body, written by h11);
* after the 101 every read goes to :class:`streamcore.ws.Connection`, which
  assembles messages (``assemble=True``: linear in the message's size) and
  bounds them by ``ws_max_size`` (1009 past it);
* ``ws_max_queue`` bounds the messages waiting for ``receive()``: reading
  pauses when that many wait and resumes when half have been taken (a bound
  on reads: the read that fills the queue, 256 KiB at most, is decoded whole);
* frames sent while messages wait, or in one turn of the loop, are corked
  and written together (one ``writelines``; at once past 64 KiB): when the
  application next waits in ``receive()``, when it answers the last waiting
  message (from ``send()`` itself), or when the turn ends;
* ``send()`` waits while the transport's write buffer is above its high
  mark (``pause_writing``/``resume_writing``), reading pauses at the next
  read meanwhile (a peer that pings and never reads), and ``send()`` raises
  ``uvicorn.protocols.utils.ClientDisconnected`` (an ``OSError``, ASGI 2.4)
  once the connection is closed;
* the closing handshake completes before the transport closes: our Close
  waits for the peer's echo (``close_timeout``, 10 s, then the transport is
  aborted), the peer's Close is echoed after the replies to what came before
  it, and the server closes TCP first (RFC 6455 §7.1.1).  A protocol error
  or a keepalive timeout (1011 "keepalive ping timeout") sends its Close and
  half-closes (``write_eof``) so the Close is never lost to a reset;
* ``shutdown()`` (uvicorn's graceful exit) sends 1012 and waits for the echo.

Reads go into one buffer shared by the connections of a thread
(``asyncio.BufferedProtocol``), and ``data_received`` takes uvicorn's replay
and any transport that does not read into buffers.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, cast
from urllib.parse import unquote

import h11
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)

from .._errors import ProtocolError, StateError
from ..ws import Binary, Close, Connection, PerMessageDeflate, Ping, Pong, State, Text
from ..ws.handshake import HandshakeError, ServerHandshake, Upgrade
from ._queue import take

__all__ = ["WebSocketProtocol"]

#: bytes the event loop reads at most per read
READ_SIZE = 1 << 18
#: h11's default bound on a request head (uvicorn's ``h11_max_incomplete_event_size``)
MAX_HEAD = 16384

Message = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

# uvicorn's own classes compress with 4 KiB windows and memLevel 5 (a few
# tens of KiB of zlib state per connection instead of ~300 KiB)
_DEFLATE = PerMessageDeflate(server_max_window_bits=12, client_max_window_bits=12, mem_level=5)
# for clients whose offer cannot limit their own window (no client_max_window_bits)
_DEFLATE_CLIENT_15 = PerMessageDeflate(server_max_window_bits=12, mem_level=5)

#: ASGI extension (in ``scope["extensions"]``): a ``websocket.send`` message
#: may carry a :class:`streamcore.ws.Prepared` under this key, written as the
#: frame it shares with every connection framing it alike (a broadcast encoded
#: once per worker); its ``text``/``bytes`` stay for servers without it.  A
#: list of them is written at once, their frames joined
PREPARED_EXTENSION = "streamcore.prepared"
_INTERNAL_ERROR = b"Internal Server Error"
#: corked frames written at once past this many bytes (64 KiB: uvicorn's and
#: asyncio's default high-water mark)
_CORK_LIMIT = 1 << 16
_REASONS = {1002: "protocol error", 1007: "invalid payload data", 1009: "message too big"}

_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's read buffer, shared by its connections: each read is
    decoded in ``buffer_updated`` before the loop reads again, and the codec
    copies what it keeps."""
    buffer: memoryview | None = getattr(_read_buffers, "buffer", None)
    if buffer is None:
        buffer = _read_buffers.buffer = memoryview(bytearray(READ_SIZE))
    return buffer


# -- the handshake (kept here, small, to follow streamcore.ws.handshake) -------


def _negotiate(request: h11.Request, deflate: bool) -> Upgrade:
    """Validate an upgrade request and agree on permessage-deflate.

    Raises :class:`HandshakeError` carrying the 400/426 response."""
    upgrade = ServerHandshake(deflate=_DEFLATE if deflate else None).accept(request)
    if deflate and upgrade.deflate is None and any(
        name == b"sec-websocket-extensions" for name, _ in request.headers
    ):
        upgrade = ServerHandshake(deflate=_DEFLATE_CLIENT_15).accept(request)
    return upgrade


def _switching_protocols(
    upgrade: Upgrade, subprotocol: str | None, headers: Headers
) -> h11.InformationalResponse:
    """The 101 for ``upgrade`` with the application's subprotocol and headers."""
    response = upgrade.response
    extra = list(headers)
    if subprotocol:
        extra.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
    return h11.InformationalResponse(
        status_code=101, reason=response.reason, headers=list(response.headers.raw_items()) + extra
    )


def _subprotocols(request: h11.Request) -> list[str]:
    return [
        token.strip()
        for name, value in request.headers
        if name == b"sec-websocket-protocol"
        for token in value.decode("latin-1").split(",")
        if token.strip()
    ]


class WebSocketProtocol(asyncio.BufferedProtocol):
    """uvicorn's ``--ws`` protocol class on streamcore's WebSocket codec.

    Built by uvicorn's HTTP protocol for each upgrade request, never by hand.
    Honours ``ws_max_size``, ``ws_max_queue``, ``ws_ping_interval``,
    ``ws_ping_timeout``, ``ws_per_message_deflate``, ``root_path``, the
    ``server``/``date`` headers and the lifespan state.  ``close_timeout``
    (seconds, default 10; a subclass may change it) bounds the wait for the
    peer's Close.
    """

    # slots, not a __dict__ per connection: an idle connection's memory is what
    # the target bounds (about 1.5 KiB of the ~10 KiB a dict cost here)
    __slots__ = (
        "_buffer", "_denial", "_denial_status", "_denying", "_disconnect", "_early", "_failed", "_http",
        "_close_timeout", "_flush_soon", "_out", "_out_bytes", "_messages", "_taken", "_read_paused",
        "_reader", "_reply", "_request", "_upgrade", "_write_paused",
        "_writers", "app", "app_state", "client", "close_sent", "close_timer", "config", "conn",
        "connections", "disconnected", "handshake_complete", "logger", "loop", "max_queue",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer",
        "pong_timer", "root_path", "scheme", "scope", "server", "server_state", "tasks",
        "transport",
    )

    #: the default of :attr:`close_timeout`
    CLOSE_TIMEOUT = 10.0

    @property
    def close_timeout(self) -> float:
        """Seconds to wait for the peer's Close (a subclass may override it
        with a class attribute; an instance may set it)."""
        return self._close_timeout

    @close_timeout.setter
    def close_timeout(self, value: float) -> None:
        self._close_timeout = value

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_running_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.max_queue = max(1, int(config.ws_max_queue))
        self._close_timeout = self.CLOSE_TIMEOUT
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout

        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}

        self._http = h11.Connection(
            h11.SERVER,
            max_incomplete_event_size=config.h11_max_incomplete_event_size or MAX_HEAD,
        )
        self._request: h11.Request | None = None
        self._upgrade: Upgrade | None = None
        self._early = 0  # bytes that came after the request, before the 101
        self.conn: Any = None  # the streamcore.ws.Connection once accepted

        # where the exchange is
        self.handshake_complete = False  # accepted, refused or denied
        self.close_sent = False  # our Close (or the last byte of a refusal) is written
        self.disconnected = False  # the transport is gone
        self._failed = False  # the codec raised: what comes next is discarded
        self._denial: Headers | None = None  # a denial's head, not written yet
        self._denial_status = 0
        self._denying = False  # a denial response is under way

        # the application's side
        # waiting messages are _messages[_taken:]; a list, not a deque (a
        # deque's first block is ~600 B an idle connection would carry)
        self._messages: list[Message] = []
        self._taken = 0
        self._disconnect: Message | None = None
        self._reader: asyncio.Future[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._writers: list[asyncio.Future[None]] = []
        # frames the application sent in this turn of the loop, written in one
        # writelines when the turn ends (or at _CORK_LIMIT bytes, so the
        # transport's high-water mark still pauses a sender that never yields)
        self._out: list[Any] = []
        self._out_bytes = 0
        self._flush_soon = False  # a _flush_corked is scheduled
        # receive() handed out the last waiting message: the next frame sent
        # is the answer to it, written at once (no turn of the loop waits)
        self._reply = False

        # timers
        self.close_timer: asyncio.TimerHandle | None = None
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.pending_ping_payload: bytes | None = None
        self.ping_sent_at = 0.0

    # -- the transport's callbacks ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # the loop's thread's buffer, looked up once (not per read)
        self._buffer = _read_buffer()
        self.connections.add(self)
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        self.scheme = "wss" if is_ssl(self.transport) else "ws"

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._feed(self._buffer[:nbytes])

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself (after flushing our writes)

    def pause_writing(self) -> None:
        # reading pauses too, at the next read that comes while this lasts
        # (_handle): a write buffer that drains before the peer sends again
        # (a large echo) costs no pause_reading/resume_reading
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        writers, self._writers = self._writers, []
        for waiter in writers:
            if not waiter.done():
                waiter.set_result(None)
        if (self._read_paused and not self.disconnected and self.conn is not None
                and len(self._messages) - self._taken <= self.max_queue // 2):
            self._read_paused = False  # else receive() resumes it, as the queue empties
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self._out.clear()
        self._stop_keepalive()
        self._cancel_close_timer()
        conn = self.conn
        if conn is not None:
            try:
                conn.receive_eof()
            except (ProtocolError, StateError):
                pass  # no Close came, or the codec had already failed
        self.handshake_complete = True
        self._disconnected({"type": "websocket.disconnect", "code": 1006})
        self.resume_writing()  # waiting senders raise ClientDisconnected
        self.connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn is exiting: 1012 "service restart" to an open connection
        (the transport closes once it is echoed, or after ``close_timeout``),
        a 500 to a request the application has not answered yet."""
        self._stop_keepalive()
        if self.disconnected:
            return
        conn = self.conn
        if conn is not None and not self.close_sent and conn.state is State.OPEN:
            self._disconnected({"type": "websocket.disconnect", "code": 1012})
            self._close(1012, "")
            return
        if self._request is not None and not self.handshake_complete:
            self._send_500()
        self._cancel_close_timer()
        self._disconnected({"type": "websocket.disconnect", "code": 1006})
        self._flush()
        self.transport.close()

    # -- reading -------------------------------------------------------------------

    def _feed(self, data: bytes | memoryview) -> None:
        conn = self.conn
        if conn is None:
            self._handshake_data(data)
            return
        if self.disconnected or self._failed or conn.state is State.CLOSED:
            return  # after the closing handshake or an error: nothing more is read
        try:
            events = conn.receive_data(data)
        except ProtocolError as err:
            self._handle(err.events)
            code = err.close_code or 1002
            self._fail(code, _REASONS.get(code, ""))
            return
        self._handle(events)

    def _handle(self, events: list[Any]) -> None:
        conn = self.conn
        transport = self.transport
        if self._out:
            self._flush()  # what the application sent goes before any reply
        messages = self._messages
        closing = False
        for event in events:
            kind = type(event)
            if kind is Binary:
                if not self.close_sent:  # else the application is past websocket.close
                    messages.append({"type": "websocket.receive", "bytes": event.data})
            elif kind is Text:
                if not self.close_sent:
                    messages.append({"type": "websocket.receive", "text": event.data})
            elif kind is Ping:
                pong = conn.send_pong(event.data)
                if pong:
                    transport.write(pong)
            elif kind is Pong:
                self._pong(event.data)
            elif kind is Close:
                closing = True
                if not self.close_sent:
                    code = 1005 if event.code is None else event.code
                    self._disconnected(
                        {"type": "websocket.disconnect", "code": code, "reason": event.reason})
        # the read that fills the queue, or that comes while the transport's
        # write buffer is above its high mark, is decoded whole, then reading
        # pauses: what is read would only queue more (messages, or the Pongs
        # to a peer that pings and never reads), unbounded.  Not once our
        # Close is sent: the peer's echo must be read
        if (not self._read_paused and not self.close_sent
                and (self._write_paused or len(messages) - self._taken >= self.max_queue)):
            self._read_paused = True
            transport.pause_reading()
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
        if closing:
            if conn.echo_pending:
                transport.write(conn.data_to_send())  # after the replies above
                self.close_sent = True
            if conn.state is State.CLOSED:  # the closing handshake is complete
                self._stop_keepalive()
                self._cancel_close_timer()
                self._flush()
                transport.close()  # the server closes TCP first (RFC 6455 §7.1.1)

    # -- the opening handshake -------------------------------------------------------

    def _handshake_data(self, data: bytes | memoryview) -> None:
        if self.handshake_complete:
            return  # refused or denied: nothing more is read
        if self._request is not None:
            # bytes before our 101: h11 keeps them as trailing data for the codec
            self._early += len(data)
            self._http.receive_data(bytes(data))
            if self._early > self.config.ws_max_size and not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()
            return
        http = self._http
        try:
            http.receive_data(bytes(data))
            event = http.next_event()
            if isinstance(event, h11.Request):
                end = http.next_event()
                if not isinstance(end, h11.EndOfMessage):
                    raise h11.RemoteProtocolError("a WebSocket upgrade request has no body")
        except h11.RemoteProtocolError as exc:
            self._refuse(400, f"Invalid WebSocket upgrade request: {exc}\n".encode())
            return
        if event is h11.NEED_DATA:
            return
        if not isinstance(event, h11.Request):
            self._refuse(400, b"Invalid WebSocket upgrade request\n")
            return
        try:
            self._upgrade = _negotiate(event, bool(self.config.ws_per_message_deflate))
        except HandshakeError as exc:
            self.handshake_complete = self.close_sent = True
            self.transport.write(ServerHandshake().reject(http, exc))
            self.transport.close()
            return
        self._request = event
        self._start(event)

    def _refuse(self, status: int, body: bytes) -> None:
        # h11 cannot answer a request it could not parse: the bytes by hand
        self.handshake_complete = self.close_sent = True
        reason = {400: b"Bad Request", 500: b"Internal Server Error"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(body), body)
        )
        self.transport.close()

    def _start(self, request: h11.Request) -> None:
        target = request.target
        raw_path, _, query = target.partition(b"?")
        root = self.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root,
            "path": root + unquote(raw_path.decode("latin-1")),
            "raw_path": root.encode("ascii") + raw_path,
            "query_string": query,
            "headers": list(request.headers),
            "subprotocols": _subprotocols(request),
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, PREPARED_EXTENSION: {}},
        }
        self._messages.append({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _accept(self, message: Message) -> None:
        upgrade = self._upgrade
        assert upgrade is not None
        headers = list(self.server_state.default_headers) + list(message.get("headers") or [])
        response = _switching_protocols(upgrade, message.get("subprotocol"), headers)
        head = self._http.send(response) or b""
        trailing, _ = self._http.trailing_data
        # the handshake is over: h11's state and the parsed request (the scope
        # keeps its own copy of the headers) are not held for the connection's life
        self._http = self._request = self._upgrade = None  # type: ignore[assignment]
        self.conn = Connection(
            "server", max_message_size=self.config.ws_max_size, deflate=upgrade.deflate,
            assemble=True,
        )
        self.handshake_complete = True
        self._log("[accepted]")
        self.transport.write(head)
        if (self._read_paused and not self._write_paused
                and len(self._messages) - self._taken < self.max_queue):
            self._read_paused = False
            self.transport.resume_reading()
        self._start_keepalive()
        if trailing:
            self._feed(bytes(trailing))

    # -- the denial response (websocket.http.response) and refusals ------------------

    def _response(self, status: int, headers: Headers, body: bytes | None) -> bytes:
        """A response's head (and, when ``body`` is given, all of it) through h11."""
        names = {name.lower() for name, _ in headers}
        if b"connection" not in names:
            headers = [*headers, (b"connection", b"close")]
        if body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
            headers = [*headers, (b"content-length", b"%d" % len(body))]
        http = self._http
        out = http.send(h11.Response(status_code=status, headers=headers)) or b""
        if body is not None:
            if body:
                out += http.send(h11.Data(data=body)) or b""
            out += http.send(h11.EndOfMessage()) or b""
        return out

    def _send_500(self) -> None:
        # by hand: h11 may be in its error state (the application's headers
        # made it raise), and nothing of a response has been written yet
        if self.handshake_complete or self.disconnected:
            return
        self._refuse(500, _INTERNAL_ERROR)

    def _deny(self, message: Message) -> None:
        status = message["status"]
        if not isinstance(status, int) or not 200 <= status < 600:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in the denial response.")
        headers = list(self.server_state.default_headers) + [
            (bytes(n), bytes(v)) for n, v in message.get("headers") or []]
        self._log(str(status))
        if any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in headers):
            self.transport.write(self._response(status, headers, None))  # framing known
        else:
            self._denial = headers  # a one-piece body gets a Content-Length
        self.handshake_complete = True
        self._denying = True
        self._denial_status = status

    def _deny_body(self, message: Message) -> None:
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        http = self._http
        if self._denial is not None:
            headers, self._denial = self._denial, None
            if not more:
                self._end_denial(self._response(self._denial_status, headers, body))
                return
            self.transport.write(self._response(self._denial_status, headers, None))
        out = (http.send(h11.Data(data=body)) or b"") if body else b""
        if not more:
            out += http.send(h11.EndOfMessage()) or b""
            self._end_denial(out)
            return
        self.transport.write(out)

    def _end_denial(self, out: bytes) -> None:
        self._denying = False
        self.close_sent = True
        self.transport.write(out)
        self._disconnected({"type": "websocket.disconnect", "code": 1006})
        self.transport.close()

    # -- the application -------------------------------------------------------------

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            self.logger.exception("Exception in ASGI application\n")
            if self._denial is not None:  # nothing of the denial is written yet
                self.handshake_complete = False
            self._send_500()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif self._denial is not None:  # a denial without a body
                headers, self._denial = self._denial, None
                self._end_denial(self._response(self._denial_status, headers, b""))
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.disconnected:
            self._flush()
            self.transport.close()

    async def receive(self) -> Message:
        """The next ASGI event; ``websocket.disconnect`` once the connection is
        closed and every message before it has been taken (on every call)."""
        messages = self._messages
        while self._taken == len(messages):
            if self._disconnect is not None:
                return self._disconnect
            # the application has answered all it was given and is about to
            # wait: what it sent goes out now, in this turn of the loop (not
            # one turn later from the call_soon), one write for the batch
            if self._out:
                self._flush()
            self._reader = self.loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        message, self._taken, left = take(messages, self._taken)
        if not left:
            self._reply = True
        if (self._read_paused and left <= self.max_queue // 2 and not self._write_paused
                and not self.disconnected):
            self._read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        """Send an ASGI event (raises ClientDisconnected once the connection is closed)."""
        if (message["type"] == "websocket.send" and self._disconnect is None
                and not self._write_paused and self.conn is not None and not self.close_sent):
            self._send_data(message)  # the common case, checked first
            return
        while self._write_paused and not self.disconnected:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._writers.append(waiter)
            await waiter
        if self.disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        if not self.handshake_complete:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._forbid()
            elif kind == "websocket.http.response.start":
                self._deny(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got '{kind}'.")
        elif self._denying:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            self._deny_body(message)
        elif self.conn is None or self.close_sent or self._disconnect is not None:
            raise ClientDisconnected()
        elif kind == "websocket.send":
            self._send_data(message)
        elif kind == "websocket.close":
            code = message.get("code") or 1000
            reason = message.get("reason") or ""
            self._disconnected(
                {"type": "websocket.disconnect", "code": code, "reason": reason})
            self._close(code, reason)
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")

    def _send_data(self, message: Message) -> None:
        prepared = message.get(PREPARED_EXTENSION)
        if prepared is not None:
            # a broadcast frame built once per worker (streamcore.ws.Prepared);
            # the message's own text/bytes are what other servers send.  A
            # list of them (a client behind by several): their frames joined
            if isinstance(prepared, (list, tuple)):
                send_prepared = self.conn.send_prepared
                self._cork(b"".join([send_prepared(p) for p in prepared]))
            else:
                self._cork(self.conn.send_prepared(prepared))
            return
        data = message.get("bytes")
        if data is not None:
            frame = self.conn.send_binary(data)
        else:
            text = message.get("text")
            if text is None:
                raise RuntimeError("websocket.send needs 'bytes' or 'text'")
            frame = self.conn.send_text(text)
        self._cork(frame)

    def _cork(self, frame: Any) -> None:
        out = self._out
        out.append(frame)
        self._out_bytes += len(frame)
        if self._reply or self._out_bytes >= _CORK_LIMIT:
            # the answer to the last message received goes out now, with the
            # answers to those before it (echo, request/response: one write,
            # no scheduled flush)
            self._reply = False
            self._flush()
        elif not self._flush_soon:
            # the application sends while messages wait, or on its own: the
            # frames are written when it next waits in receive() (above) or
            # when this turn of the loop ends, whichever comes first
            self._flush_soon = True
            self.loop.call_soon(self._flush_corked)

    def _flush_corked(self) -> None:
        self._flush_soon = False
        if self._out:
            self._flush()

    def _flush(self) -> None:
        out = self._out
        if not out or self.disconnected:
            out.clear()
            return
        if len(out) == 1:
            self.transport.write(out[0])
        else:
            self.transport.writelines(out)
        out.clear()
        self._out_bytes = 0

    def _forbid(self) -> None:
        # websocket.close before websocket.accept: 403 (ASGI)
        self.handshake_complete = self.close_sent = True
        self._log("403")
        headers = list(self.server_state.default_headers)
        self.transport.write(self._response(403, headers, b""))
        self._disconnected({"type": "websocket.disconnect", "code": 1006})
        self.transport.close()

    def _log(self, outcome: str) -> None:
        scope = cast(Any, self.scope)
        self.logger.info('%s - "WebSocket %s" %s', get_client_addr(scope),
                         get_path_with_query_string(scope), outcome)

    def _disconnected(self, message: Message) -> None:
        if self._disconnect is None:
            self._disconnect = message
        self._wake_reader()

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    # -- closing -----------------------------------------------------------------------

    def _close(self, code: int, reason: str) -> None:
        """Send our Close and wait ``close_timeout`` for the echo."""
        self._flush()
        self.transport.write(self.conn.send_close(code, reason))
        self.close_sent = True
        self._stop_keepalive()
        if self._read_paused:  # the echo must be read
            self._read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_timeout_expired)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): our Close, then a half-close
        so it is delivered even while the peer is still sending."""
        conn = self.conn
        self._failed = True
        self._stop_keepalive()
        self._flush()
        try:
            if not self.close_sent:
                self.transport.write(conn.send_close(code, reason))
                self._disconnected(
                    {"type": "websocket.disconnect", "code": code, "reason": reason})
            elif conn.echo_pending:
                self.transport.write(conn.data_to_send())
        except StateError:
            pass
        self.close_sent = True
        transport = self.transport
        can_write_eof = getattr(transport, "can_write_eof", None)
        if can_write_eof is not None and can_write_eof():
            transport.write_eof()
            if self._read_paused:  # read (and discard) until the peer's end
                self._read_paused = False
                transport.resume_reading()
            if self.close_timer is None:
                self.close_timer = self.loop.call_later(
                    self.close_timeout, self._close_timeout_expired)
        else:
            self._cancel_close_timer()
            transport.close()

    def _close_timeout_expired(self) -> None:
        self.close_timer = None
        abort = getattr(self.transport, "abort", None)
        (abort or self.transport.close)()  # the peer is not answering: drop the connection

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    # -- keepalive ---------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        if self.ping_interval:
            self.ping_timer = self.loop.call_later(self.ping_interval, self._send_ping)

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None
        self.pending_ping_payload = None

    def _send_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN:
            return
        payload = os.urandom(4)
        self.pending_ping_payload = payload
        self.ping_sent_at = self.loop.time()
        self._flush()
        self.transport.write(self.conn.send_ping(payload))
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self._ping_timed_out)
        else:
            self._start_keepalive()

    def _pong(self, payload: bytes) -> None:
        if self.pending_ping_payload is None or payload != self.pending_ping_payload:
            return  # unsolicited, or the answer to an older Ping
        self.pending_ping_payload = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self._start_keepalive()

    def _ping_timed_out(self) -> None:
        self.pong_timer = None
        self.pending_ping_payload = None
        if not self.close_sent and not self.disconnected:
            self._fail(1011, "keepalive ping timeout")

