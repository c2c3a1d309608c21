"""Messages marked heard, unheard or deleted, for the web inbox, through the engine; and
the settings that are files, not config: mailbox greetings and the relay's password.

The engine is history's only writer, so the web asks here; it lists messages and plays
their files itself, read-only. Like contacts these run on the control API's thread, not
the engine thread: a delete's fsync never holds up calls. Each change is published as a
``voicemail_changed`` event: the inbox pages follow it, and it wakes the controller's
lamp thread, so the phone's lamp follows at once too.

Who may do this is the web's check (it knows the login); the engine checks only that
the message exists.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from appliance.control.events import EventType
from appliance.control.server import ApiError, Handler
from appliance.core.voicemail import mailbox
from appliance.features.voicemail import box_changed
from appliance.store.atomic import fsync_dir, write_atomic
from appliance.store.music import MusicError, convert_upload
from appliance.store.voicemail import GREETING_KINDS, Greetings, Mailboxes, Message

log = logging.getLogger(__name__)

#: ``POST /voicemail/<id>/<action>``: what each marks.
MARKS = {"heard": True, "unheard": False}


def resources(boxes: Mailboxes, emit: Callable[[EventType], object],
              config: Callable[[], dict[str, Any]]) -> dict[tuple[str, str], Handler]:
    """The control API's voicemail resources, for :class:`~appliance.control.server.ControlApi`;
    ``emit`` publishes an event (the bus's ``emit``), ``config`` gives the config in force.

    - ``POST /voicemail/<id>/heard`` and ``/unheard``: returns the message as listed.
    - ``DELETE /voicemail/<id>``: the file, then its row; returns ``{"id", "deleted"}``.

    Errors: 404 ``unknown_message`` for an id that is not listed (or not a number), 404
    ``not_found`` for another action.
    """

    def listed(arg: str) -> Message:
        found = boxes.log.message(int(arg)) if arg.isdigit() and len(arg) < 19 else None
        if found is None:
            raise ApiError(404, "unknown_message", f"no voicemail message {arg!r}")
        return found

    def changed(box: str) -> None:
        emit(box_changed(config(), boxes.log, box))

    def post(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        number, _, action = arg.partition("/")
        if action not in MARKS:
            raise ApiError(404, "not_found", f"no voicemail action {action!r} (expected "
                           f"{' or '.join(MARKS)})")
        message = listed(number)
        boxes.log.mark_heard(message.id, MARKS[action])
        changed(message.box)
        return asdict(listed(number))

    def delete(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        message = listed(arg)
        boxes.delete(message)
        changed(message.box)
        return {"id": message.id, "deleted": True}

    return {("POST", "voicemail"): post, ("DELETE", "voicemail"): delete}


#: The SMTP password's longest accepted length (a relay's app password is far shorter).
MAX_PASSWORD = 512


def settings_resources(greetings: Greetings, config: Callable[[], dict[str, Any]],
                       password_path: Path) -> dict[tuple[str, str], Handler]:
    """Mailbox greetings and the email relay's password, for the admin and inbox pages.

    - ``POST /mailbox-greetings/<box>/<kind> {"filename", "data": base64}``: the box's
      own greeting (kind: unavailable, busy or name), converted to 8 kHz mono with sox.
    - ``DELETE /mailbox-greetings/<box>/<kind>``: back to the default greeting.
    - ``PUT /email-password {"password"}``: kept in ``password_path`` (mode 600), never in
      the config; an empty one removes it.

    Errors: 404 for a box that does not exist or a kind that is not one; 400
    ``bad_audio`` (field ``file``) for an upload that is not audio or too large.
    """

    def greeting_of(arg: str) -> tuple[str, str]:
        box, _, kind = arg.partition("/")
        if kind not in GREETING_KINDS or mailbox(config(), box) is None:
            raise ApiError(404, "unknown_greeting", f"no mailbox greeting {arg!r} (a "
                           f"mailbox, then one of {', '.join(GREETING_KINDS)})")
        return box, kind

    def upload(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        box, kind = greeting_of(arg)
        filename = str(body.get("filename") or "upload")
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_upload", "data: expected the file as base64") from None
        try:
            seconds = convert_upload(data, filename, greetings.path(box, kind))
        except MusicError as e:
            raise ApiError(400, "bad_audio", str(e), field="file") from None
        log.info("mailbox %s: %s greeting %s (%.1f s) uploaded", box, kind, filename, seconds)
        return {"box": box, "kind": kind, "seconds": round(seconds, 1)}

    def remove(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        box, kind = greeting_of(arg)
        removed = greetings.remove(box, kind)
        log.info("mailbox %s: %s greeting %s", box, kind,
                 "removed" if removed else "was not there")
        return {"box": box, "kind": kind, "deleted": removed}

    def put_password(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        password = body.get("password")
        if arg or not isinstance(password, str) or len(password) > MAX_PASSWORD \
                or any(ord(c) < 32 or ord(c) == 127 for c in password):
            raise ApiError(400, "bad_password", f"password: up to {MAX_PASSWORD} characters, "
                           "no line breaks or control characters", field="password")
        if password:
            write_atomic(password_path, password.encode(), mode=0o600)
        elif password_path.exists():
            password_path.unlink()
            fsync_dir(password_path.parent)
        log.info("voicemail email: the relay's password was %s",
                 "set" if password else "removed")
        return {"set": bool(password)}

    return {("POST", "mailbox-greetings"): upload, ("DELETE", "mailbox-greetings"): remove,
            ("PUT", "email-password"): put_password}
