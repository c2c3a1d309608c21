"""A stand-in for the engine's control API, for web-only tests.

It answers ``GET /status`` and streams ``GET /events`` on a Unix socket, with
the wire format :class:`appliance.control.client.EngineClient` reads. It knows
nothing about calls: tests set the status it reports and push the events it
streams, so these tests claim only what the web does with them. Given a
runtime, it also serves the engine's real settings resources
(:mod:`appliance.control.admin`) on that data folder, minus the SIP engine.
"""

from __future__ import annotations

import copy
import json
import queue
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from appliance.control.admin import AdminService, resources
from appliance.control.events import EventType
from appliance.control.recordings import resources as recording_resources
from appliance.control.server import ApiError, ControlApi
from appliance.control.voicemail import resources as voicemail_resources
from appliance.control.voicemail import settings_resources as voicemail_settings
from appliance.provision.service import ProvisionService
from appliance.provision.service import resources as provision_resources
from appliance.settings import Runtime
from appliance.store.config import ConfigStore
from appliance.store.history import History
from appliance.store.recordings import Recordings
from appliance.store.voicemail import Greetings, Mailboxes

SAMPLE_STATUS: dict[str, Any] = {
    "engine": "up",
    "version": "0.1.0",
    "uptime_s": 12.3,
    "capacity": {"max_calls": 4, "active_calls": 1},
    "calls": [
        {
            "id": "c1",
            "from": "+15550100",
            "from_name": "",
            "to": "500",
            "trunk": "pstn",
            "queue": "support",
            "state": "queued",
            "since": 1790000000.0,
        }
    ],
    "registered_extensions": ["201"],
    "edge": "up",
    "restarts": {"count": 0, "last_at": None, "last_exit": None},
}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    # Joined on server_close(), so a test never leaves a handler thread behind.
    daemon_threads = False
    block_on_close = True
    fake: FakeEngine


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: client_address is '' on a Unix socket and tests need no log."""

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path == "/status":
            self._json(200, fake.status)
        elif self.path == "/events":
            self._stream(fake)
        else:
            self._settings("GET")

    def do_POST(self) -> None:
        self._settings("POST")

    def do_PUT(self) -> None:
        self._settings("PUT")

    def do_DELETE(self) -> None:
        self._settings("DELETE")

    def _settings(self, method: str) -> None:
        """The real settings resources (config.json, logins, music) and voicemail's (marked
    and deleted in the data folder's history), no SIP engine."""
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        fake.requests.append((method, self.path, body))
        if fake.api is None:
            self._json(404, {"error_id": "not_found", "message": self.path})
            return
        try:
            code, doc = fake.api.dispatch(method, self.path, body)
        except ApiError as e:
            code, doc = e.status, {"error_id": e.error_id, "message": str(e),
                                   "details": e.details}
        self._json(code, doc)

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, fake: FakeEngine) -> None:
        inbox = fake._subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self._send({"type": "hello", "at": time.time(), "status": fake.status})
            while not fake._stopping.is_set():
                try:
                    event = inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
                self._send(event)
        except OSError:
            pass  # the web side hung up; that is its right
        finally:
            fake._unsubscribe(inbox)
            self.close_connection = True

    def _send(self, event: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.flush()


class FakeEngine:
    """Serve a fixed status and test-pushed events on ``socket_path``.

    Example::

        with FakeEngine(runtime.control_socket) as fake:
            fake.emit({"type": "call_started", "at": time.time()})

    Parameters:
        socket_path: where to listen (the runtime's ``control_socket``).
        status: the status JSON to report; a copy of :data:`SAMPLE_STATUS`
            by default.
    """

    def __init__(self, socket_path: Path, *, status: dict[str, Any] | None = None,
                 runtime: Runtime | None = None) -> None:
        self.socket_path = Path(socket_path)
        #: Every non-status request: (method, path, body), for tests to check.
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        #: Configs the settings resources applied, newest last.
        self.applied: list[dict[str, Any]] = []
        self.api: ControlApi | None = None
        if runtime is not None:
            admin = AdminService(ConfigStore(runtime.config_path), runtime.music_dir,
                                 check=lambda config: [], apply=self.applied.append)
            boxes = Mailboxes(runtime.data_dir / "voicemail", History(runtime.history_path))
            self.api = ControlApi(lambda: self.status, {
                **resources(admin),
                **voicemail_resources(boxes, self._emit_event,
                                      lambda: ConfigStore(runtime.config_path).load()),
                # Call back from the inbox: the real one rings the phone (tests/sip).
                ("POST", "calls"): lambda arg, body: {"id": f"fake-{arg}-call"},
                # A wrap-up code from the card: the real one is tests/handlers' and sip's.
                ("POST", "agents"): _fake_wrapup,
                # Do-not-disturb from the agent page and the dashboard (the real one:
                # tests/control/test_operations.py, tests/handlers/test_dnd.py).
                ("POST", "dnd"): lambda arg, body: {"extension": arg, "dnd": body.get("on")},
                **voicemail_settings(Greetings(runtime.data_dir / "voicemail-greetings"),
                                     lambda: ConfigStore(runtime.config_path).load(),
                                     runtime.smtp_password_path),
                # Listens are logged and recordings deleted in the data folder's history.
                **recording_resources(Recordings(runtime.data_dir / "recordings",
                                                 History(runtime.history_path))),
                # Desk-phone provisioning on the data folder (no check-sync sender).
                **provision_resources(ProvisionService(
                    runtime.data_dir / "provisioning.json",
                    config=lambda: ConfigStore(runtime.config_path).load(),
                    set_password=admin.extension_password, sip_server=runtime.bind,
                    sip_port=runtime.edge_port)),
            })
        self.status = copy.deepcopy(status if status is not None else SAMPLE_STATUS)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[dict[str, Any]]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeEngine:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        server = _Server(str(self.socket_path), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-engine"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every open event stream."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> FakeEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _emit_event(self, event: EventType) -> None:
        self.emit({"type": event.NAME, "at": time.time(), **event.fields()})

    def emit(self, event: dict[str, Any]) -> None:
        """Send ``event`` to every open event stream."""
        with self._lock:
            for inbox in self._subscribers:
                inbox.put(event)

    @property
    def streams(self) -> int:
        """How many event streams are open now."""
        with self._lock:
            return len(self._subscribers)

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` event streams are open, so an emit is not lost."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._subscribers) >= count:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"fewer than {count} event streams opened in {timeout} s")

    def _subscribe(self) -> queue.Queue[dict[str, Any]]:
        inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._subscribers.append(inbox)
        return inbox

    def _unsubscribe(self, inbox: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers.remove(inbox)


def _fake_wrapup(arg: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /agents/<ext>/wrapup``: "sale" is taken, anything else is the engine's 409."""
    if not arg.endswith("/wrapup") or body.get("code") != "sale":
        raise ApiError(409, "no_wrapup", f"queue support has no wrap-up code "
                       f"{body.get('code')!r}", field="code")
    return {"call": "fake-call", "queue": "support", "code": "sale", "conversion": True,
            "note": body.get("note", "")}
