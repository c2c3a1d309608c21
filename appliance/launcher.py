"""``python -m appliance up``: the three processes of the box as children of one launcher.

This is what ``make run`` and the system tests start. It imports the demo
config on first start (printing the generated phone passwords once), then
starts edge, engine and web in that order and stops them in reverse on
Ctrl-C or SIGTERM. Children run in their own sessions so a terminal's Ctrl-C
reaches only the launcher, which then stops them in order.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import FrameType

from appliance.control.client import EngineClient
from appliance.errors import KeeplineError
from appliance.settings import Runtime
from appliance.store.config import ConfigStore, read_document

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class StackError(KeeplineError, RuntimeError):
    """A process of the stack failed to start or died."""


def demo_config() -> Path:
    return Path(str(resources.files("appliance").joinpath("demo.json")))


def ensure_config(rt: Runtime, demo: Path | None) -> None:
    """Import the demo config into an empty data dir, showing the new passwords once."""
    store = ConfigStore(rt.config_path)
    if store.exists():
        return
    rt.data_dir.mkdir(parents=True, exist_ok=True)
    source = demo or demo_config()
    generated = store.import_document(read_document(source))
    realm = store.load()["site"]["sip_domain"]
    bar = "=" * 64
    print(bar)
    print(f"First start: imported {source}")
    print("Phone passwords (shown ONCE; only their hashes are kept):")
    for g in generated:
        print(f"  extension {g.extension}: user {g.extension}  password {g.password}")
    print(f"Register phones to {realm}, port {rt.edge_port} (UDP).")
    print("Lost one? python -m appliance extension password NUMBER")
    print(bar, flush=True)


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes] | None,
          timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with status {proc.returncode} while starting")
        try:
            if check():
                return
        except Exception as e:
            last = e
        time.sleep(0.1)
    raise StackError(f"{what} did not come up within {timeout:.0f} s ({last})")


def _spawn(args: list[str], rt: Runtime) -> subprocess.Popen[bytes]:
    env = {**os.environ, **rt.as_env()}
    return subprocess.Popen([sys.executable, *args], env=env, start_new_session=True)


def _terminate(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.error("%s did not stop within %.0f s; killing it", name, STOP_TIMEOUT_S)
        proc.kill()
        proc.wait()


def _web_up(rt: Runtime) -> bool:
    # The login page is the one page that answers without a login.
    with urllib.request.urlopen(f"http://{rt.bind}:{rt.web_port}/login", timeout=1) as r:
        return bool(r.status == 200)


def run_stack(rt: Runtime, *, demo: Path | None = None) -> int:
    """Run edge, engine and web until a signal or a child's death; return the exit status."""
    from appliance.edge.process import Edge

    ensure_config(rt, demo)
    config = ConfigStore(rt.config_path).load()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    edge = Edge(rt, config)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    status = 0
    try:
        edge.start()
        engine = _spawn(["-m", "appliance", "run"], rt)
        children.append(("engine", engine))
        client = EngineClient(rt.control_socket, timeout=2)
        _wait("engine", lambda: client.status()["engine"] == "up", engine)
        web = _spawn(["-m", "web"], rt)
        children.append(("web", web))
        _wait("web", lambda: _web_up(rt), web)
        print(f"Keepline is up: phones register to {rt.bind}:{rt.edge_port} (UDP), "
              f"trunks reach the engine at {rt.bind}:{rt.engine_port}, "
              f"web page http://{rt.bind}:{rt.web_port}/ - Ctrl-C stops all three.",
              flush=True)
        while not stop.wait(0.5):
            for name, proc in children:
                if proc.poll() is not None:
                    raise StackError(f"{name} exited with status {proc.returncode}")
            if not edge.running:
                raise StackError("edge (Kamailio) exited")
    except KeeplineError as e:
        print(f"error: {e}", file=sys.stderr)
        status = 1
    finally:
        for name, proc in reversed(children):
            _terminate(proc, name)
        edge.stop()
        print("Keepline stopped.", flush=True)
    return status
