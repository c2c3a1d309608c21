"""No default password: the first start makes the admin login and shows it once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import check_password_hash

from appliance.controller import Controller
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from tests.support.stack import DEMO, REPO


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    runtime = Runtime(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    runtime.data_dir.mkdir()
    ConfigStore(runtime.config_path).import_document(json.loads(DEMO.read_text()))
    return runtime


def test_first_start_makes_an_admin_and_a_session_key_once(
        rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    store = ConfigStore(rt.config_path)
    Controller(rt)._first_start(store)
    shown = capsys.readouterr().err
    found = re.search(r"user 'admin', password '([^']+)'", shown)
    assert found, shown
    [admin] = store.load_raw()["users"]
    assert admin["role"] == "admin"
    assert check_password_hash(admin["password"], found.group(1))
    assert found.group(1) not in rt.config_path.read_text(), "only the hash is stored"
    # The way to a new one, as it works for this data dir (not a bare python -m).
    assert f"--data-dir {rt.data_dir} user reset-password admin makes a new one" in shown
    key = rt.web_secret_path.read_text()
    assert len(key) == 64
    assert rt.web_secret_path.stat().st_mode & 0o007 == 0, "not world-readable"

    Controller(rt)._first_start(store)
    assert "password" not in capsys.readouterr().err, "shown once, never again"
    assert store.load_raw()["users"] == [admin]
    assert rt.web_secret_path.read_text() == key


def _cli(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(rt.data_dir),
                           "--run-dir", str(rt.run_dir), *args], cwd=REPO, text=True,
                          capture_output=True, timeout=60, check=False)


def test_cli_resets_a_password_without_an_engine(rt: Runtime) -> None:
    store = ConfigStore(rt.config_path)
    Controller(rt)._first_start(store)
    done = _cli(rt, "user", "reset-password", "admin")
    assert done.returncode == 0, done.stderr
    password = re.search(r"password '([^']+)'", done.stdout)
    assert password, done.stdout
    [admin] = store.load_raw()["users"]
    assert check_password_hash(admin["password"], password.group(1))
    unknown = _cli(rt, "user", "reset-password", "nobody")
    assert unknown.returncode == 2
    assert "no login 'nobody'" in unknown.stderr
    listed = _cli(rt, "user", "list")
    assert listed.stdout.split() == ["admin", "admin"]


def test_box_alarms_are_published_once_per_change(rt: Runtime) -> None:
    controller = Controller(rt)
    sub = controller.bus.subscribe()
    states: dict[str, str] = {}
    attention: dict[str, str] = {}
    fine = {"cpu_percent": 5.0, "temperature_c": None, "memory_percent": 30.0,
            "disk_free_mb": 9000}
    controller._box_alarms(fine, states, attention)
    controller._box_alarms({**fine, "disk_free_mb": 100}, states, attention)
    controller._box_alarms({**fine, "disk_free_mb": 90}, states, attention)  # no event
    events = []
    while (event := sub.get(timeout=0.1)) is not None:
        events.append((event["monitor"], event["old"], event["new"]))
    assert events == [("box:cpu", "unknown", "up"), ("box:memory", "unknown", "up"),
                      ("box:disk", "unknown", "up"), ("box:voicemail", "unknown", "up"),
                      ("box:email", "unknown", "up"), ("box:disk", "up", "down")]
    assert states["box:disk"] == "down"
    assert attention["box:disk"] == "Data partition nearly full: 100 MB free on the data " \
                                    "partition"


def test_a_caller_id_modem_away_too_long_is_a_box_alarm(rt: Runtime, tmp_path: Path) -> None:
    from appliance.device.modem import CallerIdModem

    controller = Controller(rt)
    port = str(tmp_path / "ttyACM0")  # nothing there: the modem is unplugged
    controller._cid_modem = CallerIdModem(port, on_caller_id=lambda seen: None)
    controller._cid_modem._down_since -= 60  # never set up, for a minute now
    states: dict[str, str] = {}
    attention: dict[str, str] = {}
    system: dict[str, Any] = {"cpu_percent": 5.0, "memory_percent": 30.0, "disk_free_mb": 9000}
    controller._box_alarms(system, states, attention)
    assert states["box:caller_id_modem"] == "down"
    assert attention["box:caller_id_modem"].startswith(
        f"Caller-ID modem: not answering at {port} for 6")
    assert system["modems"] == {"caller_id": {"port": port, "down_s": pytest.approx(60, abs=2)}}
