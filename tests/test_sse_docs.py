"""The SSE docs stay true: every public name is in the reference, and the
outputs the guide shows are what the encoder writes (on both twins)."""
from __future__ import annotations

import os
from types import ModuleType

from helpers import twin_fixture

from streamcore import sse as face

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sse = twin_fixture("sse")


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, "docs", *parts), encoding="utf-8") as fh:
        return fh.read()


def test_every_public_name_is_in_the_reference() -> None:
    text = read("reference", "sse.md")
    missing = [name for name in face.__all__ if f"`{name}" not in text]
    assert not missing


def test_guide_outputs_are_what_the_encoder_writes(sse: ModuleType) -> None:
    guide = read("sse.md")
    shown = {
        "b'event: token\\nid: 41\\ndata: {\"token\": \"hi\"}\\n\\n'":
            sse.encode_event('{"token": "hi"}', event="token", id="41"),
        "b': build 1234\\n\\n'": sse.encode_event(comment="build 1234"),
        "b':\\n\\n'": sse.keepalive(),
        "b': ping\\n\\n'": sse.keepalive("ping"),
        "b'retry: 5000\\n\\n'": sse.encode_events([{"retry": 5000}]),
        "b': caught up\\n\\n'": sse.encode_events([{"comment": "caught up"}]),
    }
    for literal, actual in shown.items():
        assert literal in guide, literal
        assert eval(literal) == actual, literal  # noqa: S307 - our own doc literal


def test_guide_shows_the_response_head_the_helper_gives(sse: ModuleType) -> None:
    guide = read("sse.md")
    for pair in sse.response_headers():
        assert repr(pair) in guide, pair


def test_guide_bytes_example_is_true(sse: ModuleType) -> None:
    # what the guide says of orjson output: the same bytes as the str
    guide = read("sse.md")
    assert "the same bytes as encode_event('{\"token\":\"hi\"}', event=\"token\")" in guide
    raw = b'{"token":"hi"}'  # orjson.dumps({"token": "hi"})
    assert sse.encode_event(raw, event="token") == sse.encode_event('{"token":"hi"}', event="token")
