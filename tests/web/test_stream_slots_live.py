"""A live page the browser left gives its event-stream slot back at once.

Against the real ``python -m web`` (waitress), since only the server sees a
browser close its connection: a login holds at most two streams, so opening a
third right after closing one must work, as it does when someone clicks from
the dashboard to "My calls" to "Voicemail" within the heartbeat (15 s). Before,
the closed stream kept its slot until its next heartbeat write failed, and the
third page's stream was refused (503: "Live updates paused"). The third one is
asked for at once: the server notices the close within a poll step, and a new
stream waits up to KEEPLINE_SSE_SLOT_WAIT_S (1 s) for a slot.
"""

from __future__ import annotations

import dataclasses
import http.client
import threading
import time
from pathlib import Path

import pytest

from appliance.settings import Runtime
from tests.support.ports import free_port
from tests.support.webserver import WebServer, http_login
from tests.web.conftest import AGENT_PASSWORD
from tests.web.fake_engine import FakeEngine
from web.live import StreamSlots
from web.security import User


class Stream:
    """GET /events as a browser's EventSource would; ``close()`` is the browser leaving."""

    def __init__(self, port: int, cookie: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.conn.request("GET", "/events",
                          headers={"Cookie": cookie, "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        if self.status == 200:  # wait for the engine's hello: the stream is running
            seen = b""
            while b'"hello"' not in seen:
                line = self.response.fp.readline()
                assert line, f"the stream ended before its hello: {seen!r}"
                seen += line

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def test_a_stream_waits_briefly_for_a_slot_given_back_and_no_longer() -> None:
    slots = StreamSlots(4, per_login=1, admin_reserve=1)
    agent = User(name="agent", role="agent", extension="202")
    assert slots.acquire(agent) is None
    releaser = threading.Timer(0.1, slots.release, args=(agent,))
    releaser.start()
    started = time.monotonic()
    assert slots.acquire(agent, wait=2.0) is None  # the page left gave it back meanwhile
    assert time.monotonic() - started < 1.0
    releaser.join()
    started = time.monotonic()
    refused = slots.acquire(agent, wait=0.2)  # nothing comes back: refused, not stuck
    assert refused is not None and "at most 1" in refused
    assert 0.15 < time.monotonic() - started < 1.0


@pytest.mark.slow
def test_a_closed_stream_frees_its_slot_before_the_next_heartbeat(runtime: Runtime,
                                                                  tmp_path: Path) -> None:
    rt = dataclasses.replace(runtime, web_port=free_port())
    with FakeEngine(rt.control_socket, runtime=rt), WebServer(rt, tmp_path / "web.log") as web:
        cookie = http_login(web.url, "agent", AGENT_PASSWORD)
        first = Stream(rt.web_port, cookie)
        second = Stream(rt.web_port, cookie)
        assert (first.status, second.status) == (200, 200)
        third = Stream(rt.web_port, cookie)
        third.close()
        assert third.status == 503, "the per-login cap (2) must still hold while both are open"

        first.close()  # the browser left the dashboard for the next live page
        started = time.monotonic()
        again = Stream(rt.web_port, cookie)  # asked at once, as that page does
        again.close()
        second.close()
        # The server noticed within a poll step and the request waited for it; the
        # next heartbeat (15 s) was not waited for.
        assert again.status == 200, "the closed stream still held its slot"
        assert time.monotonic() - started < 2
