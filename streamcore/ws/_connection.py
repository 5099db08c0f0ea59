"""The WebSocket connection: states, the close handshake, sending (RFC 6455 §5-§7).

Theory of operation: the codec twin's ``Receiver`` turns bytes into events
and raises ``ProtocolError`` (with the close code) on any violation; its
``Encoder`` turns calls into frames.  This class, shared by both twins, owns
what is not per byte: the state table below, the close handshake, the
deflate session, stats and trace.

States and what is legal in each (``sent``: we sent our Close, or its
echo; ``received``: the peer's Close arrived)::

    state    sent  received  send_text/binary/ping  send_pong  send_close
    OPEN     no    no        yes                    yes        yes -> CLOSING
    CLOSING  yes   no        no (StateError)        yes        StateError
    CLOSING  no    yes       yes                    yes        yes -> CLOSED
    CLOSED   yes   yes       no                     b""        StateError
    CLOSED   after receive_eof(): every send is a StateError

    OPEN    --send_close()----------------------------> CLOSING (wait for the peer's)
    OPEN    --recv Close: the echo is queued----------> CLOSING (echo_pending)
    CLOSING --recv Close (after ours)-----------------> CLOSED
    CLOSING --data_to_send() or send_close() (echo)---> CLOSED
    any     --receive_eof()---------------------------> CLOSED

One output channel for every byte that must be written: each ``send_*``
returns its frame, and ``data_to_send()`` returns what the connection queued
by itself (the echo of the peer's Close, RFC 6455 §5.5.1).  ``echo_pending``
says whether it holds something, and the state stays CLOSING until the echo
has been taken, so "close the transport once ``state is State.CLOSED``" never
loses it.  Events come back in the order they arrived, and everything before
the peer's Close can still be answered: a ``[Text, Ping, Close]`` read lets
you send the reply to the Text and the Pong (legal until our own Close is
sent, §5.5.1 "MAY delay sending a Close frame until its current message is
sent"), then write ``data_to_send()``.  A Ping that arrives while we wait for
the peer's Close (we sent ours) is answered with ``send_pong`` (§5.5.2).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .._contract import Buffer, byte_view, check_limit, raise_again
from .._errors import IncompleteError, ProtocolError, StateError
from .._trace import safe_trace
from ._common import (
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Binary,
    Close,
    ConnectionStats,
    Event,
    Ping,
    Pong,
    Role,
    State,
    Text,
    close_code_is_valid,
    exact_text,
)
from .deflate import DeflateSession, NegotiatedDeflate, PerMessageDeflate

#: Default message size limit: 1 MiB, as websockets (``max_size=2**20``) and
#: aiohttp's ``max_msg_size`` (4 MiB) bound messages by default; a bigger
#: message needs the caller to say so (or stream with ``assemble=False``).
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20


def _unmaskable_view(data: Any) -> Buffer:
    """``byte_view`` for a server with ``views=True``, which unmasks payloads
    in the buffer fed: a writable buffer that is not contiguous (which
    ``byte_view`` would copy to read-only ``bytes``) is copied once into a
    ``bytearray``, so it is taken like any writable buffer and its views are
    of that copy; every other buffer goes through ``byte_view`` (the
    Receiver refuses a read-only one)."""
    if type(data) is not bytearray:
        try:
            view = data if type(data) is memoryview else memoryview(data)
        except TypeError:
            return byte_view(data)  # its TypeError, the same for every connection
        if not view.c_contiguous and not view.readonly:
            return bytearray(view)  # the bytes in order, as tobytes() gives them
    return byte_view(data)


def _session_of(deflate: object, client: bool) -> Any:
    """The deflate session of a new connection; only agreed parameters run one."""
    if isinstance(deflate, NegotiatedDeflate):
        return deflate.session(client=client)
    if isinstance(deflate, PerMessageDeflate):
        raise TypeError(
            "Connection(deflate=...) takes the NegotiatedDeflate both sides agreed, not the "
            "PerMessageDeflate policy or offer (the agreement may differ from it, and the peer "
            "would then fail a message with 1007): pass upgrade.deflate from "
            "ServerHandshake.accept()/upgrade() or ClientHandshake.validate()/receive_data(), "
            "or use upgrade.connect(), or PerMessageDeflate.accept_offer()/accept_response()"
        )
    raise TypeError(
        f"Connection(deflate=...) takes a NegotiatedDeflate or None, not {type(deflate).__name__}"
    )


class Prepared:
    """A data message framed once and sent on many server connections (a
    broadcast): ``Connection.send_prepared(message)``.

    ``data``: a ``str`` (a Text message) or any buffer (Binary).  Every
    server connection that frames it alike gets the same ``bytes`` object:
    uncompressed, or compressed with no context takeover on the server's
    side (``server_no_context_takeover`` agreed) and the same window bits,
    level and memory level.  Each such frame is built on its first use and
    kept, so a message sent to a thousand connections is encoded (and
    compressed) once per set of parameters.  A connection that cannot share
    it (a client, which masks every frame with a fresh key, or a server
    compressing with context takeover, whose output depends on what it sent
    before) frames the message itself, as ``send_text``/``send_binary``
    would.
    """

    __slots__ = ("data", "text", "_payload", "_frames")

    def __init__(self, data: str | Buffer) -> None:
        if isinstance(data, str):
            self.text = True
            self.data: str | bytes = str(data)
            self._payload = self.data.encode("utf-8")
        else:
            self.text = False
            self._payload = bytes(byte_view(data))  # lengths in bytes, any buffer kind
            self.data = self._payload
        # (window bits, level, mem level) or None (uncompressed) ->
        # (frame, payload bytes on the wire)
        self._frames: dict[tuple[int, int, int] | None, tuple[bytes, int]] = {}

    def _frame(self, key: tuple[int, int, int] | None, encoder: Any) -> tuple[bytes, int]:
        # encoder: the twin's Encoder class; a server's frames are unmasked,
        # so one built by a throwaway encoder is every server's frame
        built = self._frames.get(key)
        if built is None:
            opcode = OP_TEXT if self.text else OP_BINARY
            if key is None:
                payload = self._payload
            else:
                bits, level, mem = key
                payload = DeflateSession(local_bits=bits, local_no_context_takeover=True,
                                         compress_level=level, mem_level=mem).compress(self._payload)
            built = self._frames[key] = (encoder(False).frame(opcode, payload, True, key is not None),
                                         len(payload))
        return built

    def __repr__(self) -> str:
        kind = "text" if self.text else "binary"
        return f"<Prepared {kind} message, {len(self._payload)} bytes>"


class ConnectionBase:
    """A Sans-I/O WebSocket connection for one side (RFC 6455), after the
    opening handshake.

    ``role``: ``"client"`` or ``"server"`` (or :class:`Role`).  Clients mask
    every frame they send with a fresh key from ``os.urandom``; servers
    require masked frames and clients unmasked ones (§5.1).

    ``max_message_size`` (default 1 MiB, None: no limit) bounds a message's
    payload (inflated size with permessage-deflate), checked on each frame's
    announced length so nothing is buffered past it; ``max_frame_size``
    (default None) bounds each frame independently.  Both raise
    :class:`~streamcore.LimitError` with close code 1009.

    ``deflate``: the :class:`~streamcore.ws.NegotiatedDeflate` the handshake
    agreed (``upgrade.deflate``), or None; a :class:`PerMessageDeflate` (the
    policy or offer) is a TypeError.
    ``assemble=False`` streams messages: each read's share of a data frame's
    payload is delivered at once (inflated first when compressed) as
    ``Text``/``Binary`` with ``final=False``, the message's last piece with
    ``final=True``; text is decoded incrementally (a code point split across
    reads or frames comes out whole in the later piece), and a piece with no
    data is delivered only when it is the final one.  Memory is then bounded
    by one read, not by the frame or message size.
    ``views=True`` (zero-copy receive, for echo and proxies): every
    ``Binary.data`` is a ``memoryview``, valid until the next
    ``receive_data`` call.  A whole unfragmented uncompressed binary message
    in one read, and with ``assemble=False`` each uncompressed binary piece,
    is a view into the buffer fed, not a copy; a server unmasks it there in
    place, so a server's ``receive_data`` then takes only a writable buffer
    (TypeError otherwise) and leaves the payload bytes unmasked in it (a
    writable buffer that is not contiguous is copied once, its views are of
    that copy, and it is left as it was).
    Other binary messages (assembled from fragments, compressed) are views
    of a copy; text, control frames and close reasons are unchanged.
    ``trace``: called with every event received or sent.
    """

    _Receiver: ClassVar[Any]
    _Encoder: ClassVar[Any]

    def __init__(
        self,
        role: str | Role,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        deflate: Any = None,
        assemble: bool = True,
        views: bool = False,
        trace: Callable[[Event], Any] | None = None,
    ) -> None:
        self.role = Role(role)
        client = self.role is Role.CLIENT
        self._session = _session_of(deflate, client) if deflate is not None else None
        self._rx = self._Receiver(
            client,
            check_limit("max_message_size", max_message_size),
            check_limit("max_frame_size", max_frame_size),
            bool(assemble),
            self._session,
            views=bool(views),
        )
        self._tx = self._Encoder(client)
        # what receive_data hands the Receiver for a buffer other than bytes
        self._flat = _unmaskable_view if views and not client else byte_view
        self._state = State.OPEN
        self._close_sent = False  # our Close (or the echo of the peer's) has been framed
        self._close_seen = False  # the peer's Close has been handled here
        self._echo: tuple[int | None, bytes] | None = None  # the queued echo of a Close
        self._eof = False
        self._sending_fragmented = 0  # opcode of a message we are sending in fragments
        self._trace = safe_trace(trace)

    # -- receiving ----------------------------------------------------------

    @property
    def state(self) -> State:
        """:class:`State` of the connection (see the state table above)."""
        return self._state

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer; return the events they complete.

        Raises :class:`~streamcore.ProtocolError` (with ``close_code`` and
        ``offset``) on any violation, and again on every later call: send
        ``send_close(err.close_code)`` and close the transport.  The events
        completed by this call before the violation are in ``err.events``.  Bytes after
        the peer's Close are ignored.  After ``receive_eof``: StateError.
        """
        if self._eof:
            raise StateError("receive_data() after receive_eof()")
        try:
            events: list[Event] = self._rx.feed(data if type(data) is bytes else self._flat(data))
        except ProtocolError as exc:
            if self._trace is not None:
                for event in getattr(exc, "events", ()):
                    self._trace(event)
            raise
        if self._rx.close_received and not self._close_seen:
            self._peer_closed(events)
        if self._trace is not None:
            for event in events:
                self._trace(event)
        return events

    def _peer_closed(self, events: list[Event]) -> None:
        self._close_seen = True
        close = events[-1]  # the Receiver stops at the Close, so it is last
        assert isinstance(close, Close)
        if self._close_sent:
            self._state = State.CLOSED  # the closing handshake is complete
            return
        # RFC 6455 §5.5.1: echo the status code received; CLOSING until taken
        payload = b"" if close.code is None else close.code.to_bytes(2, "big")
        self._echo = (close.code, payload)  # framed when taken
        self._state = State.CLOSING

    @property
    def echo_pending(self) -> bool:
        """True while the echo of the peer's Close waits in ``data_to_send()``
        (write it before closing the transport; the state is CLOSING until it
        has been taken)."""
        return self._echo is not None

    @property
    def message_in_progress(self) -> bool:
        """True between a received data frame with FIN=0 and its message's final
        frame: a fragmented message has begun and not ended (with
        ``assemble=False``, after a ``final=False`` event and before the
        ``final=True`` one).  A :class:`Close` that arrives while it is True
        came in the middle of a message."""
        return self._rx.in_message  # type: ignore[no-any-return]

    def receive_eof(self) -> None:
        """The transport ended.  State becomes CLOSED.

        Raises :class:`~streamcore.IncompleteError` (close code 1006,
        "abnormal closure", never sent on the wire) when it ended inside a
        frame or message, or before the peer's Close frame; after a
        :class:`~streamcore.ProtocolError` it raises that error again (a copy
        with no events), as the chunked and SSE decoders' ``eof()`` do;
        calling it twice is a StateError.
        """
        if self._eof:
            raise StateError("receive_eof() called twice")
        self._eof = True
        self._state = State.CLOSED
        # a pending echo stays in data_to_send(): the read side may have ended
        # (a half-close) while the write side still carries it
        rx = self._rx
        if rx.error is not None:
            raise raise_again(rx.error)
        if rx.close_received:
            return
        where = "inside a frame or message" if not rx.idle else "before the closing handshake"
        raise IncompleteError(f"the connection ended {where}", offset=rx.offset,
                              close_code=1006)

    def data_to_send(self) -> bytes:
        """Bytes the connection queued by itself (the echo of the peer's Close);
        write them to the transport after the replies you sent for the events
        before it.  Returns b"" when there is nothing.  Taking the echo
        completes the closing handshake: the state becomes CLOSED."""
        echo = self._echo
        if echo is None:
            return b""
        self._echo = None
        self._close_sent = True
        self._state = State.CLOSED
        if self._trace is not None:
            self._trace(Close(echo[0], ""))
        return self._tx.frame(OP_CLOSE, echo[1])  # type: ignore[no-any-return]

    # -- sending ------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        # data frames and Pings: legal until our Close (or the echo) is sent
        if self._eof:
            raise StateError(f"{what} after receive_eof(): the transport has ended")
        if self._close_sent:
            raise StateError(f"{what} after our Close was sent (RFC 6455 §5.5.1)")

    def send_text(self, text: str, *, final: bool = True) -> bytes:
        """Frame a text message (RFC 6455 §5.6).  ``final=False`` sends a
        fragment; the message goes on with more ``send_text`` calls until one
        with ``final=True`` (§5.4).  Compressed when permessage-deflate is on
        and the message is sent whole."""
        self._check_open("send_text()")
        if final and not self._sending_fragmented and self._session is None:
            # the encoder takes a str subclass's text and refuses the rest
            out: bytes = self._tx.text(text)
        else:
            if type(text) is not str:
                text = exact_text(text)  # a str subclass: the text it holds; else TypeError
            if final and not self._sending_fragmented:
                out = self._compressed(OP_TEXT, text.encode("utf-8"))
            else:
                out = self._fragment(OP_TEXT, text.encode("utf-8"), final)
        if self._trace is not None:  # traced once framed: what was really sent
            self._trace(Text(exact_text(text), final))
        return out

    def send_binary(self, data: Buffer, *, final: bool = True) -> bytes:
        """Frame a binary message (RFC 6455 §5.6); ``final`` as in send_text."""
        self._check_open("send_binary()")
        if type(data) is not bytes:
            data = byte_view(data)  # any buffer; lengths in bytes
        if final and not self._sending_fragmented:
            if self._session is None:
                out: bytes = self._tx.frame(OP_BINARY, data)
            else:
                out = self._compressed(OP_BINARY, bytes(data))
        else:
            out = self._fragment(OP_BINARY, data, final)
        if self._trace is not None:  # traced once framed: what was really sent
            self._trace(Binary(bytes(data), final))
        return out

    def send_prepared(self, message: Prepared) -> bytes:
        """Frame a :class:`Prepared` message: on a server connection, the
        frame it shares with every connection framing it alike (built on
        first use); on any other, a frame of its own (see :class:`Prepared`).
        Counted, traced and state-checked as ``send_text``/``send_binary``;
        a StateError while a fragmented message is being sent."""
        if not isinstance(message, Prepared):
            raise TypeError(f"send_prepared() takes a Prepared message, not {type(message).__name__}")
        self._check_open("send_prepared()")
        if self._sending_fragmented:
            raise StateError("send_prepared() while a fragmented message is being sent")
        session = self._session
        if self.role is Role.CLIENT or (session is not None and not session.local_no_context_takeover):
            data = message.data
            if isinstance(data, str):  # a Text message (message.text)
                return self.send_text(data)
            return self.send_binary(data)
        if session is None:
            frame, _ = message._frame(None, self._Encoder)
        else:
            key = (session.local_bits, session.compress_level, session.mem_level)
            frame, wire = message._frame(key, self._Encoder)
            session.bytes_before_compression += len(message._payload)
            session.bytes_after_compression += wire
        self._tx.count_message(len(frame))
        if self._trace is not None:
            data = message.data
            self._trace(Text(data, True) if isinstance(data, str) else Binary(data, True))
        return frame

    def _compressed(self, opcode: int, payload: bytes) -> bytes:
        # RFC 7692 §6: RSV1 on the (only) frame of a compressed message
        assert self._session is not None
        out: bytes = self._tx.frame(opcode, self._session.compress(payload), True, True)
        return out

    def _fragment(self, opcode: int, payload: Buffer, final: bool) -> bytes:
        # §5.4: the first fragment has the opcode, the rest are continuations.
        # Fragments are sent uncompressed (a per-message choice, RFC 7692 §6).
        if self._sending_fragmented:
            if self._sending_fragmented != opcode:
                raise StateError("a fragmented message continues with the same kind of data")
            opcode = OP_CONT
        else:
            self._sending_fragmented = opcode
        if final:
            self._sending_fragmented = 0
        out: bytes = self._tx.frame(opcode, payload, final)
        return out

    def _control(self, opcode: int, data: Buffer) -> bytes:
        if type(data) is not bytes:
            data = byte_view(data)  # any buffer; the 125-byte rule counts bytes
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload must be 125 bytes or less (RFC 6455 §5.5)")
        return self._tx.frame(opcode, data)  # type: ignore[no-any-return]

    def send_ping(self, data: Buffer = b"") -> bytes:
        """Frame a Ping (RFC 6455 §5.5.2); ``data`` at most 125 bytes."""
        self._check_open("send_ping()")
        out = self._control(OP_PING, data)
        if self._trace is not None:
            self._trace(Ping(bytes(data)))
        return out

    def send_pong(self, data: Buffer = b"") -> bytes:
        """Frame a Pong (RFC 6455 §5.5.3), e.g. ``send_pong(ping.data)``.

        Legal in every state: a Ping that arrives after we sent our Close is
        still answered (§5.5.2); once both Closes are exchanged it returns
        ``b""`` (the peer reads nothing after its Close).  After
        ``receive_eof()``: StateError."""
        if self._eof:
            raise StateError("send_pong() after receive_eof(): the transport has ended")
        if self._state is State.CLOSED:
            # a Ping that came in the same read as the peer's Close, after
            # ours: the peer reads nothing more, so there is nothing to send
            return b""
        out = self._control(OP_PONG, data)
        if self._trace is not None:
            self._trace(Pong(bytes(data)))
        return out

    def send_close(self, code: int | None = 1000, reason: str = "") -> bytes:
        """Frame a Close (RFC 6455 §5.5.1, §7.4) and move to CLOSING.

        ``code=None`` sends no status code (and then no reason).  Codes that
        must not be sent (1004-1006, 1015, outside 1000-4999...) and reasons
        longer than 123 UTF-8 bytes raise ValueError.  After the peer's Close
        this returns the echo (with your code in place of the peer's) unless
        ``data_to_send()`` already gave it out (and the state becomes CLOSED);
        a second Close is a StateError.
        """
        if code is None:
            if reason:
                raise ValueError("a close reason needs a close code")
            payload = b""
        else:
            if not close_code_is_valid(code):
                raise ValueError(f"close code {code} must not be sent (RFC 6455 §7.4)")
            payload = code.to_bytes(2, "big") + str.encode(exact_text(reason, "send_close() reason"), "utf-8")
            if len(payload) > MAX_CONTROL_PAYLOAD:
                raise ValueError("close reason must be 123 UTF-8 bytes or less (RFC 6455 §5.5)")
        if self._eof:
            raise StateError("send_close() after receive_eof(): the transport has ended")
        if self._close_sent:
            raise StateError("send_close(): a Close was already sent")
        self._close_sent = True
        if self._echo is not None:
            self._echo = None  # this Close goes out in place of the queued echo
            self._state = State.CLOSED
        else:
            self._state = State.CLOSING
        if self._trace is not None:
            self._trace(Close(code, reason))
        return self._tx.frame(OP_CLOSE, payload)  # type: ignore[no-any-return]

    # -- observability --------------------------------------------------------

    @property
    def stats(self) -> ConnectionStats:
        """Running totals: bytes, frames and messages each way, and the
        permessage-deflate counters (see :class:`ConnectionStats`)."""
        rx, tx, s = self._rx, self._tx, self._session
        if s is None:
            return ConnectionStats(rx.bytes_in, tx.bytes_out, rx.frames_in, tx.frames_out,
                                   rx.messages_in, tx.messages_out)
        return ConnectionStats(
            rx.bytes_in, tx.bytes_out, rx.frames_in, tx.frames_out,
            rx.messages_in, tx.messages_out,
            s.bytes_before_compression, s.bytes_after_compression,
            s.bytes_before_decompression, s.bytes_after_decompression,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.Connection {self.role.value} {self._state.name}>"
