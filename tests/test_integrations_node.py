"""The integrations against Node's clients over 127.0.0.1: `ws` against the
asyncio WebSocket server and against uvicorn running our ``--ws`` class (on
both codec twins), `eventsource` against the ASGI SSE response on uvicorn.  The packages are installed from the npm registry into build/node
(versions pinned in tests/node/package.json)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
from helpers import twin_fixture
from uvicorn_helpers import serving

from streamcore.integrations import asgi
from streamcore.integrations import asyncio as adapter
from streamcore.integrations import uvicorn as integration
from streamcore.ws import PerMessageDeflate

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(os.path.dirname(HERE), "build", "node")

ws = twin_fixture("ws")


@pytest.fixture
def twin(ws: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The uvicorn protocol on each codec twin."""
    monkeypatch.setattr(integration, "Connection", ws.Connection)
    return ws


@pytest.fixture(scope="module")
def node() -> dict[str, str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed")  # the CI machine has it
    os.makedirs(NODE_DIR, exist_ok=True)
    shutil.copy(os.path.join(HERE, "node", "package.json"), NODE_DIR)
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")) or not os.path.isdir(
        os.path.join(NODE_DIR, "node_modules", "eventsource")
    ):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR],
                       check=True, capture_output=True, timeout=300)
    return {**os.environ, "NODE_PATH": os.path.join(NODE_DIR, "node_modules")}


async def node_run(env: dict[str, str], script: str, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", os.path.join(HERE, "node", script), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    return json.loads(out)  # type: ignore[no-any-return]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


closes: list[tuple[int, str]] = []


async def echo(ws: adapter.WebSocket) -> None:
    try:
        async for message in ws:
            if message == "close me":
                await ws.close(4002, "done")
                return
            await ws.send(message)
    except adapter.ConnectionClosed as closed:
        closes.append((closed.code, closed.reason))
        raise
    closes.append((ws.close_code or 0, ws.close_reason))


async def ws_scenario(env: dict[str, str], scenario: str, deflate: bool = False,
                      **kw: Any) -> dict[str, Any]:
    server = await adapter.serve(
        echo, max_message_size=kw.pop("max_message_size", 32 << 20),
        subprotocols=["echo"], deflate=PerMessageDeflate() if deflate else None, **kw)
    try:
        port = server.sockets[0].getsockname()[1]
        return await node_run(env, "ws_client.js", f"ws://127.0.0.1:{port}/", scenario,
                              "deflate" if deflate else "")
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_node_ws_echoes_0_b_to_16_mib_and_fragments(node: dict[str, str], deflate: bool) -> None:
    result = run(ws_scenario(node, "echo", deflate))
    assert result["results"] == [True] * len(result["sizes"])
    assert result["fragmented"] == "fragmented message"
    assert result["close"] == {"code": 1000, "reason": ""}
    assert ("permessage-deflate" in result["extensions"]) is deflate


def test_node_ws_ping_pong(node: dict[str, str]) -> None:
    assert run(ws_scenario(node, "ping")) == {"pong": "are you there"}


def test_node_ws_close_codes_both_ways(node: dict[str, str]) -> None:
    closes.clear()
    assert run(ws_scenario(node, "close")) == {"code": 4001, "reason": ""}
    assert closes == [(4001, "bye")]  # the server saw the client's code and reason
    assert run(ws_scenario(node, "server_close")) == {"code": 4002, "reason": "done"}


def test_node_ws_subprotocol(node: dict[str, str]) -> None:
    assert run(ws_scenario(node, "subprotocol")) == {"protocol": "echo"}


def test_node_ws_oversize_closes_with_1009(node: dict[str, str]) -> None:
    result = run(ws_scenario(node, "oversize", max_message_size=1 << 20))
    assert result["code"] == 1009


# -- Node's ws against uvicorn with streamcore's --ws class ----------------------------

uvicorn_closes: list[tuple[int, str]] = []
DENIAL = bytes(range(256)) * 4  # binary: every byte value


async def uvicorn_echo(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI twin of ``echo``: /deny answers with a denial response."""
    await receive()  # websocket.connect
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "websocket.http.response.body", "body": DENIAL[:100],
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": DENIAL[100:]})
        return
    subprotocol = "echo" if "echo" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            uvicorn_closes.append((message["code"], message.get("reason", "")))
            return
        if message.get("text") == "close me":
            await send({"type": "websocket.close", "code": 4002, "reason": "done"})
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})


async def uvicorn_scenario(env: dict[str, str], scenario: str, deflate: bool = False,
                           path: str = "/", **options: Any) -> dict[str, Any]:
    options.setdefault("ws_max_size", 32 << 20)
    async with serving(uvicorn_echo, ws_per_message_deflate=deflate, **options) as server:
        return await node_run(env, "ws_client.js", server.url + path, scenario,
                              "deflate" if deflate else "")


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_node_ws_on_uvicorn_echoes_0_b_to_16_mib_and_fragments(
        node: dict[str, str], twin: ModuleType, deflate: bool) -> None:
    result = run(uvicorn_scenario(node, "echo", deflate))
    assert result["results"] == [True] * len(result["sizes"])
    assert result["fragmented"] == "fragmented message"
    assert result["close"] == {"code": 1000, "reason": ""}
    assert ("permessage-deflate" in result["extensions"]) is deflate


def test_node_ws_on_uvicorn_ping_pong(node: dict[str, str], twin: ModuleType) -> None:
    assert run(uvicorn_scenario(node, "ping")) == {"pong": "are you there"}


def test_node_ws_on_uvicorn_close_codes_both_ways(node: dict[str, str], twin: ModuleType) -> None:
    uvicorn_closes.clear()
    assert run(uvicorn_scenario(node, "close")) == {"code": 4001, "reason": ""}
    assert uvicorn_closes == [(4001, "bye")]  # the app saw the client's code and reason
    assert run(uvicorn_scenario(node, "server_close")) == {"code": 4002, "reason": "done"}


def test_node_ws_on_uvicorn_subprotocol(node: dict[str, str], twin: ModuleType) -> None:
    assert run(uvicorn_scenario(node, "subprotocol")) == {"protocol": "echo"}


def test_node_ws_on_uvicorn_oversize_closes_with_1009(
        node: dict[str, str], twin: ModuleType) -> None:
    result = run(uvicorn_scenario(node, "oversize", ws_max_size=1 << 20))
    assert result["code"] == 1009


def test_node_ws_on_uvicorn_sees_the_denial_response(
        node: dict[str, str], twin: ModuleType) -> None:
    result = run(uvicorn_scenario(node, "deny", path="/deny"))
    assert result == {"status": 403, "type": "application/octet-stream", "body": DENIAL.hex()}


# -- Node's eventsource against the ASGI SSE response -------------------------------------


def test_node_eventsource_reconnects_with_last_event_id(node: dict[str, str]) -> None:
    seen: list[str | None] = []

    def events(last_event_id: str | None) -> AsyncIterator[Any]:
        seen.append(last_event_id)
        start = 0 if last_event_id is None else int(last_event_id) + 1

        async def three() -> AsyncIterator[Any]:
            for k in range(start, start + 3):  # then the body ends: the client reconnects
                yield {"data": f"n{k}", "id": str(k), "event": "tick" if k % 2 else None}

        return three()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asgi.EventSourceResponse(events, retry=50)(scope, receive, send)

    async def main() -> dict[str, Any]:
        async with serving(app) as server:
            return await node_run(node, "sse_client.js", server.http_url + "/", "9")

    result = run(main())
    assert [(e["data"], e["id"]) for e in result["events"]] == [(f"n{k}", str(k)) for k in range(9)]
    assert [e["type"] for e in result["events"]] == ["tick" if k % 2 else "message" for k in range(9)]
    assert result["opens"] >= 3
    assert seen[:3] == [None, "2", "5"]
