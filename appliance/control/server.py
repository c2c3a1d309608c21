"""The engine's control API: small HTTP/JSON resources and an event stream on a Unix socket.

Handlers run on the server's threads and never touch pjsua2: they post work to
the engine thread and wait on its future. Errors carry a status, an error id,
a message and details, like wazo-calld's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from appliance.control.client import JsonTooDeep, loads
from appliance.control.events import EventBus
from appliance.errors import KeeplineError

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
#: A hold-music upload (20 MB) as base64 in JSON, with room to spare.
MAX_BODY_BYTES = 32 * 1024 * 1024


class ApiError(KeeplineError):
    """An error the API reports to its client as JSON."""

    def __init__(self, status: int, error_id: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.details = details


#: A resource's handler: ``(arg, body) -> answer``, where ``arg`` is the path after the
#: resource's name (``"202/pause"`` for ``POST /agents/202/pause``).
Handler = Callable[[str, dict[str, Any]], Any]


class ControlApi:
    """What the API can do; the server maps HTTP requests onto these methods.

    Parameters:
        status: returns the status document (runs engine work itself).
        actions: name -> callable(body) for POST/DELETE resources.
    """

    def __init__(self, status: Callable[[], dict[str, Any]],
                 actions: dict[tuple[str, str], Handler]) -> None:
        self.status = status
        self.actions = actions

    def dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/status":
            return 200, self.status()
        parts = path.strip("/").split("/")
        key = (method, parts[0])
        if key not in self.actions:
            raise ApiError(404, "not_found", f"no resource {method} {path}")
        arg = "/".join(parts[1:])
        return 200, self.actions[key](arg, body)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: Path, api: ControlApi, bus: EventBus) -> None:
        self.api = api
        self.bus = bus
        self.closing = threading.Event()
        super().__init__(str(path), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def address_string(self) -> str:
        return "unix"

    def _json(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
            raw = self.rfile.read(length) if length else b""
            try:
                body = loads(raw) if raw else {}
            except JsonTooDeep as e:
                raise ApiError(400, "bad_json", f"request body: {e}") from None
            except ValueError:
                raise ApiError(400, "bad_json", "request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "bad_json", "request body must be a JSON object")
            status, doc = self.server.api.dispatch(method, self.path, body)
            self._json(status, doc)
        except ApiError as e:
            self._json(e.status, {"error_id": e.error_id, "message": str(e),
                                  "details": e.details})
        except KeeplineError as e:
            self._json(409, {"error_id": type(e).__name__, "message": str(e), "details": {}})
        except Exception as e:
            log.exception("control: %s %s failed", method, self.path)
            self._json(500, {"error_id": "internal", "message": str(e), "details": {}})

    def do_GET(self) -> None:
        if self.path == "/events":
            self._stream()
        else:
            self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _stream(self) -> None:
        """Server-sent events: a hello with the status, then every event as it happens."""
        sub = self.server.bus.subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                hello: dict[str, Any] = {"type": "hello", "status": self.server.api.status()}
            except Exception as e:
                hello = {"type": "hello", "status": {"engine": "down", "error": str(e)}}
            self._send_event(hello)
            while not self.server.closing.is_set():
                event = sub.get(timeout=HEARTBEAT_S)
                if event is None:
                    self.wfile.write(b": keepalive\n\n")
                else:
                    self._send_event(event)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            sub.close()
            self.close_connection = True

    def _send_event(self, event: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        self.wfile.flush()


class ControlServer:
    """Serves a :class:`ControlApi` on a Unix socket in its own threads.

    The socket is made group-writable so the web process (same group) can use it.
    """

    def __init__(self, path: Path, api: ControlApi, bus: EventBus) -> None:
        self.path = path
        self._api = api
        self._bus = bus
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a killed engine
        self._server = _Server(self.path, self._api, self._bus)
        os.chmod(self.path, 0o660)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="control",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = None
