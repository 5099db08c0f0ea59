"""The hand-off from the opening handshake to the Connection in one call
(``ServerHandshake.connect``, ``Upgrade.connect``), per-request response
headers and the subprotocol selector that sees the request (issue 7).

Every test runs on both twins (``connection_class=codec.Connection``).
"""
from __future__ import annotations

from typing import Any

import h11
import pytest
from helpers import twin_fixture
from ws_helpers import frame

import streamcore.ws
from streamcore.ws import Binary, Close, Ping, State, Text
from streamcore.ws.deflate import NegotiatedDeflate, PerMessageDeflate
from streamcore.ws.handshake import ClientHandshake, HandshakeError, Opened, ServerHandshake

codec = twin_fixture("ws")


def server_side(
    handshake: ServerHandshake, wire: bytes, codec: Any, **kw: Any
) -> tuple[h11.Connection, Opened]:
    """An h11 server connection fed ``wire`` (the request and what follows), handed off."""
    http = h11.Connection(h11.SERVER)
    http.receive_data(wire)
    request = http.next_event()
    assert isinstance(request, h11.Request)
    return http, handshake.connect(http, request, connection_class=codec.Connection, **kw)


def test_server_and_client_hand_off_with_the_frames_behind_the_handshake(codec):
    """The client writes its first frames right behind the request, the server
    its first frames right behind the 101: neither is lost."""
    client = ClientHandshake("example.com", "/chat", subprotocols=["chat"])
    early = codec.Connection("client")
    wire = client.send() + early.send_text("early") + early.send_ping(b"p")
    _, opened = server_side(ServerHandshake(subprotocols=["chat"]), wire, codec)
    assert opened.error is None
    assert opened.data.startswith(b"HTTP/1.1 101 ") and opened.data.endswith(b"\r\n\r\n")
    assert opened.events == [Text("early"), Ping(b"p")]
    assert opened.upgrade.subprotocol == "chat" and opened.upgrade.role == "server"
    server = opened.connection
    assert isinstance(server, codec.Connection) and server.role.value == "server"
    assert server.state is State.OPEN and server.stats.frames_in == 2

    reply = server.send_text("welcome") + server.send_binary(b"\x00\x01")
    upgrade = client.receive_data(opened.data + reply)
    assert upgrade is not None and upgrade.role == "client"
    ours = upgrade.connect(connection_class=codec.Connection)
    assert ours.data == b"" and ours.error is None
    assert ours.events == [Text("welcome"), Binary(b"\x00\x01")]
    assert ours.connection.role.value == "client"


def test_hand_off_uses_the_agreed_deflate_on_both_sides(codec):
    offer = PerMessageDeflate(server_no_context_takeover=True)
    client = ClientHandshake("h", deflate=offer)
    handshake = ServerHandshake(deflate=PerMessageDeflate(client_max_window_bits=11))
    compressed_early = NegotiatedDeflate(
        server_no_context_takeover=True, client_max_window_bits=11
    )
    early = codec.Connection("client", deflate=compressed_early)
    message = "compress me " * 50
    wire = client.send() + early.send_text(message) + early.send_text(message)
    _, opened = server_side(handshake, wire, codec)
    assert opened.upgrade.deflate == compressed_early
    assert opened.events == [Text(message), Text(message)]
    server = opened.connection
    reply = server.send_text(message) + server.send_text(message)
    assert server.stats.bytes_after_compression < server.stats.bytes_before_compression
    upgrade = client.receive_data(opened.data + reply)
    assert upgrade is not None
    ours = upgrade.connect(connection_class=codec.Connection)
    assert ours.events == [Text(message), Text(message)]


def test_invalid_first_frames_fail_the_connection_with_the_close_after_the_101(codec):
    client = ClientHandshake("h")
    early = codec.Connection("client")
    # a good Text, then an unmasked frame: a server must get masked frames (1002)
    wire = client.send() + early.send_text("ok") + frame(0x1, b"bad", mask=None)
    _, opened = server_side(ServerHandshake(), wire, codec)
    assert opened.error is not None and opened.error.close_code == 1002
    assert opened.events == [] and opened.error.events == [Text("ok")]
    head, _, frames = opened.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frames == b"\x88\x02" + (1002).to_bytes(2, "big")  # our Close, unmasked
    conn = opened.connection
    assert conn.state is State.CLOSING
    with pytest.raises(streamcore.ProtocolError) as again:
        conn.receive_data(b"")
    assert again.value.close_code == 1002


def test_client_hand_off_fails_on_bad_frames_behind_the_101(codec):
    client = ClientHandshake("h")
    http = h11.Connection(h11.SERVER)
    http.receive_data(client.send())
    request = http.next_event()
    upgrade = ServerHandshake().upgrade(http, request)
    # a masked frame from the server: a client must get unmasked frames
    bad = frame(0x1, b"x")
    got = client.receive_data(upgrade.data + bad)
    assert got is not None
    opened = got.connect(connection_class=codec.Connection)
    assert opened.error is not None and opened.error.close_code == 1002
    assert opened.data[:2] == b"\x88\x82"  # our Close, masked as a client's must be


def test_hand_off_passes_the_connection_options_and_keeps_deflate_its_own(codec):
    client = ClientHandshake("h")
    early = codec.Connection("client")
    wire = client.send() + early.send_binary(b"x" * 10)
    _, opened = server_side(ServerHandshake(), wire, codec, max_message_size=5)
    assert opened.error is not None and opened.error.close_code == 1009
    events: list[Any] = []
    wire = ClientHandshake("h").send() + early.send_text("x", final=False)
    _, opened = server_side(ServerHandshake(), wire, codec, assemble=False, trace=events.append)
    assert opened.events == [Text("x", final=False)] and events == [Text("x", final=False)]
    assert opened.connection.message_in_progress is True
    upgrade = opened.upgrade
    with pytest.raises(TypeError):
        upgrade.connect(deflate=NegotiatedDeflate())


def test_a_close_behind_the_request_is_answered_like_any_other(codec):
    client = ClientHandshake("h")
    early = codec.Connection("client")
    wire = client.send() + early.send_text("bye") + early.send_close(1001, "gone")
    _, opened = server_side(ServerHandshake(), wire, codec)
    assert opened.events == [Text("bye"), Close(1001, "gone")]
    conn = opened.connection
    assert conn.echo_pending and conn.state is State.CLOSING
    reply = conn.send_text("bye too")  # replies to the events before the Close stay legal
    assert reply and conn.data_to_send() == b"\x88\x02" + (1001).to_bytes(2, "big")
    assert conn.state is State.CLOSED


def test_hand_off_without_trailing_bytes_and_the_default_twin():
    client = ClientHandshake("h")
    http = h11.Connection(h11.SERVER)
    http.receive_data(client.send())
    opened = ServerHandshake().connect(http, http.next_event())
    assert isinstance(opened.connection, streamcore.ws.Connection)
    assert opened.events == [] and opened.error is None
    assert opened.data == opened.upgrade.data and http.our_state is h11.SWITCHED_PROTOCOL


def test_a_refused_request_still_raises_handshake_error_from_connect(codec):
    http = h11.Connection(h11.SERVER)
    http.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    request = http.next_event()
    handshake = ServerHandshake()
    with pytest.raises(HandshakeError) as info:
        handshake.connect(http, request, connection_class=codec.Connection)
    assert handshake.reject(http, info.value).startswith(b"HTTP/1.1 400 ")


# -- per-request response headers ---------------------------------------------------------------


def upgrade_request(*extra: tuple[str, str]) -> tuple[ClientHandshake, h11.Connection, h11.Request]:
    client = ClientHandshake("h", extra_headers=list(extra))
    http = h11.Connection(h11.SERVER)
    http.receive_data(client.send())
    request = http.next_event()
    assert isinstance(request, h11.Request)
    return client, http, request


def test_per_request_headers_go_into_that_101_only():
    handshake = ServerHandshake(extra_headers=[("Server", "streamcore")])
    client, http, request = upgrade_request()
    opened = handshake.connect(http, request, extra_headers=[("Set-Cookie", "session=abc; HttpOnly")])
    headers = opened.upgrade.response.headers
    assert (b"server", b"streamcore") in headers
    assert (b"set-cookie", b"session=abc; HttpOnly") in headers
    assert b"\r\nSet-Cookie: session=abc; HttpOnly\r\n" in opened.data
    assert client.receive_data(opened.data) is not None  # still a valid 101
    _, _, other = upgrade_request()
    assert (b"set-cookie", b"session=abc; HttpOnly") not in handshake.accept(other).response.headers


@pytest.mark.parametrize(
    "name",
    ["Upgrade", "connection", "Sec-WebSocket-Accept", "sec-websocket-protocol",
     "Sec-WebSocket-Extensions", "Sec-WebSocket-Version", "Content-Length", "Transfer-Encoding"],
)
def test_headers_that_would_break_the_handshake_are_refused(name):
    _, http, request = upgrade_request()
    handshake = ServerHandshake()
    with pytest.raises(ValueError, match="break the WebSocket handshake"):
        handshake.accept(request, extra_headers=[(name, "x")])
    with pytest.raises(ValueError):
        handshake.connect(http, request, extra_headers=[(name.encode(), b"x")])
    assert http.our_state is h11.SEND_RESPONSE  # nothing was sent: the request can be refused
    with pytest.raises(ValueError):
        ServerHandshake(extra_headers=[(name, "x")])
    with pytest.raises(ValueError):
        ClientHandshake("h", extra_headers=[(name, "x")])


@pytest.mark.parametrize("header", [("Set-Cookie", "a=1\r\nX-Evil: 1"), ("Bad Name", "1"),
                                    ("X-Nul", "a\x00b"), ("", "v")])
def test_malformed_extra_headers_are_a_value_error(header):
    _, _, request = upgrade_request()
    with pytest.raises(ValueError):
        ServerHandshake().accept(request, extra_headers=[header])


def test_client_extra_headers_still_reach_the_request():
    _, _, request = upgrade_request(("Cookie", "a=1"), ("Authorization", "Bearer t"))
    assert (b"cookie", b"a=1") in request.headers
    assert (b"authorization", b"Bearer t") in request.headers


# -- the subprotocol selector sees the request ----------------------------------------------------


def offering(*subprotocols: str, cookie: str = "") -> tuple[h11.Connection, h11.Request]:
    client = ClientHandshake("h", "/room/7?x=1", subprotocols=list(subprotocols),
                             extra_headers=[("Cookie", cookie)] if cookie else ())
    http = h11.Connection(h11.SERVER)
    http.receive_data(client.send())
    request = http.next_event()
    assert isinstance(request, h11.Request)
    return http, request


def test_selector_sees_the_request_and_the_offered_list(codec):
    seen: list[tuple[bytes, list[tuple[bytes, bytes]], list[str]]] = []

    def select(request: h11.Request, offered: list[str]) -> str | None:
        seen.append((request.target, list(request.headers), offered))
        return "v2" if (b"cookie", b"beta=1") in request.headers else offered[0]

    handshake = ServerHandshake(select_subprotocol=select)
    http, request = offering("v1", "v2", cookie="beta=1")
    opened = handshake.connect(http, request, connection_class=codec.Connection)
    assert opened.upgrade.subprotocol == "v2"
    assert seen[0][0] == b"/room/7?x=1" and seen[0][2] == ["v1", "v2"]
    _, request = offering("v1", "v2")
    assert handshake.accept(request).subprotocol == "v1"
    # nothing offered: the selector is not asked, and no subprotocol is chosen
    _, request = offering()
    assert handshake.accept(request).subprotocol is None and len(seen) == 2


def test_selector_may_choose_none_but_only_an_offered_string():
    _, request = offering("v1")
    upgrade = ServerHandshake(select_subprotocol=lambda request, offered: None).accept(request)
    assert upgrade.subprotocol is None
    assert not [v for n, v in upgrade.response.headers if n == b"sec-websocket-protocol"]
    for bad in ("v3", b"v1", 1):
        with pytest.raises(ValueError, match="did not offer"):
            ServerHandshake(select_subprotocol=lambda request, offered, b=bad: b).accept(request)


def test_selector_cannot_change_the_offered_list():
    def greedy(request: h11.Request, offered: list[str]) -> str:
        offered.append("mine")
        return "mine"

    _, request = offering("v1")
    with pytest.raises(ValueError):
        ServerHandshake(select_subprotocol=greedy).accept(request)
