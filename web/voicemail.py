"""The voicemail inbox: a login's messages, played in the page, marked and deleted.

An agent sees their extension's box and the shared boxes they are a member of; an
admin sees every box (``core/voicemail.readable_boxes``). The list and the audio are
read here from history and the voicemail folder, read-only; marking and deleting go
through the engine, history's only writer (``control/voicemail.py``), which publishes
``voicemail_changed``. The page's script follows those events (the web relays each only
to the box's readers and admins), so a new message appears without a reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
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
from appliance.store.voicemail import Mailboxes, Message
from web.admin.common import ask_engine
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


def _label(config: Mapping[str, Any], box: str) -> str:
    """"201 Reception" for an extension's box, "sales (shared)" for a shared one."""
    for e in config.get("extensions") or []:
        if e.get("number") == box:
            return f"{box} {e.get('name') or ''}".strip()
    return f"{box} (shared)"


def _message_view(m: Message, history: History, config: Mapping[str, Any]) -> dict[str, Any]:
    contact = history.contact(m.caller_number) if m.caller_number else None
    at = datetime.fromtimestamp(m.at, site_zone(config))
    return {
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
                messages = [_message_view(m, history, config) for m in history.messages(box)]
                new, heard = counts.get(box, (0, 0))
                shown.append({"name": box, "label": _label(config, box), "new": new,
                              "heard": heard, "messages": messages})
        except StoreError as e:
            log.error("voicemail inbox: %s", e)
            error = f"The messages cannot be read just now ({e})."
    else:
        shown = [{"name": b, "label": _label(config, b), "new": 0, "heard": 0,
                  "messages": []} for b in boxes]
    return render_template("voicemail/inbox.html", boxes=shown, error=error,
                           now=time.time()), 200


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
