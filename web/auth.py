"""Log in and out. Passwords are checked against werkzeug scrypt hashes in config.json."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers.response import Response

from appliance.hints import admin_command
from web.security import (
    WALLBOARD_ROLE,
    csrf_token,
    end_session,
    for_agents,
    for_wallboard,
    limiter,
    start_session,
)
from web.settings_store import read_users

bp = Blueprint("auth", __name__)

# Checked when the login name is unknown, so a wrong name costs as long as a
# wrong password and does not reveal which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method="scrypt")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a login link must not bounce the user elsewhere."""
    if not target:
        return url_for("live.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("live.index")
    return target


@bp.app_template_global()
def reset_password_command(name: str = "admin") -> str:
    """The command that resets a web login's password on this box, as the login page shows it.

    Worked out from this web's own data dir and folder: ``make run`` and an installed
    box need different commands (see ``appliance.hints.admin_command``).
    """
    return admin_command(["user", "reset-password", name],
                         data_dir=current_app.config["KEEPLINE_RUNTIME"].data_dir,
                         cwd=Path.cwd(), python=sys.executable)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    csrf_token()  # the form needs one before anyone is logged in
    address = request.remote_addr or "unknown"
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    wait = limiter().retry_after(address)
    if wait:
        minutes = max(1, round(wait / 60))
        return (render_template("login.html", next=request.form.get("next", ""),
                                error=f"Too many failed logins from your address. Try again "
                                      f"in {minutes} minute{'s' if minutes != 1 else ''}."),
                429, {"Retry-After": str(wait)})
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    user = next((u for u in read_users() if u.get("name") == name), None)
    stored = str(user.get("password", "")) if user else _DUMMY_HASH
    ok = check_password_hash(stored, password) and user is not None
    if not ok:
        limiter().failed(address)
        return render_template("login.html", next=request.form.get("next", ""), username=name,
                               error="Wrong user name or password."), 401
    assert user is not None
    limiter().succeeded(address)
    end_session()  # a fresh session (and CSRF token) after login: no fixation
    start_session(name, stored)
    csrf_token()
    if user.get("role") == "agent" and not request.form.get("next"):
        return redirect(url_for("live.index"))
    target = _safe_next(request.form.get("next"))
    if user.get("role") == WALLBOARD_ROLE and not target.startswith("/wallboard"):
        # Every other page would answer 403: the TV goes straight to its board.
        return redirect(url_for("wallboard.board"))
    return redirect(target)


@bp.post("/logout")
@for_agents
@for_wallboard
def logout() -> Response:
    end_session()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
