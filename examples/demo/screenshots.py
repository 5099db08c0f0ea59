"""Write docs/img/demo-*.png: the demo in headless Chromium (Debian's
/usr/bin/chromium through Playwright), two pages on two workers."""
from __future__ import annotations

import os
import tempfile

from playwright.sync_api import sync_playwright
from run import ROOT, Demo

OUT = os.path.join(ROOT, "docs", "img")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, Demo(directory) as demo, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        first = browser.new_page(viewport={"width": 1000, "height": 1100})
        second = browser.new_page(viewport={"width": 1000, "height": 1100})
        first.goto(demo.urls[0])
        second.goto(demo.urls[1])
        for page in (first, second):
            page.wait_for_function("window.echoReady && window.chatReady")
        first.click("#echo-send")
        first.click("#echo-binary")
        first.fill("#chat-input", "hello from worker 1")
        first.click("#chat-send")
        second.wait_for_function("window.chat.length >= 2")
        second.fill("#chat-input", "hi, worker 2 here")
        second.click("#chat-send")
        first.click("#report-start")
        first.wait_for_function("window.reportDone && window.tokens.length >= 12", timeout=20_000)
        second.wait_for_function("window.chat.length >= 3")
        first.screenshot(path=os.path.join(OUT, "demo-worker-1.png"), full_page=True)
        second.screenshot(path=os.path.join(OUT, "demo-worker-2.png"), full_page=True)
        browser.close()
        print("wrote", os.path.join("docs", "img", "demo-worker-1.png"), "and demo-worker-2.png")


if __name__ == "__main__":
    main()
