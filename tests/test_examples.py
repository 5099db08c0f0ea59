"""The examples run and do what they say (each over loopback, bounded in time)."""
from __future__ import annotations

import glob
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import h11
import httpx
import pytest
from httpx_sse import connect_sse
from websockets.sync.client import connect as ws_connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
# Examples that run on their own (server and client in one process); the
# WebSocket server/client pair is run against `websockets` in test_ws_interop.
SELF_CONTAINED = {"chunked_blocking.py", "asyncio_http_sse.py"}
EXAMPLES = [p for p in ALL if os.path.basename(p) in SELF_CONTAINED]
# Servers started here on a free port and talked to by real clients (below).
SERVERS = {"demo_asyncio.py", "trio_ws_sse.py"}
# Not examples to run: what the example servers share, exercised through them
# (the request head and the WebSocket echo loop, on asyncio and on trio).
HELPERS = {"ws_echo.py": {"asyncio_ws_server.py", "trio_ws_sse.py", "demo_asyncio.py"}}


def test_every_example_is_exercised():
    with open(os.path.join(ROOT, "tests", "test_ws_interop.py")) as fh:
        interop = fh.read()
    for path in ALL:
        name = os.path.basename(path)
        if name in HELPERS:
            continue
        exercised = name in SELF_CONTAINED or name in SERVERS
        assert exercised or f"load_example(\"{name[:-3]}\")" in interop, name


def test_every_helper_is_used_by_the_examples_named_for_it():
    for helper, users in HELPERS.items():
        for user in users:
            with open(os.path.join(ROOT, "examples", user), encoding="utf-8") as fh:
                assert f"from {helper[:-3]} import " in fh.read(), (helper, user)


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
@pytest.mark.parametrize("no_ext", ["0", "1"], ids=["cython", "python"])
def test_example_runs(path, no_ext):
    env = dict(os.environ, STREAMCORE_NO_EXTENSIONS=no_ext,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, path], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the demo on plain asyncio, and the trio example: real clients ----------

TWINS = {"cython": "0", "python": "1"}
URL = re.compile(r"(http|ws)://127\.0\.0\.1:(\d+)/(\w*)")


class Server:
    """An example run as a server on free loopback ports, with the URLs it printed."""

    def __init__(self, script: str, twin: str, interval: float = 0.02) -> None:
        env = dict(os.environ, STREAMCORE_NO_EXTENSIONS=TWINS[twin],
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "examples", script), "--port", "0",
             "--interval", str(interval)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()  # printed once listening, flushed
        if not self.banner:
            self.proc.wait(10)
            pytest.fail(f"{script} did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        # the twin asked for is the one that ran (no silent fallback to Python)
        assert f"({twin} twin)" in self.banner, self.banner
        found = URL.findall(self.banner + self.proc.stdout.readline() if "asyncio" in script
                            else self.banner)
        self.http = f"http://127.0.0.1:{found[0][1]}"
        self.ws = next(f"ws://127.0.0.1:{port}/{path}" for scheme, port, path in found
                       if scheme == "ws")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture(params=sorted(TWINS), scope="module")
def demo(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server("demo_asyncio.py", request.param)
    yield server
    code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


@pytest.fixture(params=sorted(TWINS), scope="module")
def trio_example(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server("trio_ws_sse.py", request.param)
    yield server
    code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


def read_tokens(base: str, last_event_id: str | None = None) -> list[tuple[str, str, str, int | None]]:
    """The events of one /events response, read by httpx-sse until the server ends it."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with httpx.Client(trust_env=False, timeout=10) as client:
        with connect_sse(client, "GET", base + "/events", headers=headers) as source:
            assert source.response.headers["content-type"] == "text/event-stream"
            assert source.response.headers["transfer-encoding"] == "chunked"
            return [(e.event, e.id, e.data, e.retry) for e in source.iter_sse()]


def check_sse_resume(base: str, resumed_note: bool) -> None:
    first = read_tokens(base)
    assert [e[1] for e in first] == ["0", "1", "2", "3", "4"]  # in order, then dropped
    assert {e[0] for e in first} == {"token"}
    assert first[0][3] == 500 and all(e[3] is None for e in first[1:])  # retry once
    # the reconnecting client sends the last id it saw and gets what follows
    again = read_tokens(base, last_event_id=first[-1][1])
    assert [e[1] for e in again] == ["5", "6", "7", "8", "9"]
    assert again[0][2].startswith("5 ")
    if resumed_note:
        assert all(e[2].endswith("(resumed after 4)") for e in again)


def check_ws_echo(url: str) -> None:
    with ws_connect(url, proxy=None, open_timeout=10) as ws:  # websockets offers deflate
        extensions = ws.response.headers["Sec-WebSocket-Extensions"]
        assert extensions.startswith("permessage-deflate")
        assert "server_max_window_bits=12" in extensions
        ws.send("hello, streamcore")
        assert ws.recv(timeout=10) == "hello, streamcore"
        blob = bytes(range(256)) * 400  # several frames' worth, compressible
        ws.send(blob)
        assert ws.recv(timeout=10) == blob
        ws.send("é" * 5000)
        assert ws.recv(timeout=10) == "é" * 5000
    assert ws.close_code == 1000


def test_demo_asyncio_sse_resumes_with_last_event_id(demo: Server) -> None:
    check_sse_resume(demo.http, resumed_note=True)


def test_demo_asyncio_sse_opens_with_a_comment(demo: Server) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        with client.stream("GET", demo.http + "/events") as response:
            text = b"".join(response.iter_raw()).decode()
    assert text.startswith(": stream open\n\n")
    assert ":\n\n" not in text  # tokens every 0.02 s: never silent long enough


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_demo_asyncio_sse_keepalive_after_a_second_of_silence(twin: str) -> None:
    server = Server("demo_asyncio.py", twin, interval=1.3)  # one keep-alive per gap
    try:
        with httpx.Client(trust_env=False, timeout=10) as client:
            with client.stream("GET", server.http + "/events") as response:
                raw = b""
                for piece in response.iter_raw():
                    raw += piece
                    if b"id: 1\n" in raw:
                        break
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err
    between = raw.partition(b"id: 0\n")[2].partition(b"id: 1\n")[0]
    assert between.count(b":\n\n") == 1, raw


def test_demo_asyncio_websocket_echo_with_deflate(demo: Server) -> None:
    check_ws_echo(demo.ws)


def test_demo_asyncio_chunked_report(demo: Server) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        with client.stream("GET", demo.http + "/report") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            pieces = list(response.iter_raw())
    body = b"".join(pieces)
    lines = body.decode().splitlines()
    assert lines[0].startswith("streamcore report") and lines[-1] == "done"
    assert lines[1:-1] == [f"step {n:2d}: {n * n:4d}" for n in range(1, 11)]


def test_demo_asyncio_report_trailer_is_the_checksum(demo: Server) -> None:
    # h11 as the client: it hands over the trailer fields httpx drops
    port = int(demo.http.rsplit(":", 1)[1])
    http = h11.Connection(h11.CLIENT)
    body = bytearray()
    trailers: list[tuple[bytes, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(http.send(h11.Request(method="GET", target="/report",
                                           headers=[("Host", "demo"), ("TE", "trailers")])))
        sock.sendall(http.send(h11.EndOfMessage()))
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                trailers = list(event.headers)
                break
    assert trailers == [(b"x-sha256", hashlib.sha256(body).hexdigest().encode())]


def test_demo_asyncio_page_points_at_the_websocket_port(demo: Server) -> None:
    response = httpx.get(demo.http + "/", trust_env=False, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    ws_port = demo.ws.split(":")[2].split("/")[0]
    assert f"location.hostname}}:{ws_port}/echo" in response.text
    assert 'new EventSource("/events")' in response.text


def test_trio_sse_resumes_with_last_event_id(trio_example: Server) -> None:
    check_sse_resume(trio_example.http, resumed_note=False)


def test_trio_websocket_echo_with_deflate(trio_example: Server) -> None:
    check_ws_echo(trio_example.ws)


def test_trio_refuses_a_bad_upgrade_and_unknown_paths(trio_example: Server) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        bad = client.get(trio_example.http + "/echo",
                         headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                  "Sec-WebSocket-Version": "13"})  # no Sec-WebSocket-Key
        assert bad.status_code == 400
        assert client.get(trio_example.http + "/nowhere").status_code == 404
