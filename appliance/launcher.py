"""``python -m appliance up``: the three processes of the box as children of one launcher.

This is what ``make run`` and the system tests start. It first checks that
the SIP and web ports are free (a second Keepline, or another SIP server on
5060, is refused before anything changes), imports the demo config on first
start (printing the generated phone passwords once), then starts edge, engine
and web in that order and stops them in reverse on Ctrl-C or SIGTERM.
Children run in their own sessions so a terminal's Ctrl-C reaches only the
launcher, which then stops them in order.

Like the systemd units on the appliance, the launcher heals the box: a child
that exits without being asked to is restarted after a back-off (1 s, doubling
up to 30 s, back to 1 s once it has stayed up for a minute) while the others
keep running. A child restarted :data:`CRASH_LIMIT` times within
:data:`CRASH_WINDOW_S` that dies once more is given up on, and the launcher
then stops the whole stack with status 1. A restarted engine learns how often
it was restarted, when, and why from ``KEEPLINE_RESTARTS``,
``KEEPLINE_LAST_RESTART_AT`` and ``KEEPLINE_LAST_EXIT``, which its status shows.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from appliance.control.client import EngineClient
from appliance.errors import KeeplineError
from appliance.hints import admin_command
from appliance.settings import Runtime
from appliance.store.config import ConfigStore, read_document

if TYPE_CHECKING:
    from appliance.edge.process import Edge

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: How often the launcher looks whether its children are alive.
POLL_S = 0.2
#: First wait before a restart; doubled after each restart, up to RESTART_DELAY_MAX_S.
RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
#: A child that stayed up this long is healthy again: its next restart waits RESTART_DELAY_S.
STABLE_AFTER_S = 60.0
#: Restarts allowed within CRASH_WINDOW_S; a death after that many gives up on the child.
CRASH_LIMIT = 5
CRASH_WINDOW_S = 60.0
#: What the launcher tells a restarted child (the engine shows them in its status).
RESTART_ENV = ("KEEPLINE_RESTARTS", "KEEPLINE_LAST_RESTART_AT", "KEEPLINE_LAST_EXIT")
#: The web unit's UMask: nothing the web process writes is for anyone else.
WEB_UMASK = 0o077
#: Files with secrets or personal data: never readable by other users.
PRIVATE_FILES = ("config.json", "web-secret", "edge.secret", "switches.json",
                 *(f"{db}{suffix}" for db in ("history.sqlite3", "edge.sqlite3",
                                              "edge-location.sqlite3")
                   for suffix in ("", "-wal", "-shm")))


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
    lost = admin_command(["extension", "password", "NUMBER"], data_dir=rt.data_dir,
                         cwd=Path.cwd(), python=sys.executable)
    print(f"Lost one? {lost}")
    print(bar, flush=True)


def check_ports(rt: Runtime) -> None:
    """Refuse to start on a port something else holds: bind each one for a moment.

    SIP ports are tried as UDP without ``SO_REUSEADDR``, so any socket on the
    port (Kamailio sets ``SO_REUSEADDR`` itself) makes the bind fail. The web
    port is tried as TCP *with* it: on Linux that still fails against a
    listening socket, but not against the TIME_WAIT leftovers of a stack that
    was just stopped.
    """
    wanted = [(rt.bind, rt.edge_port, socket.SOCK_DGRAM, "a SIP server"),
              (rt.engine_bind, rt.engine_port, socket.SOCK_DGRAM, "a SIP server"),
              (rt.bind, rt.web_port, socket.SOCK_STREAM, "a web server")]
    for address, port, kind, other in wanted:
        proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen()
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise StackError(f"port {port}/{proto} on {address} is already in use "
                                     f"(another Keepline or {other}?)") from None
                raise StackError(f"cannot use port {port}/{proto} on {address}: "
                                 f"{e.strerror or e}") from None


def tighten_modes(rt: Runtime) -> None:
    """Take away other users' access to private files an older version left readable."""
    for name in PRIVATE_FILES:
        path = rt.data_dir / name
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o777
            if mode & 0o007:
                path.chmod(mode & ~0o007)
                log.info("%s was readable by other users; now %o", path, mode & ~0o007)


def describe_exit(returncode: int) -> str:
    """``killed by SIGKILL`` or ``exited with status 3``: how a child ended, for people."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes] | None,
          timeout: float = START_TIMEOUT_S, *, abort: threading.Event | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if abort is not None and abort.is_set():
            raise StackError(f"{what}: stopped while starting")
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} {describe_exit(proc.returncode)} while starting")
        try:
            if check():
                return
        except Exception as e:
            last = e
        time.sleep(0.1)
    raise StackError(f"{what} did not come up within {timeout:.0f} s ({last})")


def _spawn(args: list[str], rt: Runtime, extra_env: dict[str, str] | None = None,
           umask: int = -1) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in RESTART_ENV}
    env.update(rt.as_env())
    env.update(extra_env or {})
    return subprocess.Popen([sys.executable, *args], env=env, start_new_session=True,
                            umask=umask)


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


class Child:
    """One process of the stack as the launcher sees it: start it, see it die, stop it."""

    name = ""

    def start(self, extra_env: dict[str, str], abort: threading.Event) -> None:
        """Start and wait until it serves; StackError if it does not."""
        raise NotImplementedError

    def returncode(self) -> int | None:
        """How it exited by itself, or None while it runs (or was never started)."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class PythonChild(Child):
    """``python -m <module> ...`` with the runtime in its environment."""

    def __init__(self, name: str, args: list[str], rt: Runtime, ready: Callable[[], bool],
                 *, umask: int = -1) -> None:
        self.name = name
        self._args = args
        self._rt = rt
        self._ready = ready
        self._umask = umask
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, extra_env: dict[str, str], abort: threading.Event) -> None:
        self._proc = _spawn(self._args, self._rt, extra_env, self._umask)
        try:
            _wait(self.name, self._ready, self._proc, abort=abort)
        except BaseException:
            _terminate(self._proc, self.name)
            raise

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, self.name)


class EdgeChild(Child):
    """Kamailio through :class:`appliance.edge.process.Edge`."""

    name = "edge"

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def start(self, extra_env: dict[str, str], abort: threading.Event) -> None:
        self.edge.stop()  # what a crashed Kamailio left: its workers still hold the port
        try:
            self.edge.start()
        except KeeplineError as e:
            raise StackError(f"edge (Kamailio) failed to start: {e}") from None

    def returncode(self) -> int | None:
        return self.edge.returncode

    @property
    def pid(self) -> int | None:
        return self.edge.pid

    def stop(self) -> None:
        self.edge.stop()


@dataclass
class Policy:
    """When to restart a child and when to give up on it."""

    delay_s: float = RESTART_DELAY_S
    max_delay_s: float = RESTART_DELAY_MAX_S
    stable_after_s: float = STABLE_AFTER_S
    crash_limit: int = CRASH_LIMIT
    crash_window_s: float = CRASH_WINDOW_S
    poll_s: float = POLL_S


class Supervisor:
    """Watches one started child on its own thread and restarts it when it dies.

    ``gave_up`` is called with a message (once) when the child died again
    after ``policy.crash_limit`` restarts within ``policy.crash_window_s``;
    the supervisor then stops watching. ``stop`` ends the watch (and aborts a
    restart under way); the caller stops the child after :meth:`join`.
    """

    def __init__(self, child: Child, *, stop: threading.Event,
                 gave_up: Callable[[str], None], policy: Policy | None = None) -> None:
        self.child = child
        self.policy = policy or Policy()
        self.restarts = 0
        self.last_exit: str | None = None
        self.last_restart_at: float | None = None
        self._stop = stop
        self._gave_up = gave_up
        self._recent: collections.deque[float] = collections.deque()
        self._thread = threading.Thread(target=self._run, name=f"supervise-{child.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def env(self) -> dict[str, str]:
        """What a restarted child is told about its restarts."""
        if not self.restarts:
            return {}
        return {"KEEPLINE_RESTARTS": str(self.restarts),
                "KEEPLINE_LAST_RESTART_AT": f"{self.last_restart_at or 0:.3f}",
                "KEEPLINE_LAST_EXIT": self.last_exit or ""}

    def _run(self) -> None:
        try:
            self._watch()
        except Exception as e:  # a bug here must not leave the stack unwatched silently
            log.exception("supervising %s failed", self.child.name)
            self._gave_up(f"supervising {self.child.name} failed: {e}")

    def _watch(self) -> None:
        name, policy = self.child.name, self.policy
        delay = policy.delay_s
        started = time.monotonic()
        while not self._stop.wait(policy.poll_s):
            code = self.child.returncode()
            if code is None:
                continue
            reason = describe_exit(code)
            while True:  # until the child is back up, the launcher stops, or we give up
                now = time.monotonic()
                if now - started >= policy.stable_after_s:
                    delay = policy.delay_s
                while self._recent and now - self._recent[0] > policy.crash_window_s:
                    self._recent.popleft()
                if len(self._recent) >= policy.crash_limit:
                    self._gave_up(f"{name} {reason}, after {len(self._recent)} restarts "
                                  f"within {policy.crash_window_s:.0f} s; giving up on it")
                    return
                log.warning("%s %s (pid %s, up %.0f s); restarting it in %g s",
                            name, reason, self.child.pid, now - started, delay)
                if self._stop.wait(delay):
                    return
                self._recent.append(time.monotonic())
                self.restarts += 1
                self.last_exit = reason
                self.last_restart_at = time.time()
                started = time.monotonic()
                delay = min(delay * 2, policy.max_delay_s)
                try:
                    self.child.start(self.env(), self._stop)
                except StackError as e:
                    if self._stop.is_set():
                        return
                    reason = f"could not be restarted ({e})"
                    continue
                log.warning("%s restarted (restart %d, pid %s)", name, self.restarts,
                            self.child.pid)
                break


def run_stack(rt: Runtime, *, demo: Path | None = None, policy: Policy | None = None) -> int:
    """Run edge, engine and web until a signal or a child given up on; the exit status."""
    from appliance.edge.process import Edge

    try:
        check_ports(rt)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    ensure_config(rt, demo)
    tighten_modes(rt)
    config = ConfigStore(rt.config_path).load()
    stop = threading.Event()
    failure: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def gave_up(message: str) -> None:
        failure.append(message)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    client = EngineClient(rt.control_socket, timeout=2)
    children: list[Child] = [
        EdgeChild(Edge(rt, config)),
        PythonChild("engine", ["-m", "appliance", "run"], rt,
                    lambda: client.status()["engine"] == "up"),
        PythonChild("web", ["-m", "web"], rt, lambda: _web_up(rt), umask=WEB_UMASK),
    ]
    supervisors: list[Supervisor] = []
    status = 0
    started: list[Child] = []
    try:
        for child in children:
            started.append(child)
            child.start({}, stop)
        print(f"Keepline is up: phones register and trunks call in at {rt.bind}:"
              f"{rt.edge_port} (UDP, the edge), the engine listens on {rt.engine_bind}:"
              f"{rt.engine_port}, web page http://{rt.bind}:{rt.web_port}/ - Ctrl-C stops "
              "all three.", flush=True)
        for child in children:
            supervisor = Supervisor(child, stop=stop, gave_up=gave_up, policy=policy)
            supervisors.append(supervisor)
            supervisor.start()
        while not stop.wait(POLL_S):
            pass
    except KeeplineError as e:
        if not stop.is_set():  # a Ctrl-C while starting is no error
            print(f"error: {e}", file=sys.stderr)
            status = 1
    finally:
        stop.set()
        for supervisor in supervisors:
            supervisor.join(START_TIMEOUT_S)
        for child in reversed(started):
            child.stop()
        for message in failure:
            print(f"error: {message}; Keepline stops", file=sys.stderr)
            status = 1
        print("Keepline stopped.", flush=True)
    return status
