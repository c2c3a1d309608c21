"""Fixtures in flaskr's style: ``app``, ``client`` and ``auth``, plus a fake engine.

The data folder holds the demo config with two logins, ``admin`` and ``agent``
(extension 202), whose passwords are below; their scrypt hashes are made once
per test session, because each costs about a tenth of a second.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.users import password_hash
from tests.support.stack import DEMO
from tests.web.fake_engine import FakeEngine
from web import create_app

ADMIN_PASSWORD = "admin-test-password-1"
AGENT_PASSWORD = "agent-test-password-2"


@functools.cache
def _hashes() -> tuple[str, str]:
    return password_hash(ADMIN_PASSWORD), password_hash(AGENT_PASSWORD)


def write_config(runtime: Runtime) -> None:
    """The demo config plus the two test logins, as the engine would store it."""
    doc = json.loads(DEMO.read_text())
    admin_hash, agent_hash = _hashes()
    doc["users"] = [
        {"name": "admin", "role": "admin", "password": admin_hash},
        {"name": "agent", "role": "agent", "extension": "202", "password": agent_hash},
    ]
    runtime.data_dir.mkdir(parents=True, exist_ok=True)
    ConfigStore(runtime.config_path).import_document(doc)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose run_dir is short: Unix socket paths stop at 107 bytes."""
    run_dir = Path(tempfile.mkdtemp(prefix="kl-web-", dir="/tmp"))
    rt = Runtime(data_dir=tmp_path / "data", run_dir=run_dir)
    write_config(rt)
    try:
        yield rt
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def fake_engine(runtime: Runtime) -> Iterator[FakeEngine]:
    with FakeEngine(runtime.control_socket, runtime=runtime) as fake:
        yield fake


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "KEEPLINE_RUNTIME": runtime,
            # Short, so heartbeat and shutdown behaviour shows within a test.
            "KEEPLINE_SSE_HEARTBEAT_S": 0.2,
            "KEEPLINE_SSE_MAX_STREAMS": 2,
            "KEEPLINE_SSE_SLOT_WAIT_S": 0.1,  # a refused stream is refused quickly
            "KEEPLINE_ENGINE_TIMEOUT_S": 2.0,
        }
    )


class Auth:
    """Logs the test client in and out through the real login form."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token from a page's meta tag or form."""
        page = self._client.get(path).get_data(as_text=True)
        found = re.search(r'name="csrf-token" content="([^"]+)"', page) or \
            re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, username: str = "admin", password: str | None = None) -> TestResponse:
        if password is None:
            password = ADMIN_PASSWORD if username == "admin" else AGENT_PASSWORD
        token = self.csrf()
        return self._client.post("/login", data={"username": username, "password": password,
                                                  "csrf_token": token})

    def logout(self) -> TestResponse:
        return self._client.post("/logout", data={"csrf_token": self.csrf("/")})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


@pytest.fixture
def admin_client(client: FlaskClient, auth: Auth) -> FlaskClient:
    """A client logged in as ``admin``."""
    assert auth.login().status_code == 302
    return client
