"""A blocking-socket embedding of streamcore.chunked, over loopback.

A tiny HTTP/1.1 server thread streams a chunked response with trailers; the
client reads the head with h11 and the body with ChunkedDecoder.

    python examples/chunked_blocking.py
"""
from __future__ import annotations

import hashlib
import socket
import threading

import h11

from streamcore.chunked import ChunkedDecoder, ChunkedEncoder, Data, Trailers

PIECES = [b"streamcore ", b"speaks ", b"chunked " * 1000]


def serve(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        enc = ChunkedEncoder()
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        digest = hashlib.sha256()
        for piece in PIECES:
            digest.update(piece)
            conn.sendmsg(enc.encode_buffers(piece))  # header, payload, CRLF: no copy
        conn.sendall(enc.finish(trailers=[("X-Sha256", digest.hexdigest())]))


def fetch(port: int) -> tuple[bytes, dict[bytes, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        http = h11.Connection(h11.CLIENT)
        sock.sendall(http.send(h11.Request(method="GET", target="/", headers=[("Host", "x")])))
        sock.sendall(http.send(h11.EndOfMessage()))
        # Read the head with h11; stop before it parses the body.
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        head, _, rest = head.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        decoder = ChunkedDecoder()
        body = bytearray()
        trailers: dict[bytes, bytes] = {}
        data = rest
        while not decoder.done:
            for event in decoder.feed(data):
                if isinstance(event, Data):
                    body += event.data
                elif isinstance(event, Trailers):
                    trailers = dict(event.headers)
            if not decoder.done:
                data = sock.recv(65536)
                if not data:
                    decoder.eof()
        return bytes(body), trailers


def main() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=serve, args=(listener,), daemon=True)
    thread.start()
    body, trailers = fetch(listener.getsockname()[1])
    thread.join(timeout=10)
    listener.close()
    ok = trailers[b"x-sha256"] == hashlib.sha256(body).hexdigest().encode()
    print(f"received {len(body)} body bytes; trailer checksum {'matches' if ok else 'DIFFERS'}")
    assert ok and body == b"".join(PIECES)


if __name__ == "__main__":
    main()
