"""The engine dies in the middle of a call: the phones are let go, the box comes back.

Real Kamailio, the real pjsua2 engine under the launcher (``python -m appliance
up``), two sipp desk phones registered through the edge and bridged by the
engine. SIGKILL the engine during the call: both phones get a BYE within
seconds (the edge ends the calls it still holds when the new engine starts),
the engine is back and answers a new call with hold music, the interrupted
call keeps its answer and talk time, and no phone had to register again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from appliance.control.client import EngineClient, EngineUnavailable
from appliance.edge.rpc import registered_extensions
from tests.support.ports import free_port
from tests.support.rtp import Capture, decoded_audio, is_silence
from tests.support.sipp import Sipp
from tests.support.stack import DataDir, history_json, launched, make_data_dir

pytestmark = [pytest.mark.sip, pytest.mark.slow]


@pytest.fixture
def site(tmp_path: Path) -> DataDir:
    return make_data_dir(tmp_path)


@pytest.fixture
def launcher(site: DataDir, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    out = tmp_path / "up.log"
    env = {**os.environ, **site.runtime.as_env(), "PYTHONUNBUFFERED": "1"}
    with launched(env, out) as proc:
        deadline = time.monotonic() + 60
        while b"Keepline is up" not in out.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        yield proc, out
    assert proc.returncode == 0, out.read_text()


def _engine_pid(launcher: int) -> int:
    for child in psutil.Process(launcher).children():
        if "appliance run" in " ".join(child.cmdline()):
            return int(child.pid)
    raise AssertionError("the launcher has no engine child")


def _status(client: EngineClient) -> dict[str, object] | None:
    try:
        return client.status()
    except EngineUnavailable:
        return None


def test_a_killed_engine_lets_both_phones_go_and_comes_back(
        site: DataDir, launcher: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, out = launcher
    rt = site.runtime
    edge = f"{rt.bind}:{rt.edge_port}"
    client = EngineClient(rt.control_socket, timeout=2)
    with Sipp("register_and_wait.xml", edge, service="202", auth=("202", site.passwords["202"]),
              keys={"domain": "127.0.0.1"}, ooc_scenario="answer.xml", timeout=60,
              media_port=free_port(), extra=["-rtp_echo"]) as callee:
        deadline = time.monotonic() + 10
        while "202" not in registered_extensions(rt):
            assert time.monotonic() < deadline, "202 did not register"
            time.sleep(0.1)
        with Sipp("phone_hung_up_on.xml", edge, service="202",
                  auth=("201", site.passwords["201"]),
                  keys={"caller": "201", "domain": "127.0.0.1"}, timeout=60,
                  media_port=free_port()) as caller:
            deadline = time.monotonic() + 10
            while not any(c["state"] == "connected" for c in (_status(client) or {})
                          .get("calls", [])):  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "the call was not connected"
                time.sleep(0.1)
            time.sleep(1.5)  # they talk
            os.kill(_engine_pid(proc.pid), signal.SIGKILL)
            killed_at = time.monotonic()
            # Both phones are let go: each gets a BYE and answers it.
            hung_up = caller.wait()
            answered = callee.wait()
            released_after = time.monotonic() - killed_at
    assert hung_up.ok, hung_up.describe()
    assert answered.ok, answered.describe()
    assert any(line.startswith("BYE ") for line in hung_up.received())
    assert any(line.startswith("BYE ") for line in answered.received())
    assert released_after < 15, f"phones released only {released_after:.1f} s after the kill"
    # The engine is back, counted the restart, and the edge still knows the phone. The
    # phones may be let go a moment before the new engine answers its control socket.
    deadline = time.monotonic() + 15
    while (status := _status(client)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status is not None and status["engine"] == "up"
    assert status["restarts"]["count"] == 1  # type: ignore[index]
    assert "202" in registered_extensions(rt)
    assert re.search(r"ended \d+ call\(s\) the edge still held", out.read_text()), \
        out.read_text()[-3000:]
    # A new call is answered, with hold music.
    media = free_port()
    with Capture(f"udp and dst port {media}") as cap, \
            Sipp("trunk_caller.xml", f"127.0.0.1:{rt.engine_port}", service="500",
                 keys={"hold_ms": "2000"}, timeout=30, media_port=media) as trunk_caller:
        assert trunk_caller.wait().ok
    heard = decoded_audio(cap.packets)
    assert len(heard) >= 8000 and not is_silence(heard)
    # The interrupted call keeps its answer time, and its talk time runs to the restart.
    records = history_json(rt)
    (cut,) = [r for r in records if r["outcome"] == "interrupted"]
    assert cut["direction"] == "internal" and cut["caller_number"] == "201"
    assert cut["answered_at"] is not None and cut["ended_at"] is not None
    assert cut["ended_at"] - cut["answered_at"] >= 1.5
