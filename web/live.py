"""The live dashboard: status page, status JSON, and the engine's event stream.

Everything here is read from the engine on each request; nothing is cached, so
the page never shows a state the engine has already left.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers.response import Response as WerkzeugResponse

from appliance.control.client import EngineClient, EngineRefused, EngineUnavailable
from appliance.control.events import (
    EngineDown,
    Hello,
    LoggedOut,
    PopChanged,
    PopNamed,
    PopShown,
    RecordingChanged,
    Status,
    SupervisionChanged,
    VoicemailChanged,
    WrapupGiven,
)
from appliance.core.supervision import MODES, SUPERVISING_ROLES
from web import ENGINE_EXTENSION, engine, stopping
from web.security import User, current_user, for_agents, session_user

bp = Blueprint("live", __name__)
log = logging.getLogger(__name__)

# How often a stream checks whether the server is stopping; short so that
# SIGTERM is not held up by an open browser tab.
_POLL_S = 0.25
#: An extension number, as the config allows it.
_EXTENSION = re.compile(r"^[0-9]{2,6}$")
# Browsers reconnect this long after the stream ends (engine restart, shutdown).
_RETRY_MS = 5000
# A phone's callers that count as "on its card" (web.screenpop): its last few pops,
# for a working day; of at most this many phones.
_POPS_KEPT = 20
_POP_KEPT_S = 12 * 3600.0
_POP_PHONES = 1000


class _Down:
    """Sentinel the relay thread queues when the engine stream has ended."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# What a browser's inbox holds: an engine event, or word that the stream ended.
Item = dict[str, Any] | _Down


def fetch_status() -> tuple[dict[str, Any] | None, str | None]:
    """The engine's status, or None and a reason fit for a banner."""
    try:
        status = engine().status()
    except EngineUnavailable as e:
        return None, f"Engine not reachable: {e}"
    except EngineRefused as e:
        return None, f"Engine error: {e} ({e.error_id})"
    except ValueError as e:  # the engine answered something that is not JSON
        return None, f"Engine not reachable: invalid answer ({e})"
    if not isinstance(status, dict):
        return None, "Engine not reachable: invalid answer (not an object)"
    if status.get("engine") != "up":
        # The control API answers, but the call engine behind it is not running.
        detail = status.get("error")
        return status, f"Engine is down: {detail}" if detail else "Engine is down"
    return status, None


def _call_view(call: dict[str, Any]) -> dict[str, Any]:
    since = call.get("since")
    return {
        "id": str(call.get("id", "")),
        "from": str(call.get("from", "")),
        "from_name": str(call.get("from_name") or ""),
        "to": str(call.get("to", "")),
        "trunk": str(call.get("trunk") or ""),
        "queue": str(call.get("queue") or ""),
        "state": str(call.get("state", "")),
        "since": float(since) if isinstance(since, int | float) else None,
        "extension": str(call.get("extension") or ""),
    }


def _status_view(status: dict[str, Any]) -> dict[str, Any]:
    """Give the template every field with a default.

    A missing key must not turn into a Jinja error page: the engine and the
    web can be upgraded at different times. live.js does the same shaping.
    """
    capacity = status.get("capacity") or {}
    calls = status.get("calls") or []
    agents = status.get("agents") or {}
    failover = status.get("failover") or {}
    monitors = failover.get("monitors") or {}
    return {
        "engine": str(status.get("engine", "unknown")),
        "edge": str(status.get("edge", "unknown")),
        "edge_error": str(status.get("edge_error") or ""),
        "version": str(status.get("version", "")),
        "uptime_s": status.get("uptime_s"),
        "max_calls": capacity.get("max_calls"),
        "capacity_warning": str(capacity.get("warning") or ""),
        "active_calls": capacity.get("active_calls", len(calls)),
        "calls": [_call_view(c) for c in calls if isinstance(c, dict)],
        "registered_extensions": [str(x) for x in status.get("registered_extensions") or []],
        "queues": [_queue_view(q, agents) for q in status.get("queues") or []
                   if isinstance(q, dict)],
        "agents": [{"extension": str(ext), "state": str(a.get("state", "")),
                    "queues": [str(q) for q in a.get("queues") or []],
                    "paused_reason": str(a.get("paused_reason") or "")}
                   for ext, a in sorted(agents.items()) if isinstance(a, dict)],
        "trunks": [_trunk_view(t, monitors) for t in status.get("trunks") or []
                   if isinstance(t, dict)],
        "failover": {"mode": str(failover.get("mode") or "unknown"),
                     "detail": _failover_detail(failover)},
        "callbacks": [c for c in status.get("callbacks") or [] if isinstance(c, dict)],
        "system": status.get("system") if isinstance(status.get("system"), dict) else None,
        "restarts": status.get("restarts") if isinstance(status.get("restarts"), dict) else None,
        "dnd": [str(x) for x in status.get("dnd") or []],
    }


def _queue_view(q: dict[str, Any], agents: dict[str, Any]) -> dict[str, Any]:
    members = [str(m.get("extension")) for m in q.get("members") or [] if isinstance(m, dict)]
    return {
        "name": str(q.get("name", "")),
        "waiting": [{"id": str(c.get("id", "")), "from": str(c.get("from") or ""),
                     "callback": c.get("callback"), "wait_s": float(c.get("wait_s") or 0),
                     "ringing": [str(r) for r in c.get("ringing") or []]}
                    for c in q.get("waiting") or [] if isinstance(c, dict)],
        "members": len(members),
        "available": sum(1 for m in members
                         if (agents.get(m) or {}).get("state") == "available"),
    }


def _trunk_view(t: dict[str, Any], monitors: dict[str, Any]) -> dict[str, Any]:
    monitor = monitors.get(f"trunk:{t.get('name')}") or {}
    state = str(monitor.get("state") or ("unknown" if t.get("probed") else "not watched"))
    return {"name": str(t.get("name", "")), "kind": str(t.get("kind", "")),
            "host": str(t.get("host", "")), "state": state,
            "detail": str(monitor.get("detail") or "")}


def _failover_detail(failover: dict[str, Any]) -> str:
    parts = []
    if failover.get("manual_disaster"):
        parts.append("switched on by hand")
    if failover.get("override"):
        parts.append(f"{failover['override']} forced")
    return ", ".join(parts)


@bp.app_template_filter("clock")
def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts is not None else ""


@bp.app_template_filter("isotime")
def _isotime(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else ""


@bp.app_template_filter("duration")
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@bp.record_once
def _setup(state: Any) -> None:
    app = state.app
    # One semaphore per app: each stream pins a waitress worker thread.
    app.extensions["keepline.sse_slots"] = StreamSlots(
        int(app.config["KEEPLINE_SSE_MAX_STREAMS"]),
        per_login=int(app.config["KEEPLINE_SSE_MAX_PER_LOGIN"]),
        admin_reserve=int(app.config["KEEPLINE_SSE_ADMIN_RESERVED"]))
    app.extensions["keepline.events"] = EventHub(
        app.extensions[ENGINE_EXTENSION],
        idle_timeout=float(app.config["KEEPLINE_ENGINE_EVENTS_IDLE_S"]),
    )


@bp.app_template_filter("megabytes")
def _megabytes(mb: float | None) -> str:
    if mb is None:
        return ""
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


@bp.app_template_filter("uptime")
def _uptime(seconds: float | None) -> str:
    """How long something has been up, with units ("8:34" read as a clock time): as
    ``util.js`` ``uptime``."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    days, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if days:
        return f"{days} d {h} h"
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


@bp.get("/")
@for_agents
def index() -> str:
    """Server-rendered dashboard; live.js keeps it current where JS runs."""
    status, error = fetch_status()
    user = current_user()
    return render_template(
        "status.html",
        status=_status_view(status) if status is not None else None,
        error=error,
        now=time.time(),
        is_admin=bool(user and user.is_admin),
        user_extension=user.extension if user else None,
        may_supervise=_may_supervise(user),
    )


def _may_supervise(user: User | None) -> bool:
    """Supervisors and admins with a phone of their own may join calls from here."""
    return bool(user and user.extension and user.role in SUPERVISING_ROLES)


@bp.post("/calls/<extension>/supervise")
@for_agents
def supervise(extension: str) -> WerkzeugResponse:
    """Ring the supervisor's own phone to listen to, whisper to or barge in on the call of
    ``extension`` (the engine checks the call exists and the login's phone may)."""
    user = current_user()
    if not _may_supervise(user):
        abort(403, description="Only supervisors and admins with a phone may join calls.")
    assert user is not None
    mode = request.form.get("mode", "listen")
    if mode not in MODES:
        abort(400, description=f"mode: expected one of {', '.join(MODES)}")
    try:
        engine().request("POST", "/calls/supervise",
                         {"supervisor": user.extension, "extension": extension, "mode": mode})
        flash(f"Your phone ({user.extension}) is ringing: answer it to {mode} on "
              f"{extension}'s call. Keys 4, 5, 6 switch to listen, whisper, barge.")
    except (EngineUnavailable, EngineRefused) as e:
        flash(f"Could not join {extension}'s call: {e}", "error")
    return redirect(url_for("live.index"))


@bp.post("/agents/<extension>/<action>")
@for_agents
def agent_action(extension: str, action: str) -> WerkzeugResponse:
    """Pause, unpause, log in or out: admins for anyone, agents for their own phone."""
    user = current_user()
    assert user is not None
    if not user.is_admin and user.extension != extension:
        abort(403, description="Agents can only change their own state.")
    if action not in ("pause", "unpause", "login", "logout"):
        abort(404)
    body = {"reason": request.form.get("reason", "")[:40]} if action == "pause" else {}
    try:
        engine().request("POST", f"/agents/{extension}/{action}", body)
    except (EngineUnavailable, EngineRefused) as e:
        flash(f"Could not {action} {extension}: {e}", "error")
    return redirect(url_for("live.index"))


@bp.post("/dnd")
@for_agents
def dnd() -> WerkzeugResponse:
    """Do-not-disturb on (``on=yes``) or off for ``extension``: admins for any phone,
    everyone else for their own (the engine stores it, as ``*78``/``*79`` do)."""
    user = current_user()
    assert user is not None
    ext = request.form.get("extension", "").strip() or (user.extension or "")
    on = request.form.get("on", "")
    if on not in ("yes", "no"):
        abort(400, description="on: expected yes or no")
    if not _EXTENSION.fullmatch(ext):
        abort(400, description="extension: expected the phone's number (2 to 6 digits)")
    if not user.is_admin and user.extension != ext:
        abort(403, description="Only an administrator can change another phone's "
                               "do-not-disturb.")
    try:
        engine().request("POST", f"/dnd/{ext}", {"on": on == "yes"})
        flash(f"Do-not-disturb is {'on' if on == 'yes' else 'off'} for {ext}.")
    except (EngineUnavailable, EngineRefused) as e:
        flash(f"Could not change do-not-disturb of {ext}: {e}", "error")
    return redirect(url_for("live.index"))


@bp.get("/api/status")
@for_agents
def api_status() -> tuple[Response, int]:
    """The engine's status JSON as is; API errors carry an error id."""
    try:
        status = engine().status()
    except EngineUnavailable as e:
        body = {"error_id": "engine_unavailable", "message": str(e), "details": {}}
        return _no_store(jsonify(body)), 503
    except EngineRefused as e:
        body = {"error_id": e.error_id, "message": str(e), "details": e.details}
        return _no_store(jsonify(body)), 502
    except ValueError as e:
        body = {"error_id": "engine_invalid_answer", "message": str(e), "details": {}}
        return _no_store(jsonify(body)), 502
    return _no_store(jsonify(status)), 200


@bp.get("/events")
@for_agents
def events() -> Response | tuple[Response, int]:
    """Relay the engine's event stream to the browser as server-sent events.

    The stream always answers 200 so that ``EventSource`` keeps reconnecting:
    if the engine is down it sends one ``engine_down`` event and ends, and the
    browser retries after ``retry`` ms.
    """
    return event_stream()


def event_stream(shape: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
                 ) -> Response | tuple[Response, int]:
    """The logged-in user's relay of the engine's events (see :func:`_relay` for
    ``shape``): one of the capped stream slots, ended by logout."""
    slots: StreamSlots = current_app.extensions["keepline.sse_slots"]
    # Taken now: the generator runs after the request context is gone.
    viewer = current_user()
    assert viewer is not None  # the guard let only logged-in users in
    refused = slots.acquire(viewer, wait=float(current_app.config["KEEPLINE_SSE_SLOT_WAIT_S"]))
    if refused is not None:
        body = {"error_id": "too_many_streams", "message": refused, "details": {}}
        return _no_store(jsonify(body)), 503
    heartbeat = float(current_app.config["KEEPLINE_SSE_HEARTBEAT_S"])
    hub: EventHub = current_app.extensions["keepline.events"]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    name, sid, pw = session.get("user"), session.get("sid"), session.get("pw")
    # waitress (python -m web sets channel_request_lookahead) says when the browser has
    # gone: a page left frees its slot at once, not at the next heartbeat, so quick
    # clicks between live pages do not run into the per-login cap.
    gone = request.environ.get("waitress.client_disconnected")

    def logged_in() -> bool:
        # Asked at each heartbeat: logout, a new password or a removed login ends the
        # stream too. A stream is not a request: it does not keep the session alive.
        with app.app_context():
            return session_user(name, sid, pw, touch=False) is not None

    response = Response(_relay(hub, engine(), stopping(), heartbeat, viewer, logged_in, shape,
                               client_gone=gone if callable(gone) else None),
                        mimetype="text/event-stream")
    # Released on close, which the WSGI server calls even if the body was
    # never iterated (a browser that left at once).
    response.call_on_close(_once(lambda: slots.release(viewer)))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


class StreamSlots:
    """Who holds the ``/events`` streams: at most ``total``, ``per_login`` for one login,
    and the last ``admin_reserve`` only for admins, so that one login's open tabs
    cannot lock the admin's dashboard out.
    """

    def __init__(self, total: int, *, per_login: int, admin_reserve: int) -> None:
        self.total = total
        self.per_login = per_login
        self.admin_reserve = admin_reserve
        self._held: dict[str, int] = {}
        self._lock = threading.Condition()

    def acquire(self, user: User, wait: float = 0.0) -> str | None:
        """Take a slot for ``user``: None, or why not (a message for the page).

        ``wait``: seconds to wait for a slot to come back first. A page that follows
        another asks for its stream while the page left is still closing its own.
        """
        deadline = time.monotonic() + wait
        with self._lock:
            while (refused := self._refusal(user)) is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return refused
                self._lock.wait(left)
            self._held[user.name] = self._held.get(user.name, 0) + 1
            return None

    def _refusal(self, user: User) -> str | None:
        in_use = sum(self._held.values())
        mine = self._held.get(user.name, 0)
        if mine >= self.per_login:
            return (f"{user.name} has {mine} live views open already (at most "
                    f"{self.per_login}); close one and reload")
        free = self.total - in_use
        if free <= 0 or (not user.is_admin and free <= self.admin_reserve):
            return "too many live views are open; close one and reload"
        return None

    def release(self, user: User) -> None:
        with self._lock:
            left = self._held.get(user.name, 0) - 1
            if left > 0:
                self._held[user.name] = left
            else:
                self._held.pop(user.name, None)
            self._lock.notify_all()


class EventHub:
    """One engine event stream shared by every open ``/events`` response.

    The engine spends a thread on each stream, and a thread blocked reading a
    socket cannot be told to stop, so the web keeps at most one stream open:
    it opens for the first subscriber and closes at the first event after the
    last subscriber left (the engine's keep-alive comments are not events, so
    a quiet engine keeps this one idle thread a while; that is the bound).

    Parameters:
        client: the engine client.
        idle_timeout: seconds without a byte from the engine after which the
            stream is reopened, or, if it never answered, declared down. The
            engine sends a keep-alive every 15 s, so this only fires if it hangs.
    """

    def __init__(self, client: EngineClient, *, idle_timeout: float) -> None:
        self._client = client
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._inboxes: set[queue.Queue[Item]] = set()
        self._reader: threading.Thread | None = None
        # extension -> (caller number, when) of its newest pops, newest last
        self._pops: dict[str, list[tuple[str, float]]] = {}

    def remember(self, event: dict[str, Any]) -> None:
        """Note a ``pop_shown``: that caller is on that phone's card (see :meth:`popped`)."""
        with self._lock:
            self._remember(event)

    def _remember(self, event: dict[str, Any]) -> None:
        if event.get("type") != PopShown.NAME:
            return
        extension, number = str(event.get("extension", "")), str(event.get("caller_number", ""))
        pops = self._pops.setdefault(extension, [])
        pops[:] = [p for p in pops if p[0] != number][-(_POPS_KEPT - 1):]
        pops.append((number, time.monotonic()))
        if len(self._pops) > _POP_PHONES:
            del self._pops[next(iter(self._pops))]

    def popped(self, extension: str, number: str) -> bool:
        """Whether ``number`` rang ``extension`` (a relayed screen-pop) lately: one of
        its last few pops, within the last :data:`_POP_KEPT_S`."""
        cutoff = time.monotonic() - _POP_KEPT_S
        with self._lock:
            return any(n == number and at >= cutoff for n, at in self._pops.get(extension, []))

    def subscribe(self) -> queue.Queue[Item]:
        """A queue that receives every engine event from now on."""
        inbox: queue.Queue[Item] = queue.Queue()
        with self._lock:
            self._inboxes.add(inbox)
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._run, name="keepline-events", daemon=True
                )
                self._reader.start()
        return inbox

    def unsubscribe(self, inbox: queue.Queue[Item]) -> None:
        with self._lock:
            self._inboxes.discard(inbox)

    def _publish(self, item: Item | None) -> bool:
        """Hand ``item`` (if any) to every subscriber; False, and retire, if none is left."""
        with self._lock:
            if not self._inboxes:
                self._reader = None
                return False
            if item is not None:
                if isinstance(item, dict):
                    self._remember(item)  # before any browser can ask about it
                for inbox in self._inboxes:
                    inbox.put(item)
            return True

    def _run(self) -> None:
        try:
            reason = self._read()
        except Exception as e:
            # Never let a relay bug die silently on its thread: log it, and
            # tell the browsers, which will reconnect.
            log.exception("engine event relay failed")
            reason = f"event relay failed: {e}"
        if reason is None:
            return  # nobody was listening any more; _publish retired us
        with self._lock:
            for inbox in self._inboxes:
                inbox.put(_Down(reason))
            self._inboxes.clear()
            self._reader = None

    def _read(self) -> str | None:
        """Relay until the stream ends: why it ended, or None if nobody listens."""
        reconnected = False
        while True:
            stream = self._client.events(timeout=self._idle_timeout)
            answered = False
            try:
                for event in stream:
                    answered = True
                    if event.get("type") == Hello.NAME:
                        if not reconnected:
                            # Each browser got its own fresh hello already.
                            if not self._publish(None):
                                return None
                            continue
                        # After a reconnect events may have been missed: the
                        # snapshot goes out as a status update.
                        event = {**event, "type": Status.NAME,
                                 "at": event.get("at", time.time())}
                    if not self._publish(event):
                        return None
            except EngineUnavailable as e:
                return str(e)
            except EngineRefused as e:
                return f"engine refused the event stream: {e}"
            except TimeoutError:
                if not answered:
                    return f"engine did not answer within {self._idle_timeout:g} s"
                reconnected = True
                continue
            except (OSError, ValueError) as e:
                return f"engine event stream failed: {e}"
            finally:
                # events() is a generator: closing it closes its socket now,
                # not whenever the garbage collector gets to it.
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            return "engine closed the event stream"


#: Events about one phone's calls (screen-pops): only for that phone's user and admins.
_PRIVATE_EVENTS = frozenset({PopShown.NAME, PopChanged.NAME, PopNamed.NAME,
                             WrapupGiven.NAME, SupervisionChanged.NAME,
                             RecordingChanged.NAME})


def _visible(event: dict[str, Any], viewer: User | None) -> bool:
    """Whether ``viewer`` may see ``event``: a pop goes to its phone's user and to admins,
    a mailbox's change to its readers and to admins."""
    kind = event.get("type")
    if kind not in _PRIVATE_EVENTS and kind != VoicemailChanged.NAME:
        return True
    if viewer is None:
        return False
    if viewer.is_admin:
        return True
    if viewer.extension is None:
        return False
    if kind == VoicemailChanged.NAME:
        readers = event.get("readers")
        return isinstance(readers, list) and viewer.extension in readers
    return str(event.get("extension")) == viewer.extension


def _relay(
    hub: EventHub, client: EngineClient, server_stopping: threading.Event, heartbeat: float,
    viewer: User | None = None, logged_in: Callable[[], bool] | None = None,
    shape: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    *, client_gone: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yield SSE frames: a hello, engine events, heartbeat comments, a last word.

    ``viewer`` is the logged-in user, taken in the view: screen-pop events reach
    only their phone's user and admins (see :func:`_visible`). ``logged_in`` is
    asked at each heartbeat; once it says no, the stream ends with ``logged_out``.
    ``shape``, if given, rewrites every event before it is sent, or drops it (None):
    the wallboard's stream (web.wallboard) sends only counts, never a caller.
    ``client_gone``, if given, is asked at each poll; once the browser has closed the
    connection the stream ends (without it, a write at the next heartbeat finds out).
    """
    def frame(event: dict[str, Any]) -> str | None:
        shaped = event if shape is None else shape(event)
        return None if shaped is None else _frame(shaped)

    # Subscribe before taking the snapshot, so no event falls between the two.
    inbox = hub.subscribe()
    try:
        yield f"retry: {_RETRY_MS}\n\n"
        try:
            status = client.status()
        except (EngineUnavailable, EngineRefused, ValueError) as e:
            yield frame({"type": EngineDown.NAME, "at": time.time(), "message": str(e)}) or ""
            return
        yield frame({"type": Hello.NAME, "at": time.time(), "status": status}) or ""
        next_beat = time.monotonic() + heartbeat
        # Poll in short steps: a server shutdown must not wait for a heartbeat.
        while not server_stopping.is_set():
            if client_gone is not None and client_gone():
                return
            wait = min(_POLL_S, max(0.0, next_beat - time.monotonic()))
            try:
                item = inbox.get(timeout=wait)
            except queue.Empty:
                if time.monotonic() >= next_beat:
                    if logged_in is not None and not logged_in():
                        yield frame({"type": LoggedOut.NAME, "at": time.time()}) or ""
                        return
                    yield ": heartbeat\n\n"
                    next_beat = time.monotonic() + heartbeat
                continue
            if isinstance(item, _Down):
                yield frame({"type": EngineDown.NAME, "at": time.time(),
                             "message": item.reason}) or ""
                return
            if _visible(item, viewer) and (sent := frame(item)) is not None:
                yield sent
    finally:
        hub.unsubscribe(inbox)


def _frame(event: dict[str, Any]) -> str:
    # json.dumps escapes newlines, so one event is always one data line.
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _once(func: Callable[[], None]) -> Callable[[], None]:
    called = threading.Lock()

    def wrapper() -> None:
        if called.acquire(blocking=False):
            func()

    return wrapper
