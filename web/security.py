"""Who may see what: logins, roles, CSRF tokens and the login rate limit.

Every view needs a logged-in user unless it is listed in ``PUBLIC``; every view
needs the ``admin`` role unless it is marked :func:`for_agents` (every role but the
wallboard) or :func:`for_supervisors` (supervisors too). A ``wallboard``
login (the office TV) may use only the views marked :func:`for_wallboard`. So a
new view is locked down until someone decides otherwise. Every state-changing request
(POST, PUT, PATCH, DELETE) must carry the session's CSRF token, as the form
field ``csrf_token`` or the header ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.wrappers.response import Response

#: ``prov.fetch``: desk phones fetch their settings without a login (the engine decides
#: who may have a file: appliance/provision/service.py).
PUBLIC = frozenset({"auth.login", "static", "prov.fetch"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LIMITER_EXTENSION = "keepline.login_limiter"
SESSIONS_EXTENSION = "keepline.sessions"
#: A session that has made no request for this long has ended (12 h: a working day and
#: then some; the screen-pop page makes requests whenever the phone rings).
SESSION_IDLE_S = 12 * 3600.0
#: The role of the office TV's login (appliance.store.schema.ROLES).
WALLBOARD_ROLE = "wallboard"
#: The role that may listen to recordings and join calls, as admins may.
SUPERVISOR_ROLE = "supervisor"
#: Paths whose anonymous requests get a 401, not the login page: an <audio> element
#: cannot follow a redirect to a form.
_AUDIO_PATHS = ("/recordings/",)

F = TypeVar("F", bound=Callable[..., Any])


def for_agents(view: F) -> F:
    """Let the ``agent`` role use this view too (admins always may)."""
    view._keepline_agents = True  # type: ignore[attr-defined]
    return view


def for_supervisors(view: F) -> F:
    """Let the ``supervisor`` role use this view too (admins always may); agents and the
    wallboard may not: call recordings are for the people who answer for the calls."""
    view._keepline_supervisors = True  # type: ignore[attr-defined]
    return view


def for_wallboard(view: F) -> F:
    """Let the ``wallboard`` role use this view (admins always may). A wallboard login
    may use nothing else, not even the views for agents: the TV faces the room."""
    view._keepline_wallboard = True  # type: ignore[attr-defined]
    return view


@dataclass(frozen=True)
class User:
    """The logged-in user, as ``g.user``."""

    name: str
    role: str
    extension: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_wallboard(self) -> bool:
        return self.role == WALLBOARD_ROLE

    @property
    def is_supervisor(self) -> bool:
        return self.role == SUPERVISOR_ROLE

    @property
    def may_listen(self) -> bool:
        """Whether this login may play call recordings (admins and supervisors)."""
        return self.is_admin or self.is_supervisor


def csrf_token() -> str:
    """The session's CSRF token (made on first use); templates call this."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


class LoginLimiter:
    """Failed logins per source address: after ``limit`` in ``window_s``, refuse for a while.

    In memory on purpose: a restart forgets, and the box is on a LAN. Addresses
    with no recent failure are dropped, so memory stays bounded by the attackers
    of the last window.
    """

    def __init__(self, *, limit: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 if it may now."""
        with self._lock:
            recent = self._recent(address)
            if len(recent) < self.limit:
                return 0
            return max(1, int(recent[0] + self.window_s - self._clock()) + 1)

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self._clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        now = self._clock()
        for stale in [a for a, q in self._failures.items()
                      if not q or q[-1] < now - self.window_s]:
            del self._failures[stale]
        recent = self._failures.setdefault(address, deque())
        while recent and recent[0] < now - self.window_s:
            recent.popleft()
        return recent


class SessionTable:
    """The sessions that are live, by the random id their cookie carries.

    The signed cookie alone cannot be taken back: a copy of it would keep working
    after logout. So each login gets a random id, and a cookie is good only while
    its id is in this table: logout removes it, and so does ``idle_s`` without a
    request. The table is in memory on purpose: the web writes nothing to disk (its
    file system is read-only), so a web restart ends every session and everyone logs
    in again. At most ``limit`` sessions are kept; past that the longest idle one ends.
    """

    def __init__(self, *, idle_s: float = SESSION_IDLE_S, limit: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.limit = limit
        self._clock = clock
        self._seen: dict[str, tuple[str, float]] = {}  # id -> (login, last request)
        self._lock = threading.Lock()

    def start(self, login: str) -> str:
        """A new session for ``login``: its id, for the cookie."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for stale in [k for k, (_, seen) in self._seen.items() if now - seen > self.idle_s]:
                del self._seen[stale]
            while len(self._seen) >= self.limit:
                del self._seen[min(self._seen, key=lambda k: self._seen[k][1])]
            self._seen[sid] = (login, now)
        return sid

    def alive(self, sid: str, login: str, *, touch: bool = True) -> bool:
        """Whether ``sid`` is a live session of ``login``; ``touch`` counts this as a request."""
        with self._lock:
            found = self._seen.get(sid)
            if found is None or not hmac.compare_digest(found[0], login):
                return False
            now = self._clock()
            if now - found[1] > self.idle_s:
                del self._seen[sid]
                return False
            if touch:
                self._seen[sid] = (login, now)
            return True

    def end(self, sid: str) -> None:
        with self._lock:
            self._seen.pop(sid, None)


def sessions() -> SessionTable:
    table: SessionTable = current_app.extensions[SESSIONS_EXTENSION]
    return table


def start_session(login: str, password_hash: str) -> None:
    """Make the (cleared) session a fresh login of ``login``."""
    session.permanent = True
    session["user"] = login
    session["pw"] = password_fingerprint(password_hash)
    session["sid"] = sessions().start(login)


def end_session() -> None:
    """Log out: the session id dies on the server, so a saved cookie is worth nothing."""
    sid = session.get("sid")
    if isinstance(sid, str):
        sessions().end(sid)
    session.clear()


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def _load_user() -> User | None:
    """The session's user, if its session is live and that login still exists with the
    same password.

    The session keeps a fingerprint of the password hash, so resetting a password
    or removing a login ends its sessions; logging out or :data:`SESSION_IDLE_S`
    without a request ends one (:class:`SessionTable`).
    """
    return session_user(session.get("user"), session.get("sid"), session.get("pw"))


def session_user(name: Any, sid: Any, pw: Any, *, touch: bool = True) -> User | None:
    """The user of a session with these cookie values, or None if it has ended (then
    its id is forgotten too). Needs an app context, not a request."""
    from web.settings_store import read_users

    if not isinstance(name, str) or not isinstance(sid, str):
        return None
    table = sessions()
    if not table.alive(sid, name, touch=touch):
        return None
    for u in read_users():
        if u.get("name") == name and hmac.compare_digest(
                str(pw or ""), password_fingerprint(str(u.get("password", "")))):
            return User(name=name, role=str(u.get("role")), extension=u.get("extension"))
    table.end(sid)  # a changed password or a removed login: this id is done for good
    return None


def password_fingerprint(password_hash: str) -> str:
    """A short keyed digest of the stored hash: changes when the password does."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, password_hash.encode(), "sha256").hexdigest()[:32]


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/wallboard/")) or request.path == "/events" \
        or (request.path.startswith(_AUDIO_PATHS) and request.path.endswith(".wav")) \
        or request.accept_mimetypes.best == "application/json"


def _guard() -> Response | tuple[Response, int] | None:
    """Runs before every request: CSRF first, then login, then role."""
    if request.method in UNSAFE_METHODS:
        sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        expected = session.get(CSRF_FIELD)
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            abort(400, description="This form has expired or did not come from this page. "
                                   "Reload the page and try again.")
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC:
        return None
    user = _load_user()
    if user is None:
        if _wants_json():
            body = {"error_id": "login_required", "message": "log in first", "details": {}}
            return jsonify(body), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    g.user = user
    view = current_app.view_functions.get(endpoint)
    if user.is_wallboard:
        if not getattr(view, "_keepline_wallboard", False):
            abort(403, description="A wallboard login can only show the wallboard.")
    elif user.is_admin or getattr(view, "_keepline_agents", False):
        pass
    elif getattr(view, "_keepline_supervisors", False):
        if not user.is_supervisor:
            abort(403, description="This page is for supervisors and administrators.")
    else:
        abort(403, description="This page is for administrators.")
    return None


def _security_headers(response: Response) -> Response:
    # No inline script or style anywhere, so the strict policy costs nothing.
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    """Session cookie flags, the guard, and ``csrf_token()`` / ``current_user()`` in templates."""
    # Flask's defaults are present already, so these are set, not defaulted.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_NAME"] = "keepline_session"
    idle_s = float(app.config.get("KEEPLINE_SESSION_IDLE_S", SESSION_IDLE_S))
    # The cookie's own signed timestamp expires with the same idle time; the server's
    # table is what makes logout and the idle limit hold for a copied cookie.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=idle_s)
    app.extensions[SESSIONS_EXTENSION] = SessionTable(idle_s=idle_s)
    app.extensions[LIMITER_EXTENSION] = LoginLimiter(
        limit=int(app.config.get("KEEPLINE_LOGIN_LIMIT", 5)),
        window_s=float(app.config.get("KEEPLINE_LOGIN_WINDOW_S", 300.0)))
    app.before_request(_guard)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user


def limiter() -> LoginLimiter:
    found: LoginLimiter = current_app.extensions[LIMITER_EXTENSION]
    return found
