"""The WebSocket opening handshake on h11 (RFC 6455 §4).

streamcore.ws.handshake is pure Python on both twins (it works on h11's
events; there is no compiled twin), so these tests run once.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import h11
import pytest
from helpers import splits

from streamcore import ProtocolError, StateError
from streamcore.ws.deflate import NegotiatedDeflate, PerMessageDeflate
from streamcore.ws.handshake import (
    ClientHandshake,
    HandshakeError,
    ServerHandshake,
    Upgrade,
    accept_key,
    format_extensions,
    parse_extensions,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample nonce


def request(
    headers: Sequence[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    version: str = "1.1",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> h11.Request:
    """A valid upgrade request, with headers dropped (by name) or added."""
    if headers is None:
        headers = [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]
    kept = [(n, v) for n, v in headers if n.lower() not in {d.lower() for d in drop}]
    return h11.Request(method=method, target="/chat", headers=[*kept, *add], http_version=version)


def header(
    event: h11.Request | h11.Response | h11.InformationalResponse, name: bytes
) -> list[bytes]:
    return [v for n, v in event.headers if n == name]


def response(
    client: ClientHandshake,
    *,
    status: int = 101,
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
    accept: str | None = None,
) -> h11.InformationalResponse | h11.Response:
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept if accept is not None else accept_key(client.key)),
    ]
    kept = [(n, v) for n, v in headers if n.lower() not in {d.lower() for d in drop}]
    if status == 101:
        return h11.InformationalResponse(status_code=101, headers=[*kept, *add])
    return h11.Response(status_code=status, headers=[("Content-Length", "0"), *add])


# -- accept_key ------------------------------------------------------------------


def test_accept_key_matches_the_rfc_sample() -> None:
    # RFC 6455 §1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- client request ----------------------------------------------------------------


def test_client_request_has_the_mandatory_headers() -> None:
    client = ClientHandshake("example.com:8080", "/chat?x=1")
    req = client.request()
    assert req.method == b"GET" and req.target == b"/chat?x=1" and req.http_version == b"1.1"
    assert header(req, b"host") == [b"example.com:8080"]
    assert header(req, b"upgrade") == [b"websocket"]
    assert header(req, b"connection") == [b"Upgrade"]
    assert header(req, b"sec-websocket-version") == [b"13"]
    assert header(req, b"sec-websocket-key") == [client.key.encode()]
    assert header(req, b"sec-websocket-protocol") == []
    assert header(req, b"sec-websocket-extensions") == []


def test_client_key_is_base64_of_16_fresh_random_bytes() -> None:
    keys = {ClientHandshake("h").key for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


def test_client_request_offers_subprotocols_deflate_origin_and_extra_headers() -> None:
    client = ClientHandshake(
        "h",
        subprotocols=["v2.chat", "chat"],
        deflate=PerMessageDeflate(server_no_context_takeover=True),
        origin="https://example.com",
        extra_headers=[("Authorization", "Bearer x")],
    )
    req = client.request()
    assert header(req, b"sec-websocket-protocol") == [b"v2.chat, chat"]
    assert header(req, b"sec-websocket-extensions") == [
        b"permessage-deflate; server_no_context_takeover; client_max_window_bits"
    ]
    assert header(req, b"origin") == [b"https://example.com"]
    assert header(req, b"authorization") == [b"Bearer x"]


def test_client_refuses_a_subprotocol_that_is_not_a_token() -> None:
    with pytest.raises(ValueError):
        ClientHandshake("h", subprotocols=["a b"])


# -- server: valid requests ----------------------------------------------------------


def test_server_accepts_a_valid_request_with_the_rfc_accept() -> None:
    upgrade = ServerHandshake().accept(request())
    res = upgrade.response
    assert isinstance(res, h11.InformationalResponse) and res.status_code == 101
    assert header(res, b"upgrade") == [b"websocket"]
    assert header(res, b"connection") == [b"Upgrade"]
    assert header(res, b"sec-websocket-accept") == [b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
    assert header(res, b"sec-websocket-protocol") == []
    assert header(res, b"sec-websocket-extensions") == []
    assert (upgrade.subprotocol, upgrade.deflate, upgrade.extensions) == (None, None, None)


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("WebSocket", "upgrade"),
        ("WEBSOCKET", "UPGRADE"),
        ("websocket", "keep-alive, Upgrade"),
        ("h2c, websocket", "Upgrade, keep-alive"),
    ],
)
def test_server_matches_upgrade_and_connection_case_insensitively(
    upgrade: str, connection: str
) -> None:
    req = request(
        drop=["Upgrade", "Connection"], add=[("UPGRADE", upgrade), ("connection", connection)]
    )
    assert ServerHandshake().accept(req).response.status_code == 101


def test_server_reads_connection_tokens_from_several_header_lines() -> None:
    req = request(
        drop=["Connection"], add=[("Connection", "keep-alive"), ("Connection", "upgrade")]
    )
    assert ServerHandshake().accept(req).response.status_code == 101


# -- server: rejections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "match"),
    [
        (request(method="POST", add=[("Content-Length", "0")]), "must be a GET"),
        (request(version="1.0"), "HTTP/1.1"),
        (request(drop=["Upgrade"]), "Upgrade: websocket"),
        (request(drop=["Upgrade"], add=[("Upgrade", "h2c")]), "Upgrade: websocket"),
        (request(drop=["Connection"]), "Connection: Upgrade"),
        (request(drop=["Connection"], add=[("Connection", "keep-alive")]), "Connection: Upgrade"),
        (request(drop=["Connection"], add=[("Connection", "upgrades")]), "Connection: Upgrade"),
        (request(drop=["Sec-WebSocket-Version"]), "missing Sec-WebSocket-Version"),
        (request(drop=["Sec-WebSocket-Key"]), "one Sec-WebSocket-Key"),
        (request(add=[("Sec-WebSocket-Key", KEY)]), "one Sec-WebSocket-Key"),
        (
            request(drop=["Sec-WebSocket-Key"], add=[("Sec-WebSocket-Key", "not base64!")]),
            "16 bytes",
        ),
        (request(drop=["Sec-WebSocket-Key"], add=[("Sec-WebSocket-Key", "AAAA")]), "16 bytes"),
        (
            request(
                drop=["Sec-WebSocket-Key"],
                add=[("Sec-WebSocket-Key", base64.b64encode(b"x" * 17).decode())],
            ),
            "16 bytes",
        ),
        (request(drop=["Sec-WebSocket-Key"], add=[("Sec-WebSocket-Key", "")]), "16 bytes"),
        (request(add=[("Content-Length", "5")]), "body"),
        (request(add=[("Transfer-Encoding", "chunked")]), "body"),
        (request(add=[("Sec-WebSocket-Protocol", "chat, a/b")]), "Sec-WebSocket-Protocol"),
        (
            request(add=[("Sec-WebSocket-Extensions", "permessage-deflate;")]),
            "Sec-WebSocket-Extensions",
        ),
        (request(add=[("Sec-WebSocket-Extensions", "a=b")]), "Sec-WebSocket-Extensions"),
    ],
)
def test_server_rejects_with_400(req: h11.Request, match: str) -> None:
    with pytest.raises(HandshakeError, match=match) as info:
        ServerHandshake().accept(req)
    err = info.value
    assert isinstance(err, ProtocolError)
    assert isinstance(err.response, h11.Response) and err.response.status_code == 400
    assert header(err.response, b"content-length") == [str(len(err.body)).encode()]


@pytest.mark.parametrize("versions", [["8"], ["12"], ["13, 8"], ["13", "8"], ["013"]])
def test_server_rejects_another_version_with_426_naming_13(versions: list[str]) -> None:
    req = request(
        drop=["Sec-WebSocket-Version"], add=[("Sec-WebSocket-Version", v) for v in versions]
    )
    with pytest.raises(HandshakeError, match="Sec-WebSocket-Version") as info:
        ServerHandshake().accept(req)
    res = info.value.response
    assert isinstance(res, h11.Response) and res.status_code == 426
    assert header(res, b"sec-websocket-version") == [b"13"]


def test_rejection_written_through_h11_is_a_parseable_response() -> None:
    client = h11.Connection(h11.CLIENT)
    req = request(drop=["Sec-WebSocket-Version"], add=[("Sec-WebSocket-Version", "8")])
    wire = client.send(req) + client.send(h11.EndOfMessage())
    server_conn = h11.Connection(h11.SERVER)
    server_conn.receive_data(wire)
    got = server_conn.next_event()
    server = ServerHandshake()
    with pytest.raises(HandshakeError) as info:
        server.upgrade(server_conn, got)
    data = server.reject(server_conn, info.value)
    client.receive_data(data)
    res = client.next_event()
    assert isinstance(res, h11.Response) and res.status_code == 426
    body = client.next_event()
    assert isinstance(body, h11.Data) and b"13" in body.data
    assert isinstance(client.next_event(), h11.EndOfMessage)


def test_rejection_of_a_head_request_has_no_body() -> None:
    # found by fuzz/fuzz_ws_handshake.py (120 s run): reject() wrote the 400's
    # body after a HEAD request and h11 raised LocalProtocolError
    client = h11.Connection(h11.CLIENT)
    wire = client.send(request(method="HEAD")) + client.send(h11.EndOfMessage())
    server_conn = h11.Connection(h11.SERVER)
    server_conn.receive_data(wire)
    server = ServerHandshake()
    with pytest.raises(HandshakeError, match="must be a GET") as info:
        server.upgrade(server_conn, server_conn.next_event())
    assert info.value.body == b""
    client.receive_data(server.reject(server_conn, info.value))
    res = client.next_event()
    assert isinstance(res, h11.Response) and res.status_code == 400
    assert isinstance(client.next_event(), h11.EndOfMessage)


def test_reject_refuses_an_error_without_a_response() -> None:
    with pytest.raises(ValueError):
        ServerHandshake().reject(h11.Connection(h11.SERVER), HandshakeError("x"))


# -- server: subprotocols -------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "supported", "chosen"),
    [
        ("chat", ["chat"], "chat"),
        ("v2, v1", ["v1", "v2"], "v2"),  # the client's order of preference
        ("v1, v2", ["v2", "v1"], "v1"),
        ("x, y", ["z"], None),
        ("v1", [], None),
    ],
)
def test_server_chooses_the_clients_first_supported_subprotocol(
    offered: str, supported: list[str], chosen: str | None
) -> None:
    upgrade = ServerHandshake(subprotocols=supported).accept(
        request(add=[("Sec-WebSocket-Protocol", offered)])
    )
    assert upgrade.subprotocol == chosen
    expected = [] if chosen is None else [chosen.encode()]
    assert header(upgrade.response, b"sec-websocket-protocol") == expected


def test_server_merges_subprotocol_header_lines() -> None:
    req = request(add=[("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b")])
    assert ServerHandshake(subprotocols=["b"]).accept(req).subprotocol == "b"


def test_server_select_subprotocol_callback_decides() -> None:
    seen: list[tuple[bytes, list[str]]] = []

    def select(req: h11.Request, offered: list[str]) -> str | None:
        seen.append((req.target, offered))
        return offered[-1]

    upgrade = ServerHandshake(select_subprotocol=select).accept(
        request(add=[("Sec-WebSocket-Protocol", "a, b")])
    )
    assert upgrade.subprotocol == "b" and seen == [(b"/chat", ["a", "b"])]


def test_server_select_subprotocol_must_choose_an_offered_one() -> None:
    server = ServerHandshake(select_subprotocol=lambda request, offered: "zzz")
    with pytest.raises(ValueError):
        server.accept(request(add=[("Sec-WebSocket-Protocol", "a")]))


# -- server: extensions ---------------------------------------------------------------


def test_server_without_deflate_declines_every_offer() -> None:
    upgrade = ServerHandshake().accept(
        request(add=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    )
    assert upgrade.deflate is None and upgrade.extensions is None
    assert header(upgrade.response, b"sec-websocket-extensions") == []


def test_server_takes_the_first_acceptable_deflate_offer() -> None:
    offers = (
        "x-unknown; a=1, permessage-deflate; bogus, "
        "permessage-deflate; server_max_window_bits=10, permessage-deflate"
    )
    upgrade = ServerHandshake(deflate=PerMessageDeflate()).accept(
        request(add=[("Sec-WebSocket-Extensions", offers)])
    )
    assert upgrade.deflate == NegotiatedDeflate(server_max_window_bits=10)
    assert header(upgrade.response, b"sec-websocket-extensions") == [
        b"permessage-deflate; server_max_window_bits=10"
    ]


def test_server_reads_extension_offers_from_several_header_lines() -> None:
    req = request(
        add=[
            ("Sec-WebSocket-Extensions", "permessage-deflate; nope"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ]
    )
    upgrade = ServerHandshake(deflate=PerMessageDeflate()).accept(req)
    assert upgrade.deflate == NegotiatedDeflate()


def test_server_ignores_unknown_extensions() -> None:
    req = request(add=[("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")])
    upgrade = ServerHandshake(deflate=PerMessageDeflate()).accept(req)
    assert upgrade.deflate is None


def test_server_extra_headers_go_into_the_101() -> None:
    upgrade = ServerHandshake(extra_headers=[("Server", "streamcore")]).accept(request())
    assert header(upgrade.response, b"server") == [b"streamcore"]


# -- client: validating the response ---------------------------------------------------


def test_client_accepts_a_valid_101() -> None:
    client = ClientHandshake("h")
    upgrade = client.validate(response(client))
    assert isinstance(upgrade, Upgrade)
    assert upgrade.request is client.request()
    assert (upgrade.subprotocol, upgrade.deflate, upgrade.extensions) == (None, None, None)


def test_client_matches_upgrade_and_connection_case_insensitively() -> None:
    client = ClientHandshake("h")
    res = response(
        client,
        drop=["Upgrade", "Connection"],
        add=[("Upgrade", "WebSocket"), ("Connection", "keep-alive, UPGRADE")],
    )
    assert client.validate(res).response is res


@pytest.mark.parametrize(
    ("drop", "add", "accept", "match"),
    [
        (["Upgrade"], [], None, "Upgrade"),
        (["Upgrade"], [("Upgrade", "h2c")], None, "Upgrade"),
        (["Upgrade"], [("Upgrade", "websocket, h2c")], None, "Upgrade"),
        (["Connection"], [], None, "Connection"),
        (["Connection"], [("Connection", "close")], None, "Connection"),
        (["Sec-WebSocket-Accept"], [], None, "Sec-WebSocket-Accept"),
        ([], [], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "wrong Sec-WebSocket-Accept"),
        ([], [("Sec-WebSocket-Accept", "again")], None, "2 Sec-WebSocket-Accept"),
        ([], [("Sec-WebSocket-Protocol", "chat")], None, "not offered"),
        ([], [("Sec-WebSocket-Extensions", "permessage-deflate")], None, "not offered"),
        ([], [("Sec-WebSocket-Extensions", "permessage-deflate;")], None, "malformed"),
    ],
)
def test_client_rejects_an_invalid_101(
    drop: list[str], add: list[tuple[str, str]], accept: str | None, match: str
) -> None:
    client = ClientHandshake("h")
    with pytest.raises(HandshakeError, match=match) as info:
        client.validate(response(client, drop=drop, add=add, accept=accept))
    assert isinstance(info.value, ProtocolError)


def test_client_rejects_a_refusal_and_keeps_the_response() -> None:
    client = ClientHandshake("h")
    res = response(client, status=403)
    with pytest.raises(HandshakeError, match="403") as info:
        client.validate(res)
    assert info.value.response is res


def test_client_accepts_the_subprotocol_it_offered() -> None:
    client = ClientHandshake("h", subprotocols=["a", "b"])
    assert (
        client.validate(response(client, add=[("Sec-WebSocket-Protocol", "b")])).subprotocol == "b"
    )


def test_client_rejects_several_subprotocols() -> None:
    client = ClientHandshake("h", subprotocols=["a", "b"])
    with pytest.raises(HandshakeError, match="several"):
        client.validate(response(client, add=[("Sec-WebSocket-Protocol", "a, b")]))


def test_client_accepts_no_subprotocol_even_if_it_offered_some() -> None:
    client = ClientHandshake("h", subprotocols=["a"])
    assert client.validate(response(client)).subprotocol is None


def test_client_returns_the_agreed_deflate_parameters() -> None:
    client = ClientHandshake("h", deflate=PerMessageDeflate())
    res = response(
        client, add=[("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=12")]
    )
    upgrade = client.validate(res)
    assert upgrade.deflate == NegotiatedDeflate(server_max_window_bits=12)
    assert upgrade.extensions == "permessage-deflate; server_max_window_bits=12"


@pytest.mark.parametrize(
    ("extensions", "match"),
    [
        ("x-other", "not offered"),
        ("permessage-deflate, permessage-deflate", "twice"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate response"),
        ("permessage-deflate; what", "permessage-deflate response"),
    ],
)
def test_client_rejects_extensions_it_cannot_use(extensions: str, match: str) -> None:
    client = ClientHandshake("h", deflate=PerMessageDeflate())
    with pytest.raises(HandshakeError, match=match):
        client.validate(response(client, add=[("Sec-WebSocket-Extensions", extensions)]))


# -- round trips through h11 bytes ------------------------------------------------------


def handshake_over_h11(
    client: ClientHandshake,
    server: ServerHandshake,
    after_request: bytes = b"",
    after_response: bytes = b"",
) -> tuple[Upgrade, Upgrade, h11.Connection]:
    wire = client.send()
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire + after_request)
    req = conn.next_event()
    assert isinstance(req, h11.Request)
    server_side = server.upgrade(conn, req)
    client_side = client.receive_data(server_side.data + after_response)
    assert client_side is not None
    return client_side, server_side, conn


def test_round_trip_through_h11_connections() -> None:
    client = ClientHandshake(
        "127.0.0.1:1", "/ws", subprotocols=["b", "a"], deflate=PerMessageDeflate()
    )
    server = ServerHandshake(
        subprotocols=["a", "b"], deflate=PerMessageDeflate(client_no_context_takeover=True)
    )
    c, s, conn = handshake_over_h11(
        client, server, after_request=b"\x81\x85frame", after_response=b"\x81\x05hello"
    )
    assert conn.our_state is h11.SWITCHED_PROTOCOL and conn.their_state is h11.SWITCHED_PROTOCOL
    assert c.subprotocol == s.subprotocol == "b"
    assert c.deflate == s.deflate == NegotiatedDeflate(client_no_context_takeover=True)
    assert s.trailing == b"\x81\x85frame" and c.trailing == b"\x81\x05hello"
    assert s.data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    # the agreed parameters work end to end
    sent = c.deflate.session(client=True).compress(b"hi" * 50)
    assert s.deflate.session(client=False).decompress(sent, True, None) == b"hi" * 50


def test_server_upgrade_works_after_the_caller_read_end_of_message() -> None:
    client = ClientHandshake("h")
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(client.send())
    req = conn.next_event()
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    assert conn.next_event() is h11.PAUSED
    upgrade = ServerHandshake().upgrade(conn, req)
    assert client.receive_data(upgrade.data) is not None


def fresh_101(server: ServerHandshake, subprotocols: list[str]) -> tuple[ClientHandshake, bytes]:
    """A client that sent its request, and the server's 101 bytes for it."""
    client = ClientHandshake("h", subprotocols=subprotocols)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(client.send())
    req = conn.next_event()
    assert isinstance(req, h11.Request)
    return client, server.upgrade(conn, req).data


def test_client_receive_data_works_however_the_response_is_split() -> None:
    server = ServerHandshake(subprotocols=["p"])
    frames = b"\x82\x00\x81\x01a"
    _, template = fresh_101(server, ["p"])
    for pieces in splits(template + frames, seed=1):
        # every 101 has the same length (same-length keys): cut each alike
        client, data = fresh_101(server, ["p"])
        wire = data + frames
        cuts, at = [], 0
        for piece in pieces:
            cuts.append(wire[at : at + len(piece)])
            at += len(piece)
        upgrade = None
        i = 0
        for i, piece in enumerate(cuts):  # noqa: B007 (i is used after the loop)
            upgrade = client.receive_data(piece)
            if upgrade is not None:
                break
        assert upgrade is not None and upgrade.subprotocol == "p"
        # bytes after the 101 that came with it are in trailing; later reads
        # are the caller's to feed to the WebSocket connection
        assert upgrade.trailing + b"".join(cuts[i + 1 :]) == frames
        with pytest.raises(StateError):  # was RuntimeError: misuse is a StateError
            client.receive_data(b"more")


def test_client_receive_data_reports_a_refusal() -> None:
    client = ClientHandshake("h")
    client.send()
    with pytest.raises(HandshakeError, match="403") as info:
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(info.value.response, h11.Response)


def test_client_receive_data_reports_an_early_close() -> None:
    client = ClientHandshake("h")
    client.send()
    assert client.receive_data(b"HTTP/1.1 101 Switch") is None
    with pytest.raises(HandshakeError):
        client.receive_data(b"")


def test_client_receive_data_reports_malformed_http() -> None:
    client = ClientHandshake("h")
    client.send()
    with pytest.raises(HandshakeError, match="malformed"):
        client.receive_data(b"NOT HTTP AT ALL\r\n\r\n")


def test_client_receive_data_skips_100_continue() -> None:
    client = ClientHandshake("h")
    client.send()
    res = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
        + accept_key(client.key).encode()
        + b"\r\n\r\n"
    )
    assert client.receive_data(res) is not None


def test_client_send_and_receive_order_is_enforced() -> None:
    client = ClientHandshake("h")
    with pytest.raises(StateError):  # was RuntimeError: misuse is a StateError
        client.receive_data(b"x")
    client.send()
    with pytest.raises(StateError):  # was RuntimeError: misuse is a StateError
        client.send()


def test_server_upgrade_rejects_a_request_with_a_body_it_cannot_see_end_of() -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    req = conn.next_event()
    with pytest.raises(HandshakeError, match="body") as info:
        ServerHandshake().upgrade(conn, req)
    assert info.value.response.status_code == 400


# -- Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) ---------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("permessage-deflate", [("permessage-deflate", [])]),
        ("Permessage-Deflate ;  A = 1 ; b", [("permessage-deflate", [("a", "1"), ("b", None)])]),
        ('foo; x="10"', [("foo", [("x", "10")])]),
        ('foo; x="a\\bc"', [("foo", [("x", "abc")])]),
        ("a, b; c=d ,, e", [("a", []), ("b", [("c", "d")]), ("e", [])]),
        ("", []),
        (" , ", []),
    ],
)
def test_parse_extensions(value: str, parsed: list) -> None:
    assert parse_extensions(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "a;",
        "a; =1",
        "a; b=",
        'a; b="x y"',
        'a; b="unterminated',
        "a b",
        "a; b=1 2",
        "(a)",
        "a; b=c=d",
        "a;;b",
    ],
)
def test_parse_extensions_rejects_bad_syntax(value: str) -> None:
    with pytest.raises(ValueError):
        parse_extensions(value)


def test_format_extensions_round_trips() -> None:
    value = "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x"
    assert format_extensions(parse_extensions(value)) == value


# -- handshake interop with the peers' Sans-I/O handshakes --------------------------------


def serve_request(server: ServerHandshake, wire: bytes) -> Upgrade:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    req = conn.next_event()
    assert isinstance(req, h11.Request)
    return server.upgrade(conn, req)


def test_websockets_client_handshake_is_accepted_by_our_server() -> None:
    from websockets.client import ClientProtocol
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.protocol import State
    from websockets.uri import parse_uri

    peer = ClientProtocol(
        parse_uri("ws://example.com/chat"),
        subprotocols=["v2", "chat"],
        extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=11)],
    )
    peer.send_request(peer.connect())
    ours = serve_request(
        ServerHandshake(subprotocols=["chat"], deflate=PerMessageDeflate()),
        b"".join(peer.data_to_send()),
    )
    peer.receive_data(ours.data)
    assert peer.handshake_exc is None and peer.state is State.OPEN
    assert peer.subprotocol == ours.subprotocol == "chat"
    (ext,) = peer.extensions
    assert ours.deflate == NegotiatedDeflate(server_max_window_bits=11)
    assert ext.remote_max_window_bits == 11


def test_our_client_handshake_is_accepted_by_websockets_server() -> None:
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    peer = ServerProtocol(
        subprotocols=["chat"],
        extensions=[ServerPerMessageDeflateFactory(client_max_window_bits=10)],
    )
    client = ClientHandshake(
        "example.com", "/chat", subprotocols=["chat"], deflate=PerMessageDeflate()
    )
    peer.receive_data(client.send())
    (req,) = peer.events_received()
    res = peer.accept(req)
    peer.send_response(res)
    assert peer.state is State.OPEN
    upgrade = client.receive_data(b"".join(peer.data_to_send()))
    assert upgrade is not None
    assert upgrade.subprotocol == "chat"
    assert upgrade.deflate == NegotiatedDeflate(client_max_window_bits=10)


def test_wsproto_client_handshake_is_accepted_by_our_server() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request
    from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

    peer = WSConnection(ConnectionType.CLIENT)
    wire = peer.send(
        Request(
            host="example.com", target="/chat", subprotocols=["chat"], extensions=[WsprotoDeflate()]
        )
    )
    ours = serve_request(ServerHandshake(subprotocols=["chat"], deflate=PerMessageDeflate()), wire)
    peer.receive_data(ours.data)
    (event,) = list(peer.events())
    assert isinstance(event, AcceptConnection)
    assert event.subprotocol == ours.subprotocol == "chat"
    assert [e.name for e in event.extensions] == ["permessage-deflate"]
    assert ours.deflate is not None


def test_our_client_handshake_is_accepted_by_wsproto_server() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request
    from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

    peer = WSConnection(ConnectionType.SERVER)
    client = ClientHandshake(
        "example.com", "/chat", subprotocols=["chat"], deflate=PerMessageDeflate()
    )
    peer.receive_data(client.send())
    (req,) = list(peer.events())
    assert isinstance(req, Request) and req.subprotocols == ["chat"]
    wire = peer.send(
        AcceptConnection(subprotocol="chat", extensions=[WsprotoDeflate(client_max_window_bits=12)])
    )
    upgrade = client.receive_data(wire)
    assert upgrade is not None and upgrade.subprotocol == "chat"
    assert upgrade.deflate is not None and upgrade.deflate.client_max_window_bits == 12
