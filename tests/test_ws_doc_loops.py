"""The WebSocket loops of README.md and docs/websocket.md, run as written on a
``[Text, Ping, Close]`` read (a client doing ``send(x); close()``).

Failed before: the state was CLOSED after that read, so the loops' replies
raised StateError (README, guide) or were dropped (the guide's Protocol).
"""
from __future__ import annotations

import os
import re

import pytest
from helpers import twin_fixture
from ws_helpers import close_payload, frame

codec = twin_fixture("ws")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Transport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close: the bytes are lost"
        self.out.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def loop_of(path: str) -> str:
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "conn.receive_data(data)" in block:
            return block
    raise AssertionError(f"no receive loop in {path}")


READ = frame(0x1, b"hi") + frame(0x9, b"p") + frame(0x8, close_payload(1000, b""))


@pytest.mark.parametrize("path", ["README.md", "docs/websocket.md"])
def test_the_documented_loop_answers_everything_before_the_close(codec, path, monkeypatch):
    import streamcore.ws

    monkeypatch.setattr(streamcore.ws, "Connection", codec.Connection)
    transport = Transport()
    namespace = {"data": READ, "transport": transport}
    exec(compile(loop_of(path), path, "exec"), namespace)
    conn = namespace["conn"]
    replies = b"".join(transport.out)
    # the Text answered (its reply frame opens with 0x81), the Pong, then the echo last
    assert replies.startswith(b"\x81")
    assert b"\x8a\x01p" in replies
    assert replies.endswith(b"\x88\x02\x03\xe8")
    assert conn.state.name == "CLOSED"
