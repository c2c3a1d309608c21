"""The live blueprint against a fake engine, and ``python -m web`` as a real server."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.support.ports import free_port
from tests.support.webserver import http_login
from tests.web.conftest import ADMIN_PASSWORD, Auth
from tests.web.fake_engine import SAMPLE_STATUS, FakeEngine
from web import create_app

ROOT = Path(__file__).resolve().parents[2]


class Frames:
    """Split a server-sent-event body into frames, whatever the chunking."""

    def __init__(self, chunks: Iterable[str] | Iterable[bytes]) -> None:
        self._chunks: Iterator[str | bytes] = iter(chunks)
        self._buffer = b""

    def next(self, *, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no whole frame in {timeout} s: {self._buffer!r}")
            chunk = next(self._chunks)
            self._buffer += chunk.encode() if isinstance(chunk, str) else chunk
        frame, self._buffer = self._buffer.split(b"\n\n", 1)
        return frame.decode()

    def next_event(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The next ``data:`` frame, skipping retry hints and heartbeats."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(timeout=max(0.0, deadline - time.monotonic()))
            if frame.startswith("data: "):
                event: dict[str, Any] = json.loads(frame[len("data: ") :])
                return event



@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """These pages are behind the login: every test here is logged in as admin."""
    logged_in = app.test_client()
    assert Auth(logged_in).login().status_code == 302
    return logged_in


def test_page_shows_capacity_and_calls(client: FlaskClient, fake_engine: FakeEngine) -> None:
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<title>Dashboard – Keepline</title>" in html
    # Legs, as the engine counts them: one answered call is 2 of them.
    assert "<dt>Call legs</dt>" in html and "an answered call uses 2" in html
    assert 'id="active-calls">1</span>' in html
    assert 'id="max-calls">4</span>' in html
    assert "+15550100" in html
    for text in ("500", "pstn", "support", "queued", "<li>201</li>"):
        assert text in html
    assert "engine-banner" in html
    assert 'id="engine-banner" class="banner" role="alert" hidden' in html
    assert "live.js" in html


def test_page_renders_banner_when_engine_is_down(client: FlaskClient) -> None:
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Engine not reachable: " in html
    assert "Traceback" not in html
    assert "No calls right now." in html


def test_page_survives_a_status_with_missing_fields(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    # The engine may be older or newer than the web; missing keys are not an error page.
    fake_engine.status = {"engine": "up"}
    response = client.get("/")
    assert response.status_code == 200
    assert "No phones registered." in response.get_data(as_text=True)


def test_api_status_passes_the_engine_json_through(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    response = client.get("/api/status")
    assert response.status_code == 200
    assert response.get_json() == SAMPLE_STATUS
    assert response.headers["Cache-Control"] == "no-store"


def test_api_status_is_503_when_engine_is_down(client: FlaskClient) -> None:
    response = client.get("/api/status")
    body = response.get_json()
    assert response.status_code == 503
    assert body["error_id"] == "engine_unavailable"
    assert str(client.application.config["KEEPLINE_RUNTIME"].control_socket) in body["message"]


def test_events_relays_hello_then_engine_events(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    response = client.get("/events", buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        frames = Frames(response.response)
        assert frames.next() == "retry: 5000"
        hello = frames.next_event()
        assert hello["type"] == "hello"
        assert hello["status"]["capacity"] == {"max_calls": 4, "active_calls": 1}

        fake_engine.wait_for_subscribers(1)
        fake_engine.emit({"type": "call_started", "at": 1.0, "call": {"id": "c2"}})
        assert frames.next_event() == {"type": "call_started", "at": 1.0, "call": {"id": "c2"}}
    finally:
        response.close()


def test_events_sends_heartbeat_comments(client: FlaskClient, fake_engine: FakeEngine) -> None:
    response = client.get("/events", buffered=False)
    try:
        frames = Frames(response.response)
        seen = [frames.next() for _ in range(3)]  # retry, hello, then a heartbeat (0.2 s)
        assert seen[2] == ": heartbeat"
    finally:
        response.close()


def test_events_says_engine_down_and_ends(client: FlaskClient) -> None:
    response = client.get("/events", buffered=False)
    try:
        assert response.status_code == 200  # so EventSource keeps retrying
        frames = Frames(response.response)
        event = frames.next_event()
        assert event["type"] == "engine_down"
        assert "engine not reachable" in event["message"]
        assert list(response.response) == []  # the stream ended
    finally:
        response.close()


def test_events_streams_are_capped_and_slots_come_back(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    first = client.get("/events", buffered=False)
    second = client.get("/events", buffered=False)
    try:
        third = client.get("/events", buffered=False)
        assert third.status_code == 503
        assert third.get_json()["error_id"] == "too_many_streams"
        third.close()
    finally:
        first.close()
        second.close()
    # Closed without ever being read: the slots must still come back.
    again = client.get("/events", buffered=False)
    try:
        assert again.status_code == 200
    finally:
        again.close()


def test_events_end_when_the_server_stops(client: FlaskClient, app: Flask,
                                          fake_engine: FakeEngine) -> None:
    response = client.get("/events", buffered=False)
    try:
        frames = Frames(response.response)
        assert frames.next_event()["type"] == "hello"
        app.extensions["keepline.stopping"].set()
        started = time.monotonic()
        assert list(response.response) in ([], [b": heartbeat\n\n"])
        assert time.monotonic() - started < 1.0
    finally:
        response.close()


def test_create_app_defaults_to_runtime_from_env(
    monkeypatch: Any, runtime: Runtime, fake_engine: FakeEngine
) -> None:
    monkeypatch.setenv("KEEPLINE_DATA_DIR", str(runtime.data_dir))
    monkeypatch.setenv("KEEPLINE_RUN_DIR", str(runtime.run_dir))
    app = create_app()
    assert app.config["KEEPLINE_RUNTIME"].control_socket == runtime.control_socket
    env_client = app.test_client()
    assert Auth(env_client).login().status_code == 302
    assert env_client.get("/api/status").status_code == 200


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"python -m web exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"python -m web did not listen on {port} within {timeout} s")


def test_python_m_web_serves_and_exits_cleanly_on_sigterm(
    runtime: Runtime, fake_engine: FakeEngine
) -> None:
    port = free_port(socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPLINE_")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable, "-m", "web",
        "--data-dir", str(runtime.data_dir),
        "--run-dir", str(runtime.run_dir),
        "--bind", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for_port(proc, port, timeout=10)
        cookie = {"Cookie": http_login(f"http://127.0.0.1:{port}", "admin", ADMIN_PASSWORD)}

        page = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            page.request("GET", "/", headers=cookie)
            response = page.getresponse()
            html = response.read().decode()
        finally:
            page.close()
        assert response.status == 200
        assert "+15550100" in html

        # Keep a live stream open through waitress while stopping: shutdown
        # must not wait on it, and the relay must really stream (not buffer).
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            stream.request("GET", "/events", headers=cookie)
            events = stream.getresponse()
            assert events.getheader("Content-Type", "").startswith("text/event-stream")
            line = b""
            while not line.startswith(b"data: "):
                line = events.readline()
            assert json.loads(line[len(b"data: ") :])["type"] == "hello"

            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=5)
        finally:
            stream.close()
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert returncode == 0, stderr
    assert f"web: listening on http://127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr


def test_browsers_share_one_engine_stream(client: FlaskClient, fake_engine: FakeEngine) -> None:
    first = client.get("/events", buffered=False)
    second = client.get("/events", buffered=False)
    try:
        a, b = Frames(first.response), Frames(second.response)
        assert a.next_event()["type"] == "hello"
        assert b.next_event()["type"] == "hello"
        fake_engine.wait_for_subscribers(1)
        fake_engine.emit({"type": "call_answered", "at": 2.0})
        assert a.next_event()["type"] == "call_answered"
        assert b.next_event()["type"] == "call_answered"
        assert fake_engine.streams == 1
    finally:
        first.close()
        second.close()


def test_events_say_engine_down_when_its_stream_ends(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    response = client.get("/events", buffered=False)
    try:
        frames = Frames(response.response)
        assert frames.next_event()["type"] == "hello"
        fake_engine.wait_for_subscribers(1)
        fake_engine.stop()  # the engine restarts, say
        event = frames.next_event()
        assert event == {"type": "engine_down", "at": event["at"],
                         "message": "engine closed the event stream"}  # fmt: skip
    finally:
        response.close()


def test_page_says_engine_down_when_the_control_api_answers_down(
    client: FlaskClient, fake_engine: FakeEngine
) -> None:
    fake_engine.status = {"engine": "down"}
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ">Engine is down</p>" in html
    assert 'class="state down">down</span>' in html


def test_one_login_cannot_take_every_stream_and_admins_keep_a_slot(
        app: Flask, client: FlaskClient, fake_engine: FakeEngine) -> None:
    app.extensions["keepline.sse_slots"].total = 4  # as python -m web: 8 threads, 4 streams
    agent = app.test_client()
    assert Auth(agent).login("agent").status_code == 302
    opened = [agent.get("/events", buffered=False) for _ in range(2)]
    try:
        assert [r.status_code for r in opened] == [200, 200]
        third = agent.get("/events", buffered=False)
        assert third.status_code == 503
        assert "at most 2" in third.get_json()["message"]
        third.close()
        # The other two slots are still there for admins.
        other = app.test_client()
        assert Auth(other).login("admin").status_code == 302
        opened.append(client.get("/events", buffered=False))
        assert opened[-1].status_code == 200
        opened.append(other.get("/events", buffered=False))
        assert opened[-1].status_code == 200
    finally:
        for r in opened:
            r.close()


def test_agents_leave_the_last_stream_to_an_admin(app: Flask, client: FlaskClient,
                                                 fake_engine: FakeEngine) -> None:
    first, second = app.test_client(), app.test_client()
    for c in (first, second):
        assert Auth(c).login("agent").status_code == 302
    held = first.get("/events", buffered=False)  # 1 of the 2 test slots
    try:
        assert held.status_code == 200
        refused = second.get("/events", buffered=False)
        assert refused.status_code == 503 and refused.get_json()["error_id"] == \
            "too_many_streams"
        refused.close()
        admin = client.get("/events", buffered=False)
        assert admin.status_code == 200
        admin.close()
    finally:
        held.close()


def test_a_stream_ends_when_its_session_is_logged_out(app: Flask, client: FlaskClient,
                                                     fake_engine: FakeEngine) -> None:
    saved = client.get_cookie("keepline_session")
    assert saved is not None
    tab = app.test_client()
    tab.set_cookie("keepline_session", saved.value)
    response = tab.get("/events", buffered=False)
    try:
        frames = Frames(response.response)
        assert frames.next_event()["type"] == "hello"
        assert Auth(client).logout().status_code == 302
        assert frames.next_event(timeout=3)["type"] == "logged_out"
        assert list(response.response) == []
    finally:
        response.close()
