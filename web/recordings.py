"""Call recordings on the web: played and downloaded by admins and supervisors, deleted
by admins, and the audit log of who did which.

The audio is read here from the recordings folder, read-only, as the voicemail inbox
reads its messages; but before a byte is served the engine writes the audit entry
(``control/recordings.py``): the web writes nothing, and a listen that could not be
logged is refused (503), never served unlogged. Deleting goes through the engine too.

Agents, the wallboard and anonymous requests are turned away by the guard before the
view runs (:func:`web.security.for_supervisors`), so they get the same 403 (or 401) for
an id that exists and one that does not: ids cannot be probed.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.wrappers.response import Response as WerkzeugResponse

from appliance.errors import StoreError
from appliance.settings import Runtime
from appliance.store.recordings import Recording, RecordingError, Recordings
from web.admin.common import ask_engine
from web.reports import _config, _history, _history_exists, site_zone, zone_name
from web.security import User, current_user, for_supervisors

log = logging.getLogger(__name__)

bp = Blueprint("recordings", __name__)

#: Entries the audit page shows (newest first); older ones stay in history.
AUDIT_PAGE = 200
#: A Range that starts at the first byte: the start of a play, not a seek or a later chunk.
_FROM_START = re.compile(r"^bytes=0-[0-9]*$")


def _user() -> User:
    user = current_user()
    assert user is not None  # the guard let only logged-in users in
    return user


def _recordings() -> Recordings:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return Recordings(runtime.data_dir / "recordings", _history())


def _listed_or_404(recording_id: int) -> Recording:
    if recording_id >= 2 ** 63 or not _history_exists():
        abort(404)
    try:
        found = _history().recording(recording_id)
    except StoreError as e:
        log.error("recordings: %s", e)
        abort(503, description=f"The call history cannot be read just now ({e}).")
    if found is None:
        abort(404)
    return found


def _file_or_404(recording: Recording) -> Path:
    try:
        path = _recordings().audio_path(recording)
    except RecordingError:
        abort(404)
    if not path.is_file():
        abort(404)
    return path


def _starts_a_play() -> bool:
    """Whether this request is a play or a download, not a later chunk of one: the
    player asks for ranges as it goes, and each play should be one audit entry."""
    if request.method != "GET":
        return False
    asked = request.headers.get("Range", "").replace(" ", "")
    return not asked or bool(_FROM_START.fullmatch(asked))


@bp.get("/recordings/<int:recording_id>.wav")
@for_supervisors
def audio(recording_id: int) -> Response:
    """The recording's WAV (ranges for the page's player, ``?download=1`` to save it),
    logged in the audit log before it is served."""
    recording = _listed_or_404(recording_id)
    path = _file_or_404(recording)
    download = request.args.get("download") == "1"
    if _starts_a_play():
        action = "download" if download else "listen"
        outcome = ask_engine("POST", f"/recordings/{recording.id}/{action}",
                             {"user": _user().name})
        if not outcome.ok:
            abort(503, description="Recordings play only while every listen can be "
                                   f"written to the audit log: {outcome.error}")
    stamp = datetime.fromtimestamp(recording.started_at,
                                   site_zone(_config())).strftime("%Y-%m-%d-%H%M")
    caller = "".join(c for c in recording.caller_number if c.isdigit() or c == "+") \
        or "unknown"
    response = send_file(path, mimetype="audio/wav", conditional=True, max_age=0,
                         as_attachment=download,
                         download_name=f"recording-{stamp}-{caller}.wav")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _back() -> str:
    """Where a delete returns: the history page the button was on, else the history."""
    back = request.form.get("next", "")
    if back.startswith("/history") and "//" not in back and "\\" not in back:
        return back
    return url_for("reports.history")


@bp.post("/recordings/<int:recording_id>/delete")
def delete(recording_id: int) -> WerkzeugResponse:
    """Delete a recording through the engine (file, row, then a ``delete`` audit entry);
    admins only."""
    recording = _listed_or_404(recording_id)
    outcome = ask_engine("DELETE", f"/recordings/{recording.id}", {"user": _user().name})
    if outcome.ok:
        flash(f"The recording of the call from {recording.caller_number or 'an unknown caller'}"
              " was deleted.")
    else:
        flash(f"The recording was not deleted: {outcome.error}", "error")
    return redirect(_back())


@bp.get("/settings/audit")
def audit() -> tuple[str, int]:
    """Who listened to, downloaded or deleted which recording, newest first."""
    tz = site_zone(_config())
    entries = []
    problem = None
    if _history_exists():
        try:
            entries = _history().audit(limit=AUDIT_PAGE)
        except StoreError as e:
            log.error("audit log: %s", e)
            problem = f"The audit log cannot be read just now ({e})."
    shown = [{"when": datetime.fromtimestamp(e.at, tz).strftime("%Y-%m-%d %H:%M:%S"),
              "iso": datetime.fromtimestamp(e.at, tz).isoformat(timespec="seconds"),
              "user": e.user, "action": e.action, "target": e.target, "detail": e.detail}
             for e in entries]
    return render_template("admin/audit.html", entries=shown, problem=problem,
                           limit=AUDIT_PAGE, zone=zone_name(tz)), 503 if problem else 200
