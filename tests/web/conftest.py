"""Fixtures in flaskr's style: ``app`` and ``client``, plus a fake engine."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.settings import Runtime
from tests.web.fake_engine import FakeEngine
from web import create_app


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose run_dir is short: Unix socket paths stop at 107 bytes."""
    run_dir = Path(tempfile.mkdtemp(prefix="kl-web-", dir="/tmp"))
    try:
        yield Runtime(data_dir=tmp_path / "data", run_dir=run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def fake_engine(runtime: Runtime) -> Iterator[FakeEngine]:
    with FakeEngine(runtime.control_socket) as fake:
        yield fake


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "KEEPLINE_RUNTIME": runtime,
            # Short, so heartbeat and shutdown behaviour shows within a test.
            "KEEPLINE_SSE_HEARTBEAT_S": 0.2,
            "KEEPLINE_SSE_MAX_STREAMS": 2,
            "KEEPLINE_ENGINE_TIMEOUT_S": 2.0,
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
