"""Deeply nested JSON gets a 400 that says so, never a RecursionError and a 500.

Where JSON comes in from outside: the web's backup restore and JSON request bodies,
and the engine's control API.
"""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.control.admin import AdminService, resources
from appliance.control.client import JsonTooDeep, loads
from appliance.control.events import EventBus
from appliance.control.server import ControlApi, ControlServer
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.web.conftest import Auth
from tests.web.fake_engine import FakeEngine

DEEP = "[" * 100000


def test_loads_refuses_deep_nesting_and_ignores_brackets_in_strings() -> None:
    with pytest.raises(JsonTooDeep, match="nested too deeply"):
        loads(DEEP)
    with pytest.raises(JsonTooDeep):
        loads(b'{"a":' * 65 + b"1" + b"}" * 65)
    assert loads('{"a": "[[[[{{{{\\"[["}') == {"a": '[[[[{{{{"[['}
    assert loads("[" * 64 + "]" * 64) == json.loads("[" * 64 + "]" * 64)


def test_a_backup_nested_too_deeply_is_refused_with_a_message(
        admin_client: FlaskClient, runtime: Runtime, fake_engine: FakeEngine) -> None:
    before = runtime.config_path.read_bytes()
    token = Auth(admin_client).csrf("/settings/backup")
    # Deep, but not so deep that Python's own parser would give up: it must still be refused.
    moderately = '{"schema": 1, "x": ' + "[" * 500 + "]" * 500 + "}"
    for body in (DEEP, moderately):
        response = admin_client.post("/settings/backup/restore", data={
            "csrf_token": token, "file": (io.BytesIO(body.encode()), "deep.json")},
            content_type="multipart/form-data")
        assert response.status_code == 400
        assert "nested too deeply" in response.get_data(as_text=True)
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]
    assert runtime.config_path.read_bytes() == before


def test_a_json_body_nested_too_deeply_is_a_400(app: Flask, fake_engine: FakeEngine) -> None:
    client = app.test_client()
    assert Auth(client).login("agent").status_code == 302
    token = Auth(client).csrf("/agent")
    response = client.post("/agent/contacts/+15550001", data=DEEP,
                           headers={"Content-Type": "application/json", "X-CSRF-Token": token,
                                    "Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("JSON nested too deeply")
    assert not [r for r in fake_engine.requests if r[0] == "PUT"]


def test_flask_json_parsing_is_bounded_everywhere(app: Flask) -> None:
    with app.test_request_context("/", method="POST", data=DEEP,
                                  content_type="application/json"):
        from flask import request
        from werkzeug.exceptions import BadRequest

        with pytest.raises(BadRequest, match="nested too deeply"):
            request.get_json()
        assert request.get_json(silent=True) is None


def _raw_request(path: Path, body: bytes) -> tuple[int, dict[str, object]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b"PUT /config HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json"
                     b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


def test_the_engines_control_api_refuses_deep_json(runtime: Runtime) -> None:
    admin = AdminService(ConfigStore(runtime.config_path), runtime.music_dir,
                         check=lambda config: [], apply=lambda config: None)
    server = ControlServer(runtime.control_socket, ControlApi(lambda: {}, resources(admin)),
                           EventBus())
    server.start()
    try:
        before = runtime.config_path.read_bytes()
        status, doc = _raw_request(runtime.control_socket, DEEP.encode())
        assert status == 400
        assert doc["error_id"] == "bad_json"
        assert "nested too deeply" in str(doc["message"])
        deep_doc = b'{"document": ' + b"[" * 500 + b"]" * 500 + b"}"
        status, doc = _raw_request(runtime.control_socket, deep_doc)
        assert (status, doc["error_id"]) == (400, "bad_json")
        assert runtime.config_path.read_bytes() == before
    finally:
        server.stop()
