"""Messages marked heard, unheard or deleted, for the web inbox, through the engine.

The engine is history's only writer, so the web asks here; it lists messages and plays
their files itself, read-only. Like contacts these run on the control API's thread, not
the engine thread: a delete's fsync never holds up calls. Each change is published as a
``voicemail_changed`` event (the inbox pages follow it) and the controller's lamp thread
sees the new counts within a second, so the phone's lamp follows too.

Who may do this is the web's check (it knows the login); the engine checks only that
the message exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from appliance.control.events import EventType
from appliance.control.server import ApiError, Handler
from appliance.features.voicemail import box_changed
from appliance.store.voicemail import Mailboxes, Message

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
