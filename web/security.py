"""Who may see what: logins, roles, CSRF tokens and the login rate limit.

Every view needs a logged-in user unless it is listed in ``PUBLIC``; every view
needs the ``admin`` role unless it is marked :func:`for_agents`. So a new view
is locked down until someone decides otherwise. Every state-changing request
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

PUBLIC = frozenset({"auth.login", "static"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LIMITER_EXTENSION = "keepline.login_limiter"

F = TypeVar("F", bound=Callable[..., Any])


def for_agents(view: F) -> F:
    """Let the ``agent`` role use this view too (admins always may)."""
    view._keepline_agents = True  # type: ignore[attr-defined]
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


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def _load_user() -> User | None:
    """The session's user, if that login still exists with the same password.

    The session keeps a fingerprint of the password hash, so resetting a
    password or removing a login ends its sessions.
    """
    from web.settings_store import read_users

    name = session.get("user")
    if not isinstance(name, str):
        return None
    for u in read_users():
        if u.get("name") == name and hmac.compare_digest(
                str(session.get("pw", "")), password_fingerprint(str(u.get("password", "")))):
            return User(name=name, role=str(u.get("role")), extension=u.get("extension"))
    return None


def password_fingerprint(password_hash: str) -> str:
    """A short keyed digest of the stored hash: changes when the password does."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, password_hash.encode(), "sha256").hexdigest()[:32]


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/events" \
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
    if not user.is_admin and not getattr(view, "_keepline_agents", False):
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
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)
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
