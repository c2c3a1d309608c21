"""Client for the engine's control API, used by the web process and the CLI.

Plain stdlib (``http.client`` over ``AF_UNIX``) so the web process needs
nothing from the engine but this module.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.errors import KeeplineError

#: Deeper JSON than this is refused before it is parsed. Keepline's own documents nest
#: about 8 levels; Python's parser would raise RecursionError near 1000.
MAX_JSON_DEPTH = 64
# A string (skipped whole, so brackets in it do not count) or a bracket.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class JsonTooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH`: refused, not parsed."""


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """:func:`json.loads` that refuses deep nesting with :class:`JsonTooDeep` (a
    ValueError) instead of recursing until Python raises RecursionError."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    depth = 0
    for token in _JSON_TOKENS.finditer(raw):
        mark = token.group()
        if mark in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(f"JSON nested too deeply (more than {max_depth} levels)")
        elif mark in (b"]", b"}"):
            depth -= 1
    return json.loads(data)


class EngineUnavailable(KeeplineError, ConnectionError):
    """The engine's control socket is missing or did not answer."""


class EngineRefused(KeeplineError, ValueError):
    """The engine answered with an error: ``status``, ``error_id``, message and details."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.error_id = str(body.get("error_id", "unknown"))
        self.details = body.get("details", {})
        super().__init__(str(body.get("message", f"engine answered {status}")))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("engine", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError as e:
            sock.close()
            raise EngineUnavailable(f"engine not reachable at {self._path}: {e.strerror or e}") \
                from None
        self.sock = sock


class EngineClient:
    """Talks to one engine.

    Parameters:
        socket_path: the engine's control socket (``run_dir/engine.sock``).
        timeout: seconds to wait for an answer.
    """

    def __init__(self, socket_path: Path, *, timeout: float = 5.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, EngineUnavailable):
                    raise
                raise EngineUnavailable(f"engine at {self.socket_path} failed: {e}") from None
        finally:
            conn.close()
        decoded = loads(data) if data else None
        if resp.status >= 400:
            raise EngineRefused(resp.status, decoded if isinstance(decoded, dict) else {})
        return decoded

    def status(self) -> dict[str, Any]:
        """Engine up, capacity, live calls and registered extensions."""
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def events(self, *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield engine events as they happen (server-sent-event framing on the wire).

        The first event is always ``{"type": "hello", ...}`` with the current status.
        """
        conn = _UnixConnection(self.socket_path, timeout if timeout is not None else 3600)
        try:
            conn.request("GET", "/events")
            resp = conn.getresponse()
            if resp.status != 200:
                raise EngineRefused(resp.status, {})
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    yield loads(line[6:])
        finally:
            conn.close()
