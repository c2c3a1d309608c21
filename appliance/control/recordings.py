"""Call recordings for the web: each listen or download written to the audit log, and
deletes.

The web plays a recording's file itself, read-only, but it writes nothing (its file
system is read-only and history has one writer), so it asks here before it serves a
byte: a recording nobody could log is never played. The entry's words are made here from
the listed recording, never taken from the web, so a page cannot write a misleading one.
Like contacts and voicemail these run on the control API's thread, not the engine
thread: a delete's fsync never holds up calls.

Who may do this is the web's check (it knows the login); the engine checks only that
the recording exists and that the user is named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from appliance.control.server import ApiError, Handler
from appliance.store.recordings import Recording, Recordings

log = logging.getLogger(__name__)

#: ``POST /recordings/<id>/<action>``: the audit actions the web may log.
ACTIONS = ("listen", "download")
_MAX_USER = 64


def audit_target(recording: Recording) -> str:
    return f"recording {recording.id}"


def audit_detail(recording: Recording) -> str:
    """What the audit log says of a recording: its call and caller (the file may be gone)."""
    return f"call {recording.call_uid}, caller {recording.caller_number or 'unknown'}"


def resources(recordings: Recordings, *, clock: Callable[[], float] = time.time
              ) -> dict[tuple[str, str], Handler]:
    """The control API's recording resources, for :class:`~appliance.control.server.ControlApi`.

    - ``POST /recordings/<id>/listen`` or ``/download`` ``{"user"}``: logs it; returns the
      recording as listed.
    - ``DELETE /recordings/<id>`` ``{"user"}``: the file, then its row, then a ``delete``
      entry; returns ``{"id", "deleted"}``.

    Errors: 404 ``unknown_recording`` for an id that is not listed (or not a number), 404
    ``not_found`` for another action, 400 ``bad_user`` (field ``user``) without a user.
    """

    def listed(arg: str) -> Recording:
        found = recordings.log.recording(int(arg)) if arg.isdigit() and len(arg) < 19 \
            else None
        if found is None:
            raise ApiError(404, "unknown_recording", f"no recording {arg[:40]!r}")
        return found

    def user_of(body: dict[str, Any]) -> str:
        user = body.get("user")
        if not isinstance(user, str) or not user.strip() or len(user) > _MAX_USER:
            raise ApiError(400, "bad_user", "user: the login that asks, as text",
                           field="user")
        return user.strip()

    def post(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        number, _, action = arg.partition("/")
        if action not in ACTIONS:
            raise ApiError(404, "not_found", f"no recording action {action[:20]!r} "
                           f"(expected {' or '.join(ACTIONS)})")
        recording = listed(number)
        recordings.log.add_audit(at=clock(), user=user_of(body), action=action,
                                 target=audit_target(recording),
                                 detail=audit_detail(recording))
        return asdict(recording)

    def delete(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        recording = listed(arg)
        user = user_of(body)
        recordings.delete(recording)
        recordings.log.add_audit(at=clock(), user=user, action="delete",
                                 target=audit_target(recording),
                                 detail=audit_detail(recording))
        log.info("recording %s (%s) deleted by %s", recording.id, recording.file, user)
        return {"id": recording.id, "deleted": True}

    return {("POST", "recordings"): post, ("DELETE", "recordings"): delete}
