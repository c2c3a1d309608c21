"""``python -m web`` as a child process, the way the launcher and systemd start it."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

from appliance.settings import Runtime
from tests.support.stack import REPO


class WebServer:
    """The real web process for ``runtime``, on 127.0.0.1 at ``runtime.web_port``.

    Parameters:
        runtime: where the engine's socket and the data are.
        log_path: the process's stdout and stderr go here.
    """

    def __init__(self, runtime: Runtime, log_path: Path) -> None:
        self.runtime = runtime
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.web_port}"

    def __enter__(self) -> WebServer:
        env = {**os.environ, **self.runtime.as_env(), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "web", "--bind", "127.0.0.1"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web exited {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.runtime.web_port), 0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"web did not listen within 15 s:\n{self.log()}")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def http_login(base_url: str, username: str, password: str) -> str:
    """Log in to a real server over HTTP; returns the ``Cookie`` header to send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/login", timeout=5) as page:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert found, "no CSRF token on the login page"
    form = urllib.parse.urlencode({"username": username, "password": password,
                                   "csrf_token": found.group(1)}).encode()
    with opener.open(f"{base_url}/login", data=form, timeout=5) as done:
        assert "/login" not in done.geturl(), "login failed"
    return "; ".join(f"{c.name}={c.value}" for c in jar)
