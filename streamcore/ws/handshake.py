"""The WebSocket opening handshake (RFC 6455 §4) on h11's events.

Theory of operation
-------------------
The opening handshake is one HTTP/1.1 exchange: the client sends a ``GET``
with ``Upgrade: websocket`` (§4.1), the server answers ``101 Switching
Protocols`` (§4.2.2); everything after the blank line of the 101 is WebSocket
frames.  h11 already parses and writes HTTP/1.1, and understands that a 101
switches protocols (its ``SWITCHED_PROTOCOL`` state, with the bytes that
follow in ``Connection.trailing_data``), so these helpers work on h11 events:

* :class:`ClientHandshake` builds the upgrade :class:`h11.Request` (fresh
  ``Sec-WebSocket-Key``, version 13, subprotocols, a permessage-deflate
  offer) and validates the server's response.  It can also drive its own
  :class:`h11.Connection`: :meth:`~ClientHandshake.send` gives the bytes to
  write, :meth:`~ClientHandshake.receive_data` takes the bytes read.
* :class:`ServerHandshake` validates a :class:`h11.Request` and builds the
  101 :class:`h11.InformationalResponse`, or raises :class:`HandshakeError`
  carrying the 400/426 rejection.  A server that already speaks HTTP with an
  :class:`h11.Connection` calls :meth:`~ServerHandshake.connect` with it
  and gets one :class:`Opened`: the bytes to write (the 101), a ready
  ``Connection`` and the events of the frames that came behind the request.

Both sides end with an :class:`Upgrade`: the chosen subprotocol, the agreed
:class:`~streamcore.ws.deflate.NegotiatedDeflate`, and the bytes around the
switch; :meth:`Upgrade.connect` turns it into an :class:`Opened` (the
hand-off in one call: nothing to forget, nothing to lose).

Nothing here does I/O or keeps a socket; stats and trace are not kept (the
handshake is one request and one response).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import h11

from .._contract import field_bytes, field_pairs, short_repr
from .._errors import ProtocolError, StateError
from .deflate import EXTENSION_NAME, NegotiatedDeflate, PerMessageDeflate

if TYPE_CHECKING:
    from . import Connection
    from ._common import Event

__all__ = [
    "WEBSOCKET_VERSION",
    "HandshakeError",
    "Upgrade",
    "Opened",
    "ClientHandshake",
    "ServerHandshake",
    "accept_key",
    "parse_extensions",
    "format_extensions",
]

#: the only protocol version this module speaks (RFC 6455 §4.1, §11.6)
WEBSOCKET_VERSION = "13"

# RFC 6455 §1.3 / §4.2.2: the GUID appended to the key before hashing
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

HeaderList = Sequence[tuple[Union[str, bytes], Union[str, bytes]]]
ExtensionList = list[tuple[str, list[tuple[str, Union[str, None]]]]]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 step 5.4).

    base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")); the key is
    used as sent, without decoding it.
    """
    digest = hashlib.sha1(key.encode("latin-1") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


class HandshakeError(ProtocolError):
    """The opening handshake failed (RFC 6455 §4.1 "_Fail the WebSocket Connection_", §4.2.1).

    On the server side ``response`` is the rejection to send (400 Bad Request,
    or 426 Upgrade Required with ``Sec-WebSocket-Version: 13``) and ``body``
    its body; :meth:`ServerHandshake.reject` writes both through an
    :class:`h11.Connection`.  On the client side ``response`` is the server's
    response when it refused (``None`` when the 101 itself was invalid).
    """

    def __init__(
        self,
        message: str,
        *,
        response: h11.Response | h11.InformationalResponse | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.response = response
        self.body = body


class Opened(NamedTuple):
    """A WebSocket connection ready to run, from :meth:`Upgrade.connect`.

    Write ``data`` first, before anything else: the 101 on the server side
    (``b""`` on the client side), followed by our Close when the first frames
    were already invalid.  Then handle ``events``, the events of the frames
    that came right behind the handshake, exactly like those of a later
    ``connection.receive_data()`` (replies, then ``data_to_send()`` when
    ``connection.echo_pending``).  Feed every later read to ``connection``.

    ``error`` is ``None``, or the :class:`~streamcore.ProtocolError` those
    first frames raised: the connection is then failed (RFC 6455 §7.1.7):
    ``data`` already ends with a Close carrying ``error.close_code``,
    ``events`` is empty (what came before the violation is in
    ``error.events``), every later ``receive_data`` raises the error again;
    close the transport once ``data`` is written.
    """

    connection: Connection
    events: list[Event]
    data: bytes
    upgrade: Upgrade
    error: ProtocolError | None = None


class Upgrade(NamedTuple):
    """A successful opening handshake.

    ``subprotocol`` is the one chosen (``None``: none); ``deflate`` the agreed
    :class:`~streamcore.ws.deflate.NegotiatedDeflate` (``None``: not
    negotiated); ``extensions`` the response's ``Sec-WebSocket-Extensions``
    value (``None`` when absent).  ``data`` are bytes to send now (the 101,
    when produced through an h11 connection) and ``trailing`` the bytes that
    followed the handshake on the wire: the first WebSocket bytes.  ``role``
    is the side that made it (``"server"`` or ``"client"``).

    :meth:`connect` does the hand-off in one call; by hand it is three steps
    (write ``data``, ``Connection(role, deflate=deflate)``, feed it
    ``trailing``), and a slip loses the first frames.
    """

    request: h11.Request
    response: h11.InformationalResponse
    subprotocol: str | None
    deflate: NegotiatedDeflate | None
    extensions: str | None
    data: bytes = b""
    trailing: bytes = b""
    role: str = "server"

    def connect(
        self, *, connection_class: type[Connection] | None = None, **connection_kwargs: Any
    ) -> Opened:
        """The hand-off in one call: a ``Connection`` for :attr:`role` with the
        agreed :attr:`deflate`, fed :attr:`trailing`; see :class:`Opened` for
        what to write and in which order.

        ``connection_kwargs`` go to the ``Connection`` (``max_message_size``,
        ``max_frame_size``, ``assemble``, ``trace``); ``deflate`` is not one
        of them (the agreed one is used: a ``TypeError``).
        ``connection_class``: a ``Connection`` subclass or a given twin
        (default: ``streamcore.ws.Connection``).
        """
        return self._hand_off(self._connection(connection_class, connection_kwargs))

    def _connection(
        self, connection_class: type[Connection] | None, connection_kwargs: dict[str, Any]
    ) -> Connection:
        # built (and its keywords checked) before anything is sent or fed
        if "deflate" in connection_kwargs:
            raise TypeError("connect() uses the agreed deflate (upgrade.deflate): do not pass one")
        if connection_class is None:
            from . import Connection

            connection_class = Connection
        return connection_class(self.role, deflate=self.deflate, **connection_kwargs)

    def _hand_off(self, connection: Connection) -> Opened:
        data = self.data
        events: list[Event] = []
        error: ProtocolError | None = None
        if self.trailing:
            try:
                # a bytearray: a server Connection(views=True) unmasks in
                # place and takes only writable buffers (the copy is tiny)
                events = connection.receive_data(bytearray(self.trailing))
            except ProtocolError as exc:
                # RFC 6455 §7.1.7: fail the connection; our Close follows the 101
                error = exc
                data += connection.send_close(exc.close_code or 1002)
        return Opened(connection, events, data, self, error)


# -- header grammar ----------------------------------------------------------

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string (qdtext / quoted-pair), §5.6.3 OWS
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*)"')
_QUOTED_PAIR = re.compile(r"\\(.)")
_OWS = re.compile(r"[ \t]*")
_FULL_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def parse_extensions(value: str) -> ExtensionList:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 §9.1).

    ::

        extension-list = 1#extension
        extension      = extension-token *( ";" extension-param )
        extension-param = token [ "=" (token | quoted-string) ]

    Returns ``[(name, [(param, value or None), ...]), ...]`` with extension
    names lowercased.  A quoted value is unescaped and must then be a token
    (§9.1).  Empty list elements are skipped (RFC 9110 §5.6.1).  Raises
    :class:`ValueError` on a syntax error.
    """
    result: ExtensionList = []
    pos = 0
    end = len(value)

    def skip_ows(at: int) -> int:
        match = _OWS.match(value, at)
        assert match is not None
        return match.end()

    while True:
        pos = skip_ows(pos)
        if pos >= end:
            break
        if value[pos] == ",":  # empty element
            pos += 1
            continue
        match = _TOKEN.match(value, pos)
        if match is None:
            raise ValueError(f"expected an extension name at {pos} in {value!r}")
        name = match.group().lower()
        pos = skip_ows(match.end())
        params: list[tuple[str, str | None]] = []
        while pos < end and value[pos] == ";":
            pos = skip_ows(pos + 1)
            match = _TOKEN.match(value, pos)
            if match is None:
                raise ValueError(f"expected a parameter name at {pos} in {value!r}")
            param = match.group().lower()
            pos = skip_ows(match.end())
            param_value: str | None = None
            if pos < end and value[pos] == "=":
                pos = skip_ows(pos + 1)
                match = _TOKEN.match(value, pos)
                if match is not None:
                    param_value = match.group()
                else:
                    match = _QUOTED.match(value, pos)
                    if match is None:
                        raise ValueError(f"expected a parameter value at {pos} in {value!r}")
                    param_value = _QUOTED_PAIR.sub(r"\1", match.group(1))
                    if not _FULL_TOKEN.match(param_value):
                        raise ValueError(f"quoted parameter value is not a token in {value!r}")
                pos = skip_ows(match.end())
            params.append((param, param_value))
        result.append((name, params))
        if pos < end:
            if value[pos] != ",":
                raise ValueError(f"expected ',' or ';' at {pos} in {value!r}")
            pos += 1
    return result


def format_extensions(extensions: Iterable[tuple[str, Sequence[tuple[str, str | None]]]]) -> str:
    """Format ``[(name, [(param, value or None), ...]), ...]`` as a header value."""
    elements = []
    for name, params in extensions:
        parts = [name]
        parts.extend(p if v is None else f"{p}={v}" for p, v in params)
        elements.append("; ".join(parts))
    return ", ".join(elements)


def _values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every value of header ``name`` (h11 lowercases names), decoded as latin-1."""
    return [v.decode("latin-1") for n, v in headers if n == name]


def _tokens(values: Sequence[str]) -> list[str]:
    """The elements of a comma-separated list field (RFC 9110 §5.6.1), empty ones skipped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _joined(values: Sequence[str]) -> str:
    # RFC 9110 §5.3: several lines of a list field are one comma-joined value
    return ", ".join(values)


# Header fields the helpers write themselves, or that would break the switch
# to WebSocket (a 101 and an upgrade GET carry no body): never "extra".
_OWN_HEADERS = frozenset({b"upgrade", b"connection", b"host"})
_BODY_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")


def _header_items(headers: HeaderList) -> list[tuple[bytes, bytes]]:
    """Extra header fields as bytes, refusing the ones the handshake owns
    (``Upgrade``, ``Connection``, ``Host``, ``Sec-WebSocket-*``, body framing)
    and malformed ones, with :class:`ValueError`."""
    items = []
    for name, value in field_pairs(headers, "extra headers"):
        raw_name = field_bytes(name, "extra header name")
        raw_value = field_bytes(value, "extra header value")
        shown = short_repr(name)
        if not _FIELD_NAME.match(raw_name):
            raise ValueError(f"extra header name {shown} is not a token (RFC 9110 §5.1)")
        if not _FIELD_VALUE.match(raw_value):
            raise ValueError(f"extra header {shown} has a value with CR, LF or NUL")
        lowered = raw_name.lower()
        if lowered in _BODY_FRAMING:
            raise ValueError(
                f"extra header {shown} would break the WebSocket handshake: neither the "
                "upgrade request nor the 101 response has a body, so neither has body framing"
            )
        if lowered in _OWN_HEADERS or lowered.startswith(b"sec-websocket-"):
            raise ValueError(
                f"extra header {shown} would break the WebSocket handshake: the helpers "
                "write it themselves (use subprotocols=, deflate=, select_subprotocol=)"
            )
        items.append((raw_name, raw_value.strip(b" \t")))
    return items


# -- client ------------------------------------------------------------------


class ClientHandshake:
    """The client's side of the opening handshake (RFC 6455 §4.1).

    ``host`` is the ``Host`` header (``"example.com"`` or
    ``"127.0.0.1:8765"``), ``target`` the request target (path and query).
    ``subprotocols`` are offered in order of preference; ``deflate`` is the
    permessage-deflate offer (``None``: no extension offered).
    ``extra_headers`` are added to the request (e.g. ``Authorization``,
    ``Cookie``); the ones the handshake owns (``Host``, ``Upgrade``,
    ``Connection``, ``Sec-WebSocket-*``, ``Content-Length``,
    ``Transfer-Encoding``) are a :class:`ValueError`.

    Two ways to use it:

    * with your own HTTP layer: send :meth:`request`, then call
      :meth:`validate` with the response event;
    * with the built-in :class:`h11.Connection`: write :meth:`send`'s bytes,
      then feed what you read to :meth:`receive_data` until it returns an
      :class:`Upgrade`.

    A fresh ``Sec-WebSocket-Key`` (16 bytes from ``os.urandom``, §4.1 step 7)
    is drawn per instance; it is :attr:`key`.
    """

    def __init__(
        self,
        host: str,
        target: str = "/",
        *,
        subprotocols: Sequence[str] = (),
        deflate: PerMessageDeflate | None = None,
        origin: str | None = None,
        extra_headers: HeaderList = (),
    ) -> None:
        if deflate is not None and not isinstance(deflate, PerMessageDeflate):
            raise TypeError(
                f"ClientHandshake(deflate=...) takes a PerMessageDeflate offer, not "
                f"{type(deflate).__name__}"
            )
        for sub in subprotocols:
            if not _FULL_TOKEN.match(sub):
                raise ValueError(f"subprotocol {sub!r} is not a token (RFC 6455 §4.1 step 10)")
        self.host = host
        self.target = target
        self.subprotocols = list(subprotocols)
        self.deflate = deflate
        self.origin = origin
        self.extra_headers = _header_items(extra_headers)
        #: the Sec-WebSocket-Key sent (base64 of 16 random bytes, RFC 6455 §4.1)
        self.key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._request: h11.Request | None = None
        self._conn: h11.Connection | None = None

    def request(self) -> h11.Request:
        """The upgrade request (RFC 6455 §4.1 steps 1-12); the same object on every call."""
        if self._request is None:
            headers: list[tuple[bytes, bytes]] = [
                (b"Host", self.host.encode("idna" if not self.host.isascii() else "ascii")),
                (b"Upgrade", b"websocket"),
                (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Key", self.key.encode("ascii")),
                (b"Sec-WebSocket-Version", WEBSOCKET_VERSION.encode("ascii")),
            ]
            if self.origin is not None:
                headers.append((b"Origin", self.origin.encode("latin-1")))
            if self.subprotocols:
                headers.append(
                    (b"Sec-WebSocket-Protocol", ", ".join(self.subprotocols).encode("ascii"))
                )
            if self.deflate is not None:
                headers.append((b"Sec-WebSocket-Extensions", self.deflate.offer().encode("ascii")))
            headers.extend(self.extra_headers)
            self._request = h11.Request(method="GET", target=self.target, headers=headers)
        return self._request

    def validate(self, response: h11.InformationalResponse | h11.Response) -> Upgrade:
        """Check the server's response (RFC 6455 §4.1, "the client MUST validate").

        Raises :class:`HandshakeError` unless: the status is 101; ``Upgrade``
        is ``websocket`` and ``Connection`` contains ``Upgrade`` (both
        case-insensitive); ``Sec-WebSocket-Accept`` matches :attr:`key`; a
        chosen subprotocol is one we offered; the extensions are ones we
        offered, with parameters we accept (RFC 7692 §5).
        """
        request = self.request()
        status = response.status_code
        if status != 101:
            raise HandshakeError(
                f"the server refused the WebSocket upgrade with status {status}",
                response=response,
            )
        assert isinstance(response, h11.InformationalResponse)
        headers = response.headers
        upgrade = _tokens(_values(headers, b"upgrade"))
        if [u.lower() for u in upgrade] != ["websocket"]:
            raise HandshakeError(f"the 101 response has Upgrade {upgrade!r}, not 'websocket'")
        if "upgrade" not in (c.lower() for c in _tokens(_values(headers, b"connection"))):
            raise HandshakeError("the 101 response has no 'Upgrade' in its Connection header")
        accept = _values(headers, b"sec-websocket-accept")
        if len(accept) != 1:
            raise HandshakeError(
                f"the 101 response has {len(accept)} Sec-WebSocket-Accept headers, expected one"
            )
        if accept[0].strip() != accept_key(self.key):
            raise HandshakeError("the 101 response has a wrong Sec-WebSocket-Accept")

        # §4.1: the subprotocol must be one the client offered (or none).
        protocol = _tokens(_values(headers, b"sec-websocket-protocol"))
        subprotocol: str | None = None
        if protocol:
            if len(protocol) > 1:
                raise HandshakeError(f"the 101 response chose several subprotocols {protocol!r}")
            subprotocol = protocol[0]
            if subprotocol not in self.subprotocols:
                raise HandshakeError(
                    f"the 101 response chose subprotocol {subprotocol!r}, not offered"
                )

        # §4.1 / §9.1: every extension in use must have been offered.
        extension_values = _values(headers, b"sec-websocket-extensions")
        extensions = _joined(extension_values) if extension_values else None
        agreed: NegotiatedDeflate | None = None
        if extensions is not None:
            try:
                parsed = parse_extensions(extensions)
            except ValueError as exc:
                raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {exc}") from None
            for name, params in parsed:
                if name != EXTENSION_NAME or self.deflate is None:
                    raise HandshakeError(f"the 101 response uses extension {name!r}, not offered")
                if agreed is not None:
                    raise HandshakeError("the 101 response uses permessage-deflate twice")
                try:
                    agreed = self.deflate.accept_response(params)
                except ProtocolError as exc:
                    raise HandshakeError(str(exc)) from None
        return Upgrade(request, response, subprotocol, agreed, extensions, role="client")

    # -- driving an h11.Connection -------------------------------------------

    def send(self) -> bytes:
        """The bytes of the upgrade request, written through an internal h11 connection."""
        if self._conn is not None:
            raise StateError("send() was already called")
        self._conn = h11.Connection(h11.CLIENT)
        return self._conn.send(self.request()) + (self._conn.send(h11.EndOfMessage()) or b"")

    def receive_data(self, data: bytes) -> Upgrade | None:
        """Feed bytes read from the server; ``b""`` means the server closed.

        Returns ``None`` while the response is incomplete, then an
        :class:`Upgrade` whose ``trailing`` holds any bytes after the 101
        (the first WebSocket frames): ``upgrade.connect()`` gives the
        ``Connection`` with them fed.  Raises :class:`HandshakeError` on a
        refusal, an invalid or malformed response, or an early close.
        """
        conn = self._conn
        if conn is None:
            raise StateError("call send() before receive_data()")
        if conn.our_state is h11.SWITCHED_PROTOCOL:
            raise StateError("the handshake is complete: feed WebSocket bytes to the Connection")
        try:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return None
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code != 101:
                        continue  # e.g. 100 Continue: not the answer yet
                    upgrade = self.validate(event)
                    trailing, _closed = conn.trailing_data
                    return upgrade._replace(trailing=bytes(trailing))
                if isinstance(event, h11.Response):
                    self.validate(event)  # raises: the server refused
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    raise HandshakeError("the connection closed during the opening handshake")
                raise HandshakeError(
                    f"unexpected {type(event).__name__} during the opening handshake"
                )
        except h11.ProtocolError as exc:
            if not data:  # b"": h11 refuses the close before (or inside) the response
                raise HandshakeError("the connection closed during the opening handshake") from None
            raise HandshakeError(f"malformed HTTP response: {exc}") from None


# -- server ------------------------------------------------------------------


def _reject(
    status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> HandshakeError:
    body = (message + "\n").encode("utf-8")
    reason = {400: b"Bad Request", 426: b"Upgrade Required"}[status]
    response = h11.Response(
        status_code=status,
        reason=reason,
        headers=[
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode("ascii")),
            (b"Connection", b"close"),
            *headers,
        ],
    )
    return HandshakeError(message, response=response, body=body)


class ServerHandshake:
    """The server's side of the opening handshake (RFC 6455 §4.2).

    ``subprotocols``: the ones this server speaks; by default the first of
    the client's list (its order of preference, §4.1) that is among them is
    chosen.  ``select_subprotocol(request, offered) -> str | None``
    replaces that choice: it sees the :class:`h11.Request` (its target,
    headers: ``Origin``, cookies...) and the client's list, and returns one
    of that list or ``None`` (anything else is a :class:`ValueError`); it is
    only called when the client offered some.  ``deflate``: the
    permessage-deflate policy, what this server requires or allows
    (``None``: decline every offer); the first acceptable offer wins
    (RFC 7692 §5).  ``extra_headers`` are added to every 101; per request,
    pass ``extra_headers=`` to :meth:`accept`, :meth:`upgrade` or
    :meth:`connect` (e.g. ``Set-Cookie``).  Headers the handshake owns
    (``Upgrade``, ``Connection``, ``Sec-WebSocket-*``, body framing) are a
    :class:`ValueError`.
    """

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        deflate: PerMessageDeflate | None = None,
        select_subprotocol: Callable[[h11.Request, list[str]], str | None] | None = None,
        extra_headers: HeaderList = (),
    ) -> None:
        if deflate is not None and not isinstance(deflate, PerMessageDeflate):
            raise TypeError(
                f"ServerHandshake(deflate=...) takes a PerMessageDeflate policy, not "
                f"{type(deflate).__name__}"
            )
        self.subprotocols = list(subprotocols)
        self.deflate = deflate
        self.select_subprotocol = select_subprotocol
        self.extra_headers = _header_items(extra_headers)

    def accept(self, request: h11.Request, *, extra_headers: HeaderList = ()) -> Upgrade:
        """Validate an upgrade request and build the 101 response (RFC 6455 §4.2.1, §4.2.2).

        ``extra_headers`` are added to this 101 after the constructor's
        (``ValueError`` for the ones the handshake owns, checked first).

        Raises :class:`HandshakeError` whose ``response`` is a 400 (not a GET,
        not HTTP/1.1, no Host, no ``Upgrade: websocket``, no ``Connection:
        Upgrade``, a missing or malformed ``Sec-WebSocket-Key``, no
        ``Sec-WebSocket-Version``, a request body, a malformed
        ``Sec-WebSocket-Protocol`` or ``Sec-WebSocket-Extensions``) or a 426
        with ``Sec-WebSocket-Version: 13`` (another version, §4.2.2).
        The refusal of a HEAD request has no body (RFC 9110 §9.3.2).
        """
        extra = self.extra_headers + _header_items(extra_headers)
        try:
            return self._accept(request, extra)
        except HandshakeError as error:
            if request.method == b"HEAD":
                error.body = b""  # h11 refuses body bytes in a response to HEAD
            raise

    def _accept(self, request: h11.Request, extra: list[tuple[bytes, bytes]]) -> Upgrade:
        headers = request.headers
        # §4.2.1 step 1: "An HTTP/1.1 or higher GET request"
        if request.method != b"GET":
            raise _reject(
                400, f"a WebSocket upgrade must be a GET, not {request.method.decode('latin-1')}"
            )
        if request.http_version < b"1.1":
            raise _reject(400, "a WebSocket upgrade needs HTTP/1.1")
        # step 2: Host (h11 already requires it for HTTP/1.1)
        if not _values(headers, b"host"):
            raise _reject(400, "missing Host header")
        # step 3: Upgrade contains "websocket", case-insensitively
        if "websocket" not in (u.lower() for u in _tokens(_values(headers, b"upgrade"))):
            raise _reject(400, "missing 'Upgrade: websocket' header")
        # step 4: Connection contains the token "Upgrade", case-insensitively
        if "upgrade" not in (c.lower() for c in _tokens(_values(headers, b"connection"))):
            raise _reject(400, "missing 'Connection: Upgrade' header")
        # step 6: Sec-WebSocket-Version: 13; another version gets a 426 naming ours
        versions = _values(headers, b"sec-websocket-version")
        if not versions:
            raise _reject(400, "missing Sec-WebSocket-Version header")
        if len(versions) != 1 or versions[0].strip() != WEBSOCKET_VERSION:
            raise _reject(
                426,
                f"unsupported Sec-WebSocket-Version {_joined(versions)!r}, this server speaks 13",
                [(b"Sec-WebSocket-Version", WEBSOCKET_VERSION.encode("ascii"))],
            )
        # step 5: Sec-WebSocket-Key: base64 of 16 bytes, exactly one
        keys = _values(headers, b"sec-websocket-key")
        if len(keys) != 1:
            raise _reject(400, f"expected one Sec-WebSocket-Key header, got {len(keys)}")
        key = keys[0].strip()
        try:
            raw = base64.b64decode(key.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 16:
            raise _reject(400, f"Sec-WebSocket-Key {key!r} is not base64 of 16 bytes")
        # a GET upgrade carries no body: the bytes after it are frames
        lengths = _values(headers, b"content-length")
        if _values(headers, b"transfer-encoding") or any(v.strip() != "0" for v in lengths):
            raise _reject(400, "a WebSocket upgrade request must not have a body")

        # step 8 (optional): subprotocols, a list of tokens
        offered = _tokens(_values(headers, b"sec-websocket-protocol"))
        if any(not _FULL_TOKEN.match(p) for p in offered):
            raise _reject(400, f"malformed Sec-WebSocket-Protocol {offered!r}")
        subprotocol = self._choose_subprotocol(request, offered) if offered else None

        # step 9 (optional): extensions; the first acceptable deflate offer wins
        extension_values = _values(headers, b"sec-websocket-extensions")
        agreed: NegotiatedDeflate | None = None
        if extension_values:
            try:
                parsed = parse_extensions(_joined(extension_values))
            except ValueError as exc:
                raise _reject(400, f"malformed Sec-WebSocket-Extensions: {exc}") from None
            if self.deflate is not None:
                for name, params in parsed:
                    if name == EXTENSION_NAME:
                        agreed = self.deflate.accept_offer(params)
                        if agreed is not None:
                            break

        # §4.2.2 step 5: the 101
        response_headers: list[tuple[bytes, bytes]] = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(key).encode("ascii")),
        ]
        if subprotocol is not None:
            response_headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        extensions = agreed.response() if agreed is not None else None
        if extensions is not None:
            response_headers.append((b"Sec-WebSocket-Extensions", extensions.encode("ascii")))
        response_headers.extend(extra)
        response = h11.InformationalResponse(
            status_code=101, reason=b"Switching Protocols", headers=response_headers
        )
        return Upgrade(request, response, subprotocol, agreed, extensions)

    def _choose_subprotocol(self, request: h11.Request, offered: list[str]) -> str | None:
        if self.select_subprotocol is not None:
            chosen = self.select_subprotocol(request, list(offered))
            if chosen is not None and (not isinstance(chosen, str) or chosen not in offered):
                raise ValueError(
                    f"select_subprotocol chose {chosen!r}, which the client did not offer"
                )
            return chosen
        for sub in offered:
            if sub in self.subprotocols:
                return sub
        return None

    # -- driving an h11.Connection -------------------------------------------

    def upgrade(
        self, conn: h11.Connection, request: h11.Request, *, extra_headers: HeaderList = ()
    ) -> Upgrade:
        """Accept ``request`` (just read from ``conn``) and send the 101 through ``conn``.

        Prefer :meth:`connect`, which also makes the ``Connection``.

        Reads the request's ``EndOfMessage`` from ``conn`` if the caller has
        not, so ``conn`` may be in either state after ``next_event()`` gave
        the :class:`h11.Request`.  Returns the :class:`Upgrade` with ``data``
        (the 101's bytes: write them) and ``trailing`` (bytes the client sent
        after the request: the first WebSocket frames).  ``conn`` is then in
        h11's ``SWITCHED_PROTOCOL`` state.  Raises :class:`HandshakeError` as
        :meth:`accept` does; answer it with :meth:`reject`.
        """
        return self._send(conn, self.accept(request, extra_headers=extra_headers))

    def _send(self, conn: h11.Connection, upgrade: Upgrade) -> Upgrade:
        try:
            while conn.their_state is h11.SEND_BODY:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    raise _reject(400, "a WebSocket upgrade request must not have a body")
                if isinstance(event, h11.Data):
                    raise _reject(400, "a WebSocket upgrade request must not have a body")
        except h11.ProtocolError as exc:
            raise _reject(400, f"malformed HTTP request: {exc}") from None
        # h11 leaves MIGHT_SWITCH_PROTOCOL out of its __all__, but documents it
        if conn.their_state is not h11.MIGHT_SWITCH_PROTOCOL:  # type: ignore[attr-defined]
            raise StateError(
                f"the h11 connection is in state {conn.their_state!r}, not awaiting an upgrade"
            )
        data = conn.send(upgrade.response) or b""
        trailing, _closed = conn.trailing_data
        return upgrade._replace(data=data, trailing=bytes(trailing))

    def connect(
        self,
        conn: h11.Connection,
        request: h11.Request,
        *,
        extra_headers: HeaderList = (),
        connection_class: type[Connection] | None = None,
        **connection_kwargs: Any,
    ) -> Opened:
        """Upgrade ``request`` on ``conn`` and hand off in one call.

        :meth:`upgrade` then :meth:`Upgrade.connect`: returns an
        :class:`Opened` whose ``data`` (the 101) you write first, then its
        ``events`` (frames the client sent behind its request) to handle, and
        its ``connection`` for every later read.  ``connection_kwargs`` go to
        the ``Connection``.  Raises :class:`HandshakeError` as :meth:`accept`
        does (answer it with :meth:`reject`), and ``ValueError`` for bad
        ``extra_headers`` or a ``select_subprotocol`` choice not offered.
        The ``Connection`` is built before the 101 is sent: a bad keyword
        (``TypeError``/``ValueError``) leaves ``conn`` untouched.
        """
        accepted = self.accept(request, extra_headers=extra_headers)
        # the Connection first: a bad keyword (max_message_size="1M", an
        # unknown one) raises while conn can still send reject()'s answer
        connection = accepted._connection(connection_class, connection_kwargs)
        return self._send(conn, accepted)._hand_off(connection)

    def reject(self, conn: h11.Connection, error: HandshakeError) -> bytes:
        """The bytes of ``error``'s 400/426 response (and body) written through ``conn``."""
        if error.response is None or not isinstance(error.response, h11.Response):
            raise ValueError("this HandshakeError carries no rejection response")
        while conn.their_state is h11.SEND_BODY:
            # read the (empty) rest of the request so h11 lets us answer
            if conn.next_event() is h11.NEED_DATA:
                break
        out = conn.send(error.response) or b""
        if error.body:
            out += conn.send(h11.Data(data=error.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        return out
