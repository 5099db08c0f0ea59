"""Fuzz the WebSocket opening handshake (streamcore.ws.handshake) on h11.

The input is read three ways, chosen by its first byte:

* as a client's request fed to an ``h11.Connection(SERVER)`` (in pieces of
  a size taken from the second byte), then ``ServerHandshake.upgrade``;
* as a server's response fed to ``ClientHandshake.receive_data``;
* as a ``Sec-WebSocket-Extensions`` value for ``parse_extensions``.

Oracle: the call succeeds, or raises one of the documented exceptions
below; anything else is a bug.  A successful upgrade must produce a 101 the
client side accepts.  The handshake is pure Python on both twins, so there
is no twin differential here.
"""

from __future__ import annotations

import os
import sys

import atheris

# run from anywhere in a checkout: the package is the parent folder's
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    import h11

    from streamcore.ws.deflate import PerMessageDeflate
    from streamcore.ws.handshake import (
        ClientHandshake,
        HandshakeError,
        ServerHandshake,
        parse_extensions,
    )

SERVER = ServerHandshake(subprotocols=["chat", "superchat"], deflate=PerMessageDeflate())


def fuzz_server(data: bytes, step: int) -> None:
    conn = h11.Connection(h11.SERVER)
    request = None
    try:
        for start in range(0, max(len(data), 1), step):
            conn.receive_data(data[start : start + step])
            event = conn.next_event()
            if isinstance(event, h11.Request):
                request = event
                break
            if event is not h11.NEED_DATA:
                return
        if request is None:
            return
    except h11.RemoteProtocolError:
        return  # h11's documented error for malformed HTTP: not ours to judge
    try:
        opened = SERVER.connect(conn, request)
    except HandshakeError as err:
        # documented: a bad upgrade request, with the 400/426 to send
        assert err.response is not None and err.response.status_code in (400, 426)
        SERVER.reject(conn, err)
        return
    upgrade = opened.upgrade
    assert upgrade.response.status_code == 101
    assert opened.data.startswith(upgrade.data) and upgrade.data.startswith(b"HTTP/1.1 101 ")
    # the bytes behind the request were fed: either events, or a failed connection
    # whose Close follows the 101 (documented in Opened)
    if opened.error is None:
        assert opened.data == upgrade.data
    else:
        assert opened.events == [] and opened.error.close_code in (1002, 1007, 1009)
        assert opened.data[len(upgrade.data)] == 0x88


def fuzz_client(data: bytes, step: int) -> None:
    client = ClientHandshake("h", subprotocols=["chat"], deflate=PerMessageDeflate())
    client.send()
    try:
        for start in range(0, len(data), step):
            upgrade = client.receive_data(data[start : start + step])
            if upgrade is not None:
                opened = upgrade.connect()  # never raises ProtocolError: see Opened.error
                assert (opened.data == b"") is (opened.error is None)
                return
        client.receive_data(b"")  # EOF before a complete response
    except HandshakeError:
        pass  # documented: refused, invalid or malformed response, early close


def fuzz_extensions(data: bytes) -> None:
    try:
        parse_extensions(data.decode("latin-1"))
    except ValueError:
        pass  # documented: a syntax error in the header value


def TestOneInput(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, step, body = data[0] % 3, data[1] % 64 + 1, data[2:]
    if mode == 0:
        fuzz_server(body, step)
    elif mode == 1:
        fuzz_client(body, step)
    else:
        fuzz_extensions(body)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
