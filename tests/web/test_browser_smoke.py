"""Headless Chromium end to end: a real HTTP server, a page whose JavaScript runs, a screenshot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import waitress
from flask import Flask, Response
from waitress import wasyncore

from tests.support.browser import Browser, browser_available

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Browser smoke</title></head>
<body>
<h1 id="greeting">Waiting for JavaScript</h1>
<script src="/app.js"></script>
</body>
</html>
"""

# Served as a file, not inline, so the page works under CSP default-src 'self' like ours.
SCRIPT = """
window.addEventListener("load", function () {
  document.getElementById("greeting").textContent = "Hello from JavaScript";
});
"""

CSP = "default-src 'self'"


def smoke_app() -> Flask:
    app = Flask("browser_smoke")

    @app.get("/")
    def index() -> Response:
        return Response(PAGE, mimetype="text/html", headers={"Content-Security-Policy": CSP})

    @app.get("/app.js")
    def script() -> Response:
        return Response(SCRIPT, mimetype="text/javascript")

    return app


@pytest.fixture
def live_url() -> Iterator[str]:
    """The smoke app behind waitress on a free loopback port, shut down afterwards."""
    server = waitress.create_server(smoke_app(), host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, name="smoke-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/"
    finally:
        # Close every socket from inside waitress's own loop (a trigger thunk runs there),
        # so its select() never races a close from this thread; an empty map ends run().
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)
        assert not thread.is_alive(), "waitress loop did not stop"


@pytest.mark.slow
def test_headless_chromium_runs_javascript_and_screenshots(live_url: str) -> None:
    reason = browser_available()
    assert reason is None, reason
    started = time.monotonic()
    with Browser("browser-smoke") as browser:
        browser.get(live_url)
        heading = browser.wait_for("#greeting", text="Hello from JavaScript", timeout=10)
        assert heading.tag_name == "h1"
        assert browser.driver.title == "Browser smoke"
        shot = browser.screenshot("browser-smoke")
    assert shot.is_file()
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
    assert time.monotonic() - started < 20
