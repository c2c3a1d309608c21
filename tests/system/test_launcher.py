"""`python -m appliance up` heals the box and refuses a port something else holds.

A killed engine is restarted by the launcher while the edge and the web stay up
(the web shows the engine as down meanwhile), and the restarted engine's status
counts the restart. A child that keeps dying is given up on. A port already in
use stops the launcher before it changes anything. Files with secrets or
personal data are not readable by other users.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path

import psutil
import pytest

from appliance.control.client import EngineClient, EngineUnavailable
from appliance.launcher import Child, Policy, StackError, Supervisor, describe_exit
from tests.support.ports import free_port, free_port_block
from tests.support.stack import launched
from tests.support.webserver import http_login

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, ports: dict[str, int]) -> dict[str, str]:
    return {**os.environ, "KEEPLINE_DATA_DIR": str(tmp_path / "data"),
            "KEEPLINE_RUN_DIR": str(tmp_path / "run"), "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in ports.items()}}


def _ports() -> dict[str, int]:
    return {"KEEPLINE_EDGE_PORT": free_port(), "KEEPLINE_ENGINE_PORT": free_port(),
            "KEEPLINE_WEB_PORT": free_port(), "KEEPLINE_RTP_PORT": free_port_block(32)}


def _wait_for(what: str, check: object, timeout: float, out: Path | None = None) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, EngineUnavailable):
            pass
        time.sleep(0.1)
    log = out.read_text(errors="replace") if out is not None else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{log}")


def _up(tmp_path: Path, ports: dict[str, int],
        out: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The launcher with its output in ``out``; killed (with its children) if still running."""
    return launched(_env(tmp_path, ports), out)


def _find(launcher: int, marker: str) -> psutil.Process | None:
    """The launcher's living child whose command line holds ``marker``."""
    for child in psutil.Process(launcher).children():
        try:
            if marker in " ".join(child.cmdline()):
                return child
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # killed, not yet reaped by the launcher
    return None


def _child(launcher: int, marker: str) -> psutil.Process:
    found = _find(launcher, marker)
    assert found is not None, f"no child of the launcher runs {marker!r}"
    return found


def _restarted(launcher: int, marker: str, before: psutil.Process) -> bool:
    found = _find(launcher, marker)
    return found is not None and found.pid != before.pid


@pytest.mark.sip
@pytest.mark.slow
def test_a_killed_engine_is_restarted_while_edge_and_web_stay_up(tmp_path: Path) -> None:
    ports = _ports()
    out = tmp_path / "up.log"
    web = f"http://127.0.0.1:{ports['KEEPLINE_WEB_PORT']}"
    client = EngineClient(tmp_path / "run" / "engine.sock", timeout=2)
    with _up(tmp_path, ports, out) as up:
        _wait_for("Keepline is up", lambda: b"Keepline is up" in out.read_bytes(), 60, out)
        password = re.search(r"web login: user 'admin', password '([^']+)'",
                             out.read_text())
        assert password, out.read_text()
        cookie = http_login(web, "admin", password.group(1))
        assert client.status()["restarts"] == {"count": 0, "last_at": None,
                                               "last_exit": None}
        engine = _child(up.pid, "appliance run")
        kamailio = _child(up.pid, "kamailio")
        web_proc = _child(up.pid, "-m web")
        killed_at = time.time()

        engine.kill()
        engine.wait(5)
        # The launcher waits a second before the restart: meanwhile the web answers
        # and shows the engine as down.
        request = urllib.request.Request(f"{web}/", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
            page = r.read().decode()
        assert "Engine not reachable" in page, page
        assert re.search(r'id="engine-state" class="state down"', page), page

        _wait_for("engine back up", lambda: client.status()["engine"] == "up", 40, out)
        status = client.status()
        restarts = status["restarts"]
        assert restarts["count"] == 1, status
        assert restarts["last_exit"] == "killed by SIGKILL"
        assert killed_at <= restarts["last_at"] <= time.time()
        assert status["edge"] == "up", status
        assert _child(up.pid, "appliance run").pid != engine.pid
        assert _child(up.pid, "kamailio").pid == kamailio.pid, "the edge was not restarted"
        assert _child(up.pid, "-m web").pid == web_proc.pid, "the web was not restarted"
        with urllib.request.urlopen(urllib.request.Request(
                f"{web}/api/status", headers={"Cookie": cookie}), timeout=5) as r:
            assert r.status == 200
        # The launcher logs the restart once its own readiness check has seen the engine.
        _wait_for("the restart logged",
                  lambda: b"engine restarted (restart 1" in out.read_bytes(), 10, out)
        log = out.read_text()
        assert re.search(rf"engine killed by SIGKILL \(pid {engine.pid}, up \d+ s\); "
                         r"restarting it in 1 s", log), log

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, out.read_text()

    # What holds secrets or personal data is not for other users, not even to read.
    data = tmp_path / "data"
    private = ["config.json", "edge.sqlite3", "history.sqlite3", "web-secret"]
    private += [p.name for p in data.glob("*.sqlite3-*")]
    for name in private:
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert not mode & 0o007, f"{name} is {mode:o}"


@pytest.mark.sip
@pytest.mark.slow
def test_a_killed_edge_and_web_are_restarted_while_the_engine_stays_up(tmp_path: Path) -> None:
    ports = _ports()
    out = tmp_path / "up.log"
    web = f"http://127.0.0.1:{ports['KEEPLINE_WEB_PORT']}"
    client = EngineClient(tmp_path / "run" / "engine.sock", timeout=2)

    def web_answers() -> bool:
        with urllib.request.urlopen(f"{web}/login", timeout=2) as r:
            return bool(r.status == 200)

    with _up(tmp_path, ports, out) as up:
        _wait_for("Keepline is up", lambda: b"Keepline is up" in out.read_bytes(), 60, out)
        engine = _child(up.pid, "appliance run")
        kamailio = _child(up.pid, "kamailio")
        workers = kamailio.children(recursive=True)
        web_proc = _child(up.pid, "-m web")

        kamailio.kill()  # its workers live on, holding the SIP port, until the launcher acts
        web_proc.kill()
        _wait_for("edge back up", lambda: _restarted(up.pid, "kamailio", kamailio)
                  and client.status()["edge"] == "up", 40, out)
        _wait_for("web back up", web_answers, 40, out)
        assert _child(up.pid, "-m web").pid != web_proc.pid
        assert _child(up.pid, "appliance run").pid == engine.pid, "the engine was restarted"
        assert client.status()["restarts"]["count"] == 0
        _gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"the killed Kamailio's workers live on: {alive}"
        log = out.read_text()
        assert "edge killed by SIGKILL" in log and "web killed by SIGKILL" in log, log

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, out.read_text()


@pytest.mark.parametrize(("variable", "kind", "other"), [
    ("KEEPLINE_EDGE_PORT", socket.SOCK_DGRAM, "a SIP server"),
    ("KEEPLINE_ENGINE_PORT", socket.SOCK_DGRAM, "a SIP server"),
    ("KEEPLINE_WEB_PORT", socket.SOCK_STREAM, "a web server"),
])
def test_a_port_in_use_is_refused_before_anything_changes(
        tmp_path: Path, variable: str, kind: socket.SocketKind, other: str) -> None:
    ports = _ports()
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", ports[variable]))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        done = subprocess.run([sys.executable, "-m", "appliance", "up"], cwd=REPO,
                              env=_env(tmp_path, ports), capture_output=True, text=True,
                              timeout=60)
    proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    assert done.returncode == 1, done
    assert (f"error: port {ports[variable]}/{proto} on 127.0.0.1 is already in use "
            f"(another Keepline or {other}?)") in done.stderr, done.stderr
    assert "Keepline is up" not in done.stdout
    assert not (tmp_path / "data" / "config.json").exists(), "the demo was imported anyway"


class _Crasher(Child):
    """A child that dies with status 3 a moment after each start."""

    name = "crasher"

    def __init__(self) -> None:
        self.envs: list[dict[str, str]] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, extra_env: dict[str, str], abort: threading.Event) -> None:
        self.envs.append(extra_env)
        self.proc = subprocess.Popen([sys.executable, "-c",
                                      "import sys, time; time.sleep(0.05); sys.exit(3)"])

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _until_given_up(child: _Crasher, policy: Policy) -> tuple[Supervisor, list[str]]:
    """Supervise ``child`` until the supervisor gives up on it; its messages."""
    stop = threading.Event()
    messages: list[str] = []

    def gave_up(message: str) -> None:
        messages.append(message)
        stop.set()

    supervisor = Supervisor(child, stop=stop, gave_up=gave_up, policy=policy)
    child.start({}, stop)
    supervisor.start()
    try:
        assert stop.wait(20), "the supervisor never gave up"
        supervisor.join(5)
    finally:
        stop.set()
        child.stop()
    return supervisor, messages


def test_a_child_that_keeps_dying_is_restarted_with_back_off_then_given_up_on() -> None:
    child = _Crasher()
    starts: list[float] = []
    original = child.start

    def timed_start(extra_env: dict[str, str], abort: threading.Event) -> None:
        starts.append(time.monotonic())
        original(extra_env, abort)

    child.start = timed_start  # type: ignore[method-assign]
    supervisor, messages = _until_given_up(child, Policy(
        delay_s=0.1, max_delay_s=0.4, stable_after_s=60, crash_limit=4, crash_window_s=60,
        poll_s=0.01))
    assert messages == ["crasher exited with status 3, after 4 restarts within 60 s; "
                        "giving up on it"]
    assert supervisor.restarts == 4
    # Each restart is told how many came before it and why the last one ended.
    assert [e.get("KEEPLINE_RESTARTS") for e in child.envs] == [None, "1", "2", "3", "4"]
    assert {e.get("KEEPLINE_LAST_EXIT") for e in child.envs[1:]} == {"exited with status 3"}
    # Back-off: 0.1, 0.2, 0.4, 0.4 s (the cap) between a death and the next start.
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 4
    for gap, delay in zip(gaps, [0.1, 0.2, 0.4, 0.4], strict=True):
        assert gap >= delay, gaps


def test_a_failed_restart_counts_as_a_crash() -> None:
    class NeverComesBack(_Crasher):
        def start(self, extra_env: dict[str, str], abort: threading.Event) -> None:
            if self.envs:
                self.envs.append(extra_env)
                raise StackError("crasher did not come up within 0 s")
            super().start(extra_env, abort)

    supervisor, messages = _until_given_up(NeverComesBack(), Policy(
        delay_s=0.01, max_delay_s=0.01, crash_limit=2, poll_s=0.01))
    assert len(messages) == 1
    assert messages[0].startswith("crasher could not be restarted (crasher did not come up")
    assert supervisor.restarts == 2


def test_exits_are_described_for_people() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(0) == "exited with status 0"


def test_history_and_atomic_writes_are_private_even_under_a_lax_umask(tmp_path: Path) -> None:
    from appliance.store.atomic import write_atomic
    from appliance.store.history import History

    previous = os.umask(0o022)  # what a shell usually has
    try:
        History(tmp_path / "history.sqlite3")
        write_atomic(tmp_path / "config.json", b"{}\n")
        # An open connection keeps the -wal and -shm files SQLite makes beside it.
        with contextlib.closing(sqlite3.connect(tmp_path / "history.sqlite3")) as db:
            db.execute("SELECT count(*) FROM calls").fetchone()
            files = sorted(p.name for p in tmp_path.iterdir())
            modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in files}
    finally:
        os.umask(previous)
    assert set(files) == {"config.json", "history.sqlite3", "history.sqlite3-shm",
                          "history.sqlite3-wal"}, files
    assert modes == dict.fromkeys(files, 0o640)
