"""The page of examples/demo_asyncio.py in a real browser: Playwright drives
Debian's /usr/bin/chromium (``executable_path``; never a browser download)
against the example started on free loopback ports, once per twin."""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from test_examples import TWINS, Server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", params=sorted(TWINS))
def demo(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server("demo_asyncio.py", request.param)
    yield server
    code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is needed: make system-deps installs it")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_eventsource_in_order_and_resumes_with_last_event_id(demo: Server, browser: Any) -> None:
    page = browser.new_page()
    page.goto(demo.http + "/")
    # the server ends each response after 5 events: 12 events span 3 connections,
    # the browser reconnecting after `retry: 500` with its Last-Event-ID
    page.wait_for_function("window.tokens.length >= 12", timeout=20_000)
    tokens = page.evaluate("window.tokens")[:12]
    assert [t["id"] for t in tokens] == [str(n) for n in range(12)]
    notes = [t["data"].partition(" (")[2] for t in tokens]
    assert notes == [""] * 5 + ["resumed after 4)"] * 5 + ["resumed after 9)"] * 2
    assert int(page.inner_text("#reconnects")) >= 2
    page.close()


def test_websocket_echo_text_and_binary_with_deflate(demo: Server, browser: Any) -> None:
    page = browser.new_page()
    page.goto(demo.http + "/")
    page.wait_for_function("window.echoReady === true", timeout=10_000)
    assert page.inner_text("#extensions").startswith("permessage-deflate")
    page.fill("#echo-input", "héllo, streamcore " * 20)
    page.click("#echo-send")
    page.click("#echo-binary")
    page.wait_for_function("window.echoes.length >= 2", timeout=10_000)
    assert page.evaluate("window.echoes") == [
        "text: " + "héllo, streamcore " * 20, "binary: 0,1,2,253,254,255"]
    page.close()


def test_chunked_report_arrives_whole(demo: Server, browser: Any) -> None:
    page = browser.new_page()
    page.goto(demo.http + "/")
    page.click("#report-run")
    page.wait_for_function("window.reportDone === true", timeout=10_000)
    lines = page.inner_text("#report").splitlines()
    assert lines[0] == "streamcore report, one line per step" and lines[-1] == "done"
    assert len(lines) == 12
    page.close()
