"""The demo (examples/demo) in a real browser: Playwright drives Debian's
/usr/bin/chromium (``executable_path``; never a browser download) against
redis-server and two uvicorn workers, once per twin (the workers run with
``STREAMCORE_NO_EXTENSIONS`` set or not)."""
from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.interop


def load_demo() -> Any:
    spec = importlib.util.spec_from_file_location(
        "demo_run", os.path.join(ROOT, "examples", "demo", "run.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["0", "1"], ids=["cython", "python"])
def demo(request: Any, tmp_path_factory: Any) -> Iterator[Any]:
    if shutil.which("redis-server") is None or not os.path.exists(CHROMIUM):
        pytest.fail("redis-server and chromium are needed: make system-deps installs them")
    old = os.environ.get("STREAMCORE_NO_EXTENSIONS")
    os.environ["STREAMCORE_NO_EXTENSIONS"] = request.param
    try:
        with load_demo().Demo(str(tmp_path_factory.mktemp("redis"))) as running:
            yield running
    finally:
        if old is None:
            os.environ.pop("STREAMCORE_NO_EXTENSIONS", None)
        else:
            os.environ["STREAMCORE_NO_EXTENSIONS"] = old


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_eventsource_in_order_and_resumes_with_last_event_id(demo: Any, browser: Any) -> None:
    page = browser.new_page()
    page.goto(demo.urls[0])
    # the server drops each connection after 5 events: 12 events span 3 connections
    page.wait_for_function("window.tokens.length >= 12", timeout=20_000)
    tokens = page.evaluate("window.tokens")[:12]
    assert [t["id"] for t in tokens] == [str(n) for n in range(12)]
    resumed_after = [t["data"].rsplit("resumed after ", 1)[1].rstrip(")") for t in tokens]
    assert resumed_after == ["None"] * 5 + ["4"] * 5 + ["9"] * 2
    assert int(page.inner_text("#reconnects")) >= 2
    page.close()


def test_websocket_echo_text_and_binary_with_deflate(demo: Any, browser: Any) -> None:
    page = browser.new_page()
    responses: list[Any] = []
    page.on("websocket", lambda ws: responses.append(ws.url))
    page.goto(demo.urls[0])
    page.wait_for_function("window.echoReady === true", timeout=10_000)
    assert "permessage-deflate" in page.inner_text("#extensions")
    page.fill("#echo-input", "héllo, streamcore " * 20)
    page.click("#echo-send")
    page.click("#echo-binary")
    page.wait_for_function("window.echoes.length >= 2", timeout=10_000)
    assert page.evaluate("window.echoes") == [
        "text: " + "héllo, streamcore " * 20, "binary: 0,1,2,253,254,255"]
    assert any(url.endswith("/ws/echo") for url in responses)
    page.close()


def test_chat_message_reaches_the_page_on_the_other_worker(demo: Any, browser: Any) -> None:
    first, second = browser.new_page(), browser.new_page()
    first.goto(demo.urls[0])
    second.goto(demo.urls[1])
    for page in (first, second):
        page.wait_for_function("window.chatReady === true && window.chat.length >= 1",
                               timeout=10_000)
    assert first.inner_text("#worker") == "worker-1"
    assert second.inner_text("#worker") == "worker-2"
    first.fill("#chat-input", "hello from worker 1")
    first.click("#chat-send")
    second.wait_for_function(
        "window.chat.includes('[worker-1] hello from worker 1')", timeout=10_000)
    second.fill("#chat-input", "and back")
    second.click("#chat-send")
    first.wait_for_function("window.chat.includes('[worker-2] and back')", timeout=10_000)
    first.close()
    second.close()


def test_chunked_report_streams_to_the_page(demo: Any, browser: Any) -> None:
    page = browser.new_page()
    page.goto(demo.urls[1])
    page.click("#report-start")
    page.wait_for_function("window.reportDone === true", timeout=10_000)
    lines = page.inner_text("#report").splitlines()
    assert lines[0].startswith("streamcore report") and lines[-1] == "done"
    assert len(lines) == 12
    page.close()
