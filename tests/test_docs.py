"""Every public name of every face is documented in docs/reference/."""
from __future__ import annotations

import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = {
    "streamcore.chunked": "chunked.md",
    "streamcore.sse": "sse.md",
    "streamcore.ws": "ws.md",
    "streamcore.integrations.asyncio": "core.md",
    "streamcore.integrations.asgi": "core.md",
    "streamcore.integrations.redis": "core.md",
    "streamcore.integrations.uvicorn": "core.md",
}


@pytest.mark.parametrize("face,page", sorted(FACES.items()))
def test_every_public_name_is_in_the_reference(face, page):
    module = importlib.import_module(face)
    with open(os.path.join(ROOT, "docs", "reference", page)) as fh:
        text = fh.read()
    missing = [name for name in module.__all__ if f"`{name}" not in text and f"{name}(" not in text]
    assert not missing, f"{face}: undocumented {missing}"


def test_errors_are_in_the_reference():
    import streamcore

    with open(os.path.join(ROOT, "docs", "reference", "core.md")) as fh:
        text = fh.read()
    for name in streamcore.__all__:
        assert name in text, name


# The names SPEC.md's "Public API" lists, face by face (SPEC.md lives outside
# the repository, so they are written out here).
SPEC_NAMES = {
    "core.md": ["StreamError", "ProtocolError", "LimitError", "IncompleteError", "StateError"],
    "chunked.md": ["ChunkedDecoder", "ChunkedEncoder", "Data", "Trailers", "EndOfMessage"],
    "sse.md": ["SSEDecoder", "Event", "encode_event", "last_event_id"],
    "ws.md": ["Connection", "Role", "State", "Text", "Binary", "Ping", "Pong", "Close",
              "apply_mask", "accept_key", "PerMessageDeflate", "send_text", "send_binary",
              "send_ping", "send_pong", "send_close", "receive_data", "receive_eof"],
}


@pytest.mark.parametrize("page,names", sorted(SPEC_NAMES.items()))
def test_spec_public_names_are_in_the_reference(page, names):
    with open(os.path.join(ROOT, "docs", "reference", page)) as fh:
        text = fh.read()
    missing = [name for name in names if name not in text]
    assert not missing, f"docs/reference/{page}: {missing}"


def test_spec_names_exist():
    import streamcore
    from streamcore import chunked, sse, ws

    for module, page in ((streamcore, "core.md"), (chunked, "chunked.md"), (sse, "sse.md")):
        for name in SPEC_NAMES[page]:
            if name != "last_event_id":
                assert hasattr(module, name), (module.__name__, name)
    for name in ("Connection", "Role", "State", "Text", "Binary", "Ping", "Pong", "Close",
                 "apply_mask", "accept_key", "PerMessageDeflate"):
        assert hasattr(ws, name), name
