"""``python -m appliance failover ...``, run in-process against a stand-in engine.

The engine's ``/failover`` documents are canned here, to check what the CLI asks and
how it shows the answers; the real route is tested with a real engine elsewhere.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.control import client
from tests.store.test_cli_stats import import_config

# 2025-06-15 13:00:00 in Europe/Berlin (CEST, UTC+2)
T = 1_749_985_200.0

DOC: dict[str, Any] = {
    "mode": "degraded",
    "manual_disaster": False,
    "override": None,
    "monitors": {
        "trunk:pstn": {"state": "down", "since": T, "detail": "timeout after 2.0 s"},
        "trunk:backup": {"state": "up", "since": T + 61, "detail": "200 OK in 2 ms"},
        "agents:support": {"state": "unknown", "since": None, "detail": ""},
    },
    "agents_reachable": {"support": True, "sales": False},
}

STATUS_TEXT = """\
mode:             degraded
disaster switch:  off
day/night:        auto (opening hours)
monitors:
  trunk:pstn      down     since 2025-06-15 13:00:00  timeout after 2.0 s
  trunk:backup    up       since 2025-06-15 13:01:01  200 OK in 2 ms
  agents:support  unknown  since -
agents reachable:
  support  yes
  sales    no
"""


class Engine:
    """Stands in for EngineClient.request: answers /failover as the engine would."""

    def __init__(self) -> None:
        self.doc = copy.deepcopy(DOC)
        self.asked: list[tuple[str, str, dict[str, Any] | None]] = []
        self.running = True

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.running:
            raise client.EngineUnavailable("engine not reachable at x: No such file")
        self.asked.append((method, path, body))
        if method == "POST" and body is not None:
            if "disaster" in body:
                self.doc["manual_disaster"] = body["disaster"]
                self.doc["mode"] = "disaster" if body["disaster"] else "degraded"
            if "override" in body:
                self.doc["override"] = body["override"]
        return copy.deepcopy(self.doc)


@pytest.fixture(autouse=True)
def no_keepline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket path comes from --data-dir alone, whatever the caller's environment."""
    for name in [n for n in os.environ if n.startswith("KEEPLINE_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Engine:
    import_config(data_dir, timezone="Europe/Berlin")
    fake = Engine()

    def request(self: client.EngineClient, method: str, path: str,
                body: dict[str, Any] | None = None) -> Any:
        assert self.socket_path == data_dir / "run" / "engine.sock"
        return fake.request(method, path, body)

    monkeypatch.setattr(client.EngineClient, "request", request)
    return fake


def run(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "failover", *args])


def test_status(data_dir: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "status") == 0
    assert capsys.readouterr() == (STATUS_TEXT, "")
    assert engine.asked == [("GET", "/failover", None)]


def test_status_json_is_the_engines_document(
        data_dir: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "status", "--json") == 0
    out, err = capsys.readouterr()
    assert (json.loads(out), err) == (DOC, "")


def test_status_with_switches_set_and_nothing_monitored(
        data_dir: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    engine.doc.update(mode="disaster", manual_disaster=True, override="night", monitors={},
                      agents_reachable={})
    assert run(data_dir, "status") == 0
    assert capsys.readouterr().out == (
        "mode:             disaster\n"
        "disaster switch:  on\n"
        "day/night:        night (forced)\n"
        "monitors:         none\n")


def test_status_times_without_a_site_timezone_are_the_boxs(
        data_dir: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime

    (data_dir / "config.json").unlink()
    assert run(data_dir, "status") == 0
    assert datetime.fromtimestamp(T).strftime("%Y-%m-%d %H:%M:%S") in capsys.readouterr().out


@pytest.mark.parametrize(("action", "body", "out"), [
    ("on", {"disaster": True}, "disaster switch on; mode: disaster\n"),
    ("off", {"disaster": False}, "disaster switch off; mode: degraded\n"),
    ("day", {"override": "day"}, "day/night: day (forced); mode: degraded\n"),
    ("night", {"override": "night"}, "day/night: night (forced); mode: degraded\n"),
    ("auto", {"override": None}, "day/night: auto (opening hours); mode: degraded\n"),
])
def test_switches(data_dir: Path, engine: Engine, capsys: pytest.CaptureFixture[str],
                  action: str, body: dict[str, Any], out: str) -> None:
    assert run(data_dir, action) == 0
    assert capsys.readouterr() == (out, "")
    assert engine.asked == [("POST", "/failover", body)]


@pytest.mark.parametrize("action", ["status", "on", "off", "day", "night", "auto"])
def test_engine_not_running(data_dir: Path, engine: Engine,
                            capsys: pytest.CaptureFixture[str], action: str) -> None:
    engine.running = False
    assert run(data_dir, action) == 1
    sock = data_dir / "run" / "engine.sock"
    assert capsys.readouterr() == (
        "", f"error: engine not reachable at {sock} (is it running?)\n")


def test_no_engine_at_all(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real client, with no socket: the same message."""
    assert run(data_dir, "status") == 1
    sock = data_dir / "run" / "engine.sock"
    assert capsys.readouterr() == (
        "", f"error: engine not reachable at {sock} (is it running?)\n")


def test_an_engine_refusal_is_reported(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(self: client.EngineClient, method: str, path: str,
               body: dict[str, Any] | None = None) -> Any:
        raise client.EngineRefused(400, {"error_id": "bad_override",
                                         "message": "override: expected day, night or null"})

    monkeypatch.setattr(client.EngineClient, "request", refuse)
    assert run(data_dir, "night") == 1
    assert capsys.readouterr() == ("", "error: override: expected day, night or null\n")


@pytest.mark.parametrize("args", [["on", "--json"], ["sometimes"], []])
def test_bad_arguments_exit_2(data_dir: Path, engine: Engine,
                              capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(data_dir, *args)
    assert exc.value.code == 2
    assert "failover" in capsys.readouterr().err
    assert engine.asked == []
