"""Backup and restore: every setting as one JSON file, and putting such a file back.

The engine answers both: ``GET /config`` is the stored document, ``PUT /config``
validates an uploaded one whole and makes it the config in one atomic write, or
changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from appliance.control.client import JsonTooDeep, loads
from appliance.errors import ConfigError, StoreError
from web.admin import bp
from web.admin.common import ask_engine
from web.admin.forms import problems_of
from web.admin.phones import secret_page, sip_server
from web.settings_store import read_raw

#: A config file is a few kilobytes; this is far above any real one.
MAX_RESTORE_BYTES = 2 * 1024 * 1024


def _backup_page(*, status: int = 200, error: str | None = None,
                 problems: list[str] | None = None,
                 generated: list[dict[str, str]] | None = None) -> tuple[str, int]:
    host, port = sip_server()
    realm = ""
    if generated:
        realm = str(read_raw()["site"]["sip_domain"])
    return render_template("admin/backup.html", error=error, problems=problems or [],
                           generated=generated or [], host=host, port=port, realm=realm,
                           max_mb=MAX_RESTORE_BYTES // (1024 * 1024)), status


@bp.get("/backup")
def backup() -> tuple[str, int]:
    """Download the settings, or restore a downloaded file."""
    return _backup_page()


def _stamp(doc: dict[str, Any]) -> str:
    """Now, in the office's time zone if the config names one."""
    zone = None
    tz = doc.get("site", {}).get("timezone") if isinstance(doc.get("site"), dict) else None
    if isinstance(tz, str):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    now = datetime.now(zone) if zone else datetime.now().astimezone()
    return now.strftime("%Y%m%d-%H%M")


@bp.get("/backup/download")
def backup_download() -> BaseResponse:
    """The stored config as a JSON attachment (password hashes, never passwords)."""
    outcome = ask_engine("GET", "/config")
    doc = outcome.result if outcome.ok else None
    if doc is None:
        # The engine is down: config.json is the same document, and a backup matters most now.
        try:
            doc = read_raw()
        except (ConfigError, StoreError) as e:
            flash(f"No backup: {outcome.error} The settings file cannot be read either ({e}).",
                  "error")
            return redirect(url_for("admin.backup"))
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = \
        f'attachment; filename="keepline-config-{_stamp(doc)}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/backup/restore")
def backup_restore() -> BaseResponse | tuple[str, int]:
    """Make an uploaded backup the config: all of it, or nothing changes."""
    too_big = (f"That file is larger than {MAX_RESTORE_BYTES // (1024 * 1024)} MB, so it "
               "is not a Keepline backup. Nothing was changed.")
    if (request.content_length or 0) > MAX_RESTORE_BYTES + 64 * 1024:
        return _backup_page(status=413, error=too_big)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _backup_page(status=400, error="Choose the backup file to restore "
                                              "(keepline-config-….json).")
    name = upload.filename
    raw = upload.read(MAX_RESTORE_BYTES + 1)
    if len(raw) > MAX_RESTORE_BYTES:
        return _backup_page(status=413, error=too_big)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return _backup_page(status=400, error=f"{name} is not a text file (byte {e.start} is "
                            "not UTF-8), so it is not a Keepline backup. Nothing was changed.")
    try:
        doc = loads(text)
    except json.JSONDecodeError as e:
        return _backup_page(status=400, error=f"{name} is not valid JSON: {e.msg} at line "
                            f"{e.lineno}, column {e.colno}. Nothing was changed.")
    except JsonTooDeep as e:
        return _backup_page(status=400, error=f"{name} is not a Keepline backup: {e}. "
                            "Nothing was changed.")
    if not isinstance(doc, dict):
        return _backup_page(status=400, error=f"{name} does not hold Keepline settings (a "
                            "JSON object {{ … }} was expected). Nothing was changed.")
    outcome = ask_engine("PUT", "/config", {"document": doc})
    if not outcome.ok:
        if outcome.fields:
            return _backup_page(status=400, error=f"{name} was not restored: these settings "
                                "are not valid. Nothing was changed.",
                                problems=problems_of(outcome, doc))
        return _backup_page(status=400, error=f"{name} was not restored: {outcome.error} "
                            "Nothing was changed.")
    flash(f"Settings restored from {name}.")
    result = outcome.result or {}
    generated = [{"extension": str(g.get("extension")), "password": str(g.get("password"))}
                 for g in result.get("generated", []) if isinstance(g, dict)]
    if generated:
        html, status = _backup_page(generated=generated)
        return secret_page(html, status)
    return redirect(url_for("admin.backup"))
