"""Written as tests/protocols/conftest.py into the extracted uvicorn sdist by
tests/uvicorn_suite/run.py: uvicorn's WebSocket tests then take streamcore's
class as their ``ws_protocol_cls`` (this fixture overrides the one in the
sdist's tests/conftest.py, which is parametrised over uvicorn's classes)."""
from __future__ import annotations

import pytest

from streamcore.integrations.uvicorn import WebSocketProtocol


@pytest.fixture(params=[pytest.param(WebSocketProtocol, id="streamcore")])
def ws_protocol_cls(request: pytest.FixtureRequest) -> type[WebSocketProtocol]:
    return request.param
