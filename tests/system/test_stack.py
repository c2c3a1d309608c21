"""What `make run` does: `python -m appliance up` brings up edge, engine and web together.

The launcher imports the demo config on first start and prints each phone's
password once; a phone registers with one of them; the web page shows the
engine's live status; a trunk call is answered; Ctrl-C (SIGINT) stops all
three processes cleanly, leaving no Kamailio or engine behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.ports import free_port, free_port_block
from tests.support.sipp import Sipp, run_sipp
from tests.support.webserver import http_login

pytestmark = pytest.mark.sip

REPO = Path(__file__).resolve().parents[2]


def _read_until(proc: subprocess.Popen[str], pattern: str, lines: list[str],
                timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            lines.append(line)
            if re.search(pattern, line):
                return
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(lines)}")


def test_up_first_start_register_call_page_and_ctrl_c(tmp_path: Path) -> None:
    ports = {"KEEPLINE_EDGE_PORT": free_port(), "KEEPLINE_ENGINE_PORT": free_port(),
             "KEEPLINE_WEB_PORT": free_port(), "KEEPLINE_RTP_PORT": free_port_block(32)}
    env = {**os.environ, "KEEPLINE_DATA_DIR": str(tmp_path / "data"),
           "KEEPLINE_RUN_DIR": str(tmp_path / "run"), "PYTHONUNBUFFERED": "1",
           **{k: str(v) for k, v in ports.items()}}
    up = subprocess.Popen([sys.executable, "-m", "appliance", "up"], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        _read_until(up, r"Keepline is up", lines)
        out = "".join(lines)
        passwords = dict(re.findall(r"extension (\d+): user \d+\s+password (\S+)", out))
        assert sorted(passwords) == ["201", "202", "203", "204"], out
        # No default web password: the first start shows a generated one, once.
        shown = re.search(r"web login: user 'admin', password '([^']+)'", out)
        assert shown, out
        admin_password = shown.group(1)
        assert f"http://127.0.0.1:{ports['KEEPLINE_WEB_PORT']}/" in out
        config_text = (tmp_path / "data" / "config.json").read_text()
        assert all(pw not in config_text for pw in passwords.values())

        edge = f"127.0.0.1:{ports['KEEPLINE_EDGE_PORT']}"
        wrong = run_sipp("register_wrong.xml", edge, service="201", auth=("201", "nope"),
                         keys={"domain": "127.0.0.1"}, local_ip="127.0.0.9")
        assert wrong.ok and 403 in wrong.statuses(), wrong.describe()
        with Sipp("register_and_wait.xml", edge, service="201",
                  auth=("201", passwords["201"]), keys={"domain": "127.0.0.1"},
                  ooc_scenario="answer.xml", timeout=20):
            page = ""
            web = f"http://127.0.0.1:{ports['KEEPLINE_WEB_PORT']}"
            cookie = http_login(web, "admin", admin_password)
            deadline = time.monotonic() + 10
            while "201" not in page and time.monotonic() < deadline:
                request = urllib.request.Request(f"{web}/", headers={"Cookie": cookie})
                with urllib.request.urlopen(request, timeout=5) as r:
                    page = r.read().decode()
                time.sleep(0.2)
            assert "Keepline" in page and "201" in page, page
            call = run_sipp("trunk_caller.xml", f"127.0.0.1:{ports['KEEPLINE_ENGINE_PORT']}",
                            service="500", keys={"hold_ms": "1000"}, timeout=15,
                            media_port=free_port())
            assert call.ok, call.describe()

        children = psutil.Process(up.pid).children(recursive=True)
        assert any("kamailio" in c.name() for c in children)
        up.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if up.stdout is not None:
            up.stdout.close()
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running after Ctrl-C: {alive}"

    # The trunk call left its record in the history the CLI reads.
    again = subprocess.run([sys.executable, "-m", "appliance", "--data-dir",
                            str(tmp_path / "data"), "history", "--last", "5"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and "support" in again.stdout and "pstn" in again.stdout
