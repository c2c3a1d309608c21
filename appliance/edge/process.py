"""Kamailio run as a child process: the edge in development, tests and ``make run``.

On the appliance systemd runs Kamailio itself; here the launcher (or a test)
owns it. :class:`Edge` derives what Kamailio reads (subscriber table, config,
trusted-address file), spawns it in the foreground with its log in the run
dir, and calls it started only once it answers a SIP OPTIONS ping, because
a live process is not yet a listening registrar.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from appliance.edge.render import EdgeError, EdgeFiles, write_config
from appliance.edge.subscribers import sync_subscribers
from appliance.settings import Runtime

KAMAILIO_FALLBACK = Path("/usr/sbin/kamailio")


class EdgeStartError(EdgeError):
    """Kamailio exited or stayed silent while starting; the message quotes its log."""


def kamailio_binary() -> str:
    """Path of the kamailio binary (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which("kamailio")
    if found:
        return found
    if os.access(KAMAILIO_FALLBACK, os.X_OK):
        return str(KAMAILIO_FALLBACK)
    raise EdgeError("kamailio not found on PATH or in /usr/sbin: install the Debian packages "
                    "kamailio and kamailio-sqlite-modules")


def send_options(host: str, port: int, timeout: float = 0.5, *,
                 source: tuple[str, int] | None = None) -> int | None:
    """Status code of one SIP OPTIONS ping to ``host:port``, or None if nothing answered.

    A health check for any SIP server; the edge answers 200 for OPTIONS
    addressed to itself. Sent from ``source`` (address, port) if given, else
    from an ephemeral port. Note that the edge ignores banned sources, so a
    health check should come from the engine's address or one never banned.
    """
    call_id = uuid.uuid4().hex
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            if source is not None:
                sock.bind(source)
            sock.connect((host, port))  # connected: an ICMP "port unreachable" fails fast
            local_ip, local_port = sock.getsockname()[:2]
            branch = f"z9hG4bK{uuid.uuid4().hex}"
            request = (
                f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {local_ip}:{local_port};branch={branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:health@{local_ip}>;tag={uuid.uuid4().hex[:12]}\r\n"
                f"To: <sip:{host}:{port}>\r\n"
                f"Call-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            sock.send(request.encode())
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                reply = sock.recv(65535).decode("utf-8", "replace")
                status = reply.split("\r\n", 1)[0].split(" ")
                if len(status) >= 2 and status[0] == "SIP/2.0" and call_id in reply \
                        and status[1].isdigit() and int(status[1]) >= 200:
                    return int(status[1])
    except OSError:  # timeout, refused, unreachable
        return None
    return None


def log_tail(path: Path, *, start: int = 0, lines: int = 15) -> str:
    """The last ``lines`` lines of a log written after byte ``start``, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e.strerror or e})"
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept) if kept else "(empty)"


class Edge:
    """The edge: Kamailio as registrar and front door, run as a child process.

    ``start()`` derives the subscriber table and the config from ``config``,
    spawns Kamailio and waits until it answers OPTIONS on
    ``runtime.bind:runtime.edge_port``; ``stop()`` ends it. Use it as a
    context manager to be sure it stops.

    Example::

        with Edge(runtime, config) as edge:
            ...                   # phones register at runtime.edge_port
            edge.sync(new_config)  # changed passwords apply at once

    Parameters:
        runtime: ports and paths; Kamailio's files go to ``runtime.run_dir``.
        config: the validated config.json document.
        start_timeout: seconds to wait for the first OPTIONS answer.
        stop_timeout: seconds to wait after SIGTERM before SIGKILL.
        workers: UDP worker processes (``-n``).
        shm_mb: shared memory in MB (``-m``); location and bans live here.
        pkg_mb: private memory per process in MB (``-M``).
    """

    def __init__(
        self,
        runtime: Runtime,
        config: dict[str, Any],
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        workers: int = 2,
        shm_mb: int = 32,
        pkg_mb: int = 8,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.files = EdgeFiles.of(runtime)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._args = ["-n", str(workers), "-m", str(shm_mb), "-M", str(pkg_mb)]
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<Edge {self.runtime.bind}:{self.runtime.edge_port} {state}>"

    @property
    def running(self) -> bool:
        """True while the Kamailio we started is alive (not necessarily healthy)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Kamailio's exit status once it has exited by itself (negative: that signal).

        None while it runs, and after :meth:`stop` (then it was asked to exit).
        """
        return self._proc.poll() if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        """Kamailio's main process id while running."""
        return self._proc.pid if self.running and self._proc is not None else None

    def sync(self, config: dict[str, Any] | None = None) -> int:
        """Re-derive the subscriber table (from ``config`` if given); return the count.

        Changed passwords and added or removed extensions apply to the next
        request without a restart. Ban settings and ports need ``restart()``.
        """
        if config is not None:
            self.config = config
        return sync_subscribers(self.runtime.edge_db_path, self.config)

    def start(self) -> None:
        """Derive Kamailio's files, spawn it and wait until it answers OPTIONS."""
        if self.running:
            raise EdgeError(f"{self!r} is already running")
        self._close()
        self.runtime.run_dir.mkdir(parents=True, exist_ok=True)
        self.sync()
        cfg = write_config(self.runtime, self.config)
        self._check_pid_file()
        argv = [kamailio_binary(), "-DD", "-E", "-f", str(cfg), "-P", str(self.files.pid_file),
                "-Y", str(self.files.work_dir), *self._args]
        with self.files.log.open("ab") as log:
            self._log_start = log.tell()
            log.write(f"--- keepline edge starting: {' '.join(argv)}\n".encode())
            log.flush()
            # Own session: a SIGKILL fallback can reach every Kamailio process.
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _check_pid_file(self) -> None:
        """Refuse to start over a live instance: it would lose its pid file to us."""
        pid_file = self.files.pid_file
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            pid = 0
        if pid > 0:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                comm = ""
            if comm == "kamailio":
                raise EdgeStartError(f"another edge (kamailio pid {pid}) is using {pid_file}; "
                                     "stop it first or use another run dir")
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        host, port = self.runtime.bind, self.runtime.edge_port
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise EdgeStartError(
                    f"kamailio exited with status {code} while starting on {host}:{port} "
                    f"(config {self.files.config}); last lines of {self.files.log}:\n"
                    + log_tail(self.files.log, start=self._log_start))
            if send_options(host, port, timeout=0.1) == 200 and self.files.rpc_socket.exists():
                return
            if time.monotonic() > deadline:
                raise EdgeStartError(
                    f"kamailio did not answer OPTIONS on {host}:{port} within "
                    f"{self.start_timeout:g} s (config {self.files.config}); last lines of "
                    f"{self.files.log}:\n" + log_tail(self.files.log, start=self._log_start))
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then SIGKILL the whole process group."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(self.stop_timeout)
        # Kamailio's workers outlive a main process that was killed (SIGKILL, OOM) and
        # keep the SIP port: end whatever is left of its process group, so that a
        # start after a crash can bind the port again.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._close()

    def restart(self) -> None:
        """Stop and start again: for changes only a new config applies (ports, bans)."""
        self.stop()
        self.start()

    def _close(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None

    def __enter__(self) -> Edge:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
