"""Start real Keepline processes for tests: a data dir, free ports, the engine as a child."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from appliance.control.client import EngineClient, EngineUnavailable
from appliance.settings import Runtime
from appliance.store.config import ConfigStore, read_document

__all__ = ["read_document"]
from tests.support.ports import free_port, free_port_block

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "appliance" / "demo.json"


@dataclass
class DataDir:
    """A data dir with the demo config imported, and the passwords it generated."""

    runtime: Runtime
    passwords: dict[str, str]

    @property
    def config(self) -> dict[str, Any]:
        return ConfigStore(self.runtime.config_path).load()


def make_runtime(base: Path) -> Runtime:
    """A Runtime under ``base`` with free loopback ports (never 5060/5070/8080)."""
    return Runtime(data_dir=base / "data", run_dir=base / "run", edge_port=free_port(),
                   engine_port=free_port(), rtp_port=free_port_block(64), web_port=free_port(),
                   mwi_port=free_port())


def make_data_dir(base: Path, *, edit: dict[str, Any] | None = None) -> DataDir:
    """Import the demo config (optionally with top-level sections replaced)."""
    rt = make_runtime(base)
    rt.data_dir.mkdir(parents=True)
    doc = read_document(DEMO)
    doc.update(edit or {})
    generated = ConfigStore(rt.config_path).import_document(doc)
    return DataDir(rt, {g.extension: g.password for g in generated})


class EngineProcess:
    """``python -m appliance run`` as a child, stopped with SIGTERM like systemd does."""

    def __init__(self, runtime: Runtime, log_path: Path) -> None:
        self.runtime = runtime
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = EngineClient(runtime.control_socket, timeout=5)

    def start(self, timeout: float = 20.0) -> EngineProcess:
        env = {**os.environ, **self.runtime.as_env(), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "run"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.client.status()["engine"] == "up":
                    return self
            except EngineUnavailable:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"engine did not start within {timeout} s:\n{self.log()}")

    def status(self) -> dict[str, Any]:
        return self.client.status()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"engine ignored SIGTERM for {timeout} s:\n{self.log()}") \
                    from None
        code = self.proc.returncode
        self.proc = None
        return code

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll status until ``predicate(status)`` is truthy; return the status."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.status()
            if predicate(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last status: {json.dumps(last)}")


@contextlib.contextmanager
def running_stack(site: DataDir, log_path: Path) -> Iterator[EngineProcess]:
    """Kamailio and the engine for ``site``, as in production; the engine must exit 0."""
    from appliance.edge.process import Edge

    with Edge(site.runtime, site.config):
        proc = EngineProcess(site.runtime, log_path).start()
        try:
            yield proc
        finally:
            assert proc.stop() == 0, proc.log()


@contextlib.contextmanager
def launched(env: dict[str, str], out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m appliance up`` (what ``make run`` starts) with its output in ``out``.

    On exit it gets Ctrl-C (SIGINT) if still running; one that does not stop within
    30 s is killed, with the children it had.
    """
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "appliance", "up"], cwd=REPO, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                for child in children:
                    child.kill()


def history_json(runtime: Runtime, last: int = 50) -> list[dict[str, Any]]:
    """Call records as the CLI prints them (``history --last N --json``)."""
    out = subprocess.run(
        [sys.executable, "-m", "appliance", "--data-dir", str(runtime.data_dir), "history",
         "--last", str(last), "--json"], capture_output=True, text=True, check=True, cwd=REPO)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


class EventLog:
    """The engine's events, collected on a thread from the control API's stream."""

    def __init__(self, client: EngineClient) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._client = client
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.wait(lambda e: e["type"] == "hello", 10), "no engine event stream"

    def _run(self) -> None:
        for event in self._client.events(timeout=60):
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def wait(self, match: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        """The first event ``match`` accepts, waiting up to ``timeout`` for it."""
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events if match(e)), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            return found()

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self.events if e["type"] == kind]
