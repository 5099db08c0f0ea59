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
