"""The voicemail inbox: a login's messages, played in the page, marked and deleted.

An agent sees their extension's box and the shared boxes they are a member of; an
admin sees every box (``core/voicemail.readable_boxes``). The list and the audio are
read here from history and the voicemail folder, read-only; marking and deleting go
through the engine, history's only writer (``control/voicemail.py``), which publishes
``voicemail_changed``. The page's script follows those events (the web relays each only
to the box's readers and admins), so a new message appears without a reload.
"""

from __future__ import annotations

import base64
import logging
import time
import wave
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
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
    send_file,
    url_for,
)
from werkzeug.wrappers.response import Response as WerkzeugResponse

from appliance.core.voicemail import readable_boxes
from appliance.errors import StoreError
from appliance.settings import Runtime
from appliance.sounds.languages import english_name
from appliance.store.history import History
from appliance.store.music import ACCEPTED, MAX_UPLOAD_BYTES
from appliance.store.outbox import EmailJob
from appliance.store.voicemail import GREETING_KINDS, Greetings, Mailboxes, Message
from web.admin.common import ask_engine
from web.admin.media import UPLOAD_TIMEOUT_S
from web.reports import _config, _history, _history_exists, _mmss, site_zone
from web.security import User, current_user, for_agents

log = logging.getLogger(__name__)

bp = Blueprint("voicemail", __name__)

#: What the buttons ask of the engine: ``(method, path suffix, what the flash says)``.
_ACTIONS = {
    "heard": ("POST", "/heard", "marked heard"),
    "unheard": ("POST", "/unheard", "marked new"),
    "delete": ("DELETE", "", "deleted"),
}


def _user() -> User:
    user = current_user()
    assert user is not None  # the guard let only logged-in users in
    return user


def _readable(config: Mapping[str, Any]) -> list[str]:
    user = _user()
    return readable_boxes(config, extension=user.extension, admin=user.is_admin)


def _mailboxes(history: History) -> Mailboxes:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return Mailboxes(runtime.data_dir / "voicemail", history)


def _greetings() -> Greetings:
    runtime: Runtime = current_app.config["KEEPLINE_RUNTIME"]
    return Greetings(runtime.data_dir / "voicemail-greetings")


def _may_greet(config: Mapping[str, Any], box: str) -> bool:
    """Who may change a box's greetings: an admin any box's, an agent their own
    extension's (a shared box's greeting speaks for the office: admins only)."""
    user = _user()
    if box not in _readable(config):
        return False
    return user.is_admin or box == user.extension


#: What each greeting is, for the page.
GREETING_LABELS = {"unavailable": "When not answered", "busy": "When busy",
                   "name": "Name only (read into the standard greeting)"}


def _greetings_view(config: Mapping[str, Any], box: str) -> list[dict[str, Any]] | None:
    if not _may_greet(config, box):
        return None
    recorded = _greetings().recorded(box)
    return [{"kind": kind, "label": GREETING_LABELS[kind],
             "seconds": _wav_seconds(recorded[kind]) if kind in recorded else None}
            for kind in GREETING_KINDS]


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            return round(w.getnframes() / float(w.getframerate()), 1)
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


def _label(config: Mapping[str, Any], box: str) -> str:
    """"201 Reception" for an extension's box, "sales (shared)" for a shared one."""
    for e in config.get("extensions") or []:
        if e.get("number") == box:
            return f"{box} {e.get('name') or ''}".strip()
    return f"{box} (shared)"


def _email_view(job: EmailJob | None, config: Mapping[str, Any]) -> dict[str, str] | None:
    """Where the message's email stands, in a few words (None: the box emails no one)."""
    if job is None:
        return None
    zone = site_zone(config)

    def hhmm(t: float | None) -> str:
        return datetime.fromtimestamp(t or 0, zone).strftime("%d %b %H:%M")

    to = ", ".join(job.recipients)
    if job.state == "sent":
        return {"state": "sent", "text": f"emailed to {to} at {hhmm(job.done_at)}"}
    if job.state == "failed":
        return {"state": "failed", "text": f"not emailed to {to}: {job.error}"}
    if job.attempts == 0:
        return {"state": "queued", "text": f"being emailed to {to}"}
    return {"state": "queued", "text": f"not emailed yet ({job.attempts} "
            f"{'try' if job.attempts == 1 else 'tries'}; next at {hhmm(job.next_at)}): "
            f"{job.error}"}


def _message_view(m: Message, history: History, config: Mapping[str, Any],
                  email: EmailJob | None = None) -> dict[str, Any]:
    contact = history.contact(m.caller_number) if m.caller_number else None
    at = datetime.fromtimestamp(m.at, site_zone(config))
    return {
        "email": _email_view(email, config),
        "id": m.id, "heard": m.heard, "number": m.caller_number or "unknown",
        "name": (contact.name if contact and contact.name else m.caller_name),
        "company": contact.company if contact else "",
        "at": m.at, "when": at.strftime("%a %d %b %H:%M"), "iso": at.isoformat(),
        "duration": _mmss(m.duration_s), "duration_s": m.duration_s,
        "queue": m.queue or "", "language": english_name(m.language) if m.language else "",
    }


def _message_or_404(history: History, message_id: int) -> Message:
    """The message, if this login may hear its box; 404 otherwise (never 403: the
    answer must not tell a guesser that the number exists)."""
    message = history.message(message_id) if message_id < 2 ** 63 else None
    if message is None or message.box not in _readable(_config()):
        abort(404)
    return message


@bp.get("/voicemail")
@for_agents
def inbox() -> tuple[str, int]:
    config = _config()
    boxes = _readable(config)
    shown: list[dict[str, Any]] = []
    error = None
    if boxes and _history_exists():
        try:
            history = _history()
            counts = history.box_counts()
            for box in boxes:
                listed = history.messages(box)
                emails = history.emails([m.id for m in listed])
                messages = [_message_view(m, history, config, emails.get(m.id))
                            for m in listed]
                new, heard = counts.get(box, (0, 0))
                shown.append({"name": box, "label": _label(config, box), "new": new,
                              "heard": heard, "messages": messages,
                              "greetings": _greetings_view(config, box)})
        except StoreError as e:
            log.error("voicemail inbox: %s", e)
            error = f"The messages cannot be read just now ({e})."
    else:
        shown = [{"name": b, "label": _label(config, b), "new": 0, "heard": 0,
                  "messages": [], "greetings": _greetings_view(config, b)} for b in boxes]
    return render_template("voicemail/inbox.html", boxes=shown, error=error,
                           now=time.time(), max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
                           accept=",".join([*ACCEPTED, "audio/*"])), 200


@bp.get("/voicemail/<int:message_id>.wav")
@for_agents
def audio(message_id: int) -> Response:
    """The message's WAV: ranges for the page's player, ``?download=1`` to save it."""
    if not _history_exists():
        abort(404)
    history = _history()
    message = _message_or_404(history, message_id)
    path = _mailboxes(history).audio_path(message)
    if not path.is_file():
        abort(404)
    stamp = datetime.fromtimestamp(message.at, site_zone(_config())).strftime("%Y-%m-%d-%H%M")
    caller = "".join(c for c in message.caller_number if c.isdigit() or c == "+") or "unknown"
    response = send_file(path, mimetype="audio/wav", conditional=True, max_age=0,
                         as_attachment=request.args.get("download") == "1",
                         download_name=f"voicemail-{message.box}-{stamp}-{caller}.wav")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/voicemail/<int:message_id>/call")
@for_agents
def call_back(message_id: int) -> WerkzeugResponse:
    """Ring this login's phone; when it is answered, the engine calls the caller (the
    phone's own dialling rules decide whether it may)."""
    if not _history_exists():
        abort(404)
    message = _message_or_404(_history(), message_id)
    user = _user()
    if not user.extension:
        flash("Your login has no phone to call from: an admin links one under Settings, "
              "Web logins.", "error")
    elif not message.caller_number:
        flash("This caller left no number to call back.", "error")
    else:
        outcome = ask_engine("POST", "/calls/click", {"extension": user.extension,
                                                      "number": message.caller_number})
        if outcome.ok:
            flash(f"Your phone ({user.extension}) rings now: answer it to be put through "
                  f"to {message.caller_number}.")
        else:
            flash(f"{message.caller_number} was not called: {outcome.error}", "error")
    return redirect(url_for("voicemail.inbox"))


@bp.post("/voicemail/<int:message_id>/<action>")
@for_agents
def act(message_id: int, action: str) -> WerkzeugResponse | tuple[Response, int]:
    """Mark a message heard or new, or delete it, through the engine. Answers JSON to a
    script (``Accept: application/json``), else back to the inbox with a message."""
    if action not in _ACTIONS or not _history_exists():
        abort(404)
    message = _message_or_404(_history(), message_id)
    method, suffix, done = _ACTIONS[action]
    outcome = ask_engine(method, f"/voicemail/{message.id}{suffix}")
    problem = outcome.error or ("; ".join(outcome.fields.values()) if outcome.fields else None)
    if request.accept_mimetypes.best == "application/json":
        if problem:
            return jsonify({"error": problem}), 503
        return jsonify({"id": message.id, "action": action}), 200
    if problem:
        flash(f"The message was not {done}: {problem}", "error")
    else:
        flash(f"The message from {message.caller_number or 'an unknown caller'} was {done}.")
    return redirect(url_for("voicemail.inbox"))


def _greeting_or_404(box: str, kind: str) -> None:
    if kind not in GREETING_KINDS or not _may_greet(_config(), box):
        abort(404)


@bp.get("/voicemail/greetings/<box>/<kind>.wav")
@for_agents
def greeting_audio(box: str, kind: str) -> Response:
    _greeting_or_404(box, kind)
    path = _greetings().path(box, kind)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="audio/wav", conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/voicemail/greetings/<box>/<kind>")
@for_agents
def greeting_upload(box: str, kind: str) -> WerkzeugResponse:
    """A box's own greeting from an audio file, converted by the engine; the standard
    greeting stays if the file is not audio (and the page says why)."""
    _greeting_or_404(box, kind)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose an audio file for the greeting.", "error")
        return redirect(url_for("voicemail.inbox"))
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        flash(f"{upload.filename} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
              "nothing changed.", "error")
        return redirect(url_for("voicemail.inbox"))
    outcome = ask_engine("POST", f"/mailbox-greetings/{box}/{kind}",
                         {"filename": upload.filename,
                          "data": base64.b64encode(data).decode("ascii")},
                         timeout=UPLOAD_TIMEOUT_S)
    if outcome.ok:
        seconds = (outcome.result or {}).get("seconds")
        flash(f"Mailbox {box}: the greeting \u201c{GREETING_LABELS[kind].lower()}\u201d is now "
              f"{upload.filename}" + (f" ({seconds:g} s)." if isinstance(seconds, int | float)
                                      else "."))
    else:
        problem = outcome.fields.get("file") or outcome.error or "not saved"
        flash(f"The greeting was not changed: {problem}", "error")
    return redirect(url_for("voicemail.inbox"))


@bp.post("/voicemail/greetings/<box>/<kind>/delete")
@for_agents
def greeting_delete(box: str, kind: str) -> WerkzeugResponse:
    _greeting_or_404(box, kind)
    outcome = ask_engine("DELETE", f"/mailbox-greetings/{box}/{kind}")
    if outcome.ok:
        flash(f"Mailbox {box}: back to the standard greeting "
              f"({GREETING_LABELS[kind].lower()}).")
    else:
        flash(f"The greeting was not removed: {outcome.error}", "error")
    return redirect(url_for("voicemail.inbox"))
