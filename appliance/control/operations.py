"""What the control API asks of the running engine: test calls, hang-ups, agents,
callbacks and failover (settings are :mod:`appliance.control.admin`'s).

Each handler checks its request against the config in force and hands the work
to the engine thread (``engine.call``), waiting for its answer: the API's threads
never touch a call themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.control.server import ApiError, Handler
from appliance.core.recording import ACTIONS as RECORD_ACTIONS
from appliance.core.supervision import MODES, may_supervise
from appliance.core.wrapup import MAX_NOTE
from appliance.features.calls import CallRefused
from appliance.features.queue import WrapupError
from appliance.features.recording import RecordingRefused
from appliance.features.supervision import SupervisionError

if TYPE_CHECKING:
    from appliance.sip.engine import Engine

#: Agent actions the control API takes: ``POST /agents/<ext>/<action>``.
AGENT_ACTIONS = {"login": "set_login", "logout": "set_logout", "pause": "set_pause",
                 "unpause": "unpause"}


def resources(engine: Engine,
              config: Callable[[], dict[str, Any]]) -> dict[tuple[str, str], Handler]:
    """The control API's resources on the running ``engine``, for
    :class:`~appliance.control.server.ControlApi`; ``config`` gives the config in force.

    - ``POST /calls/test {"extension": "202", "seconds": 10}``: ring a phone.
    - ``POST /calls/click {"extension": "202", "number": "+15550001"}``: ring the phone,
      then call the number for it (voicemail's "call back"); 409 ``refused`` when that
      phone may not dial that number.
    - ``POST /calls/supervise {"supervisor": "210", "extension": "202", "mode": "listen"}``:
      ring the supervisor's phone, which joins 202's call on answer (listen, whisper or
      barge); 403 when 210 is no supervisor's phone, 409 when 202 is on no call.
    - ``POST /calls/record {"extension": "202", "action": "start|stop|pause|resume"}``:
      the recording of 202's call, on demand (409 when 202 is on no call, or nothing is
      being recorded to stop or pause).
    - ``DELETE /calls/<id>``: hang up a live call.
    - ``POST /agents/<ext>/<login|logout|pause|unpause>``; ``POST /agents/<ext>/wrapup
      {"code", "note"}``: the agent's latest queue call's wrap-up code (409 if none fits).
    - ``GET /callbacks``; ``DELETE /callbacks/<id>``.
    - ``GET /failover``; ``POST /failover {"disaster", "override"}``.
    - ``POST /dnd/<ext> {"on": true}``: that extension's do-not-disturb (stored).
    """

    def post_call(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /calls/test {"extension": "202", "seconds": 10}``: ring a phone."""
        if arg not in ("test", "click", "supervise", "record"):
            raise ApiError(404, "not_found", f"no call action {arg!r}")
        if arg == "supervise":
            return post_supervise(body)
        if arg == "record":
            return post_record(body)
        ext = body.get("extension")
        known = {e["number"] for e in config()["extensions"]}
        if ext not in known:
            raise ApiError(400, "unknown_extension", f"extension: no extension {ext!r}",
                           field="extension")
        if arg == "click":
            number = body.get("number")
            if not isinstance(number, str) or not re.fullmatch(r"\+?[0-9]{2,20}", number):
                raise ApiError(400, "bad_number", "number: expected digits, + first if "
                               "international", field="number")
            try:
                uid = engine.call(lambda: engine.click_to_call(str(ext), number))
            except CallRefused as e:
                raise ApiError(409, "refused", str(e)) from None
            return {"id": uid}
        seconds = body.get("seconds", 10)
        if not isinstance(seconds, int | float) or not 1 <= seconds <= 300:
            raise ApiError(400, "bad_seconds", "seconds: expected 1 to 300", field="seconds")
        uid = engine.call(lambda: engine.test_call(str(ext), float(seconds)))
        return {"id": uid}

    def post_record(body: dict[str, Any]) -> dict[str, Any]:
        ext, action = body.get("extension"), body.get("action")
        if ext not in {e["number"] for e in config()["extensions"]}:
            raise ApiError(400, "unknown_extension", f"extension: no extension {ext!r}",
                           field="extension")
        chosen = next((a for a in RECORD_ACTIONS if a == action), None)
        if chosen is None:
            raise ApiError(400, "bad_action", "action: expected one of "
                           f"{', '.join(RECORD_ACTIONS)}", field="action")
        try:
            return engine.call(lambda: engine.record_action(str(ext), chosen))
        except RecordingRefused as e:
            raise ApiError(409, "cannot_record", str(e)) from None

    def post_supervise(body: dict[str, Any]) -> dict[str, Any]:
        doc = config()
        known = {e["number"] for e in doc["extensions"]}
        supervisor, ext, mode = body.get("supervisor"), body.get("extension"), \
            body.get("mode", "listen")
        for name, value in (("supervisor", supervisor), ("extension", ext)):
            if value not in known:
                raise ApiError(400, "unknown_extension", f"{name}: no extension {value!r}",
                               field=name)
        if mode not in MODES:
            raise ApiError(400, "bad_mode", f"mode: expected one of {', '.join(MODES)}",
                           field="mode")
        if not may_supervise(doc, str(supervisor)):
            raise ApiError(403, "not_supervisor", f"extension {supervisor} is no supervisor's "
                           "or admin's phone")
        if supervisor == ext:
            raise ApiError(400, "same_extension", "a phone cannot supervise its own call",
                           field="extension")
        try:
            uid = engine.call(lambda: engine.supervise(str(supervisor), str(ext), str(mode)))
        except SupervisionError as e:
            raise ApiError(409, "cannot_supervise", str(e)) from None
        return {"id": uid}

    def post_agent(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /agents/<ext>/pause {"reason": "lunch"}``; also unpause, login, logout.

        ``login`` and ``logout`` take an optional ``{"queue": NAME}``; without it they
        apply to every queue the extension is a configured member of.
        """
        ext, _, action = arg.partition("/")
        if ext not in {e["number"] for e in config()["extensions"]}:
            raise ApiError(404, "unknown_extension", f"no extension {ext!r}")
        if action == "wrapup":
            return post_wrapup(ext, body)
        if action not in AGENT_ACTIONS:
            raise ApiError(404, "not_found", f"no agent action {action!r} (expected one of: "
                           f"{', '.join(AGENT_ACTIONS)})")
        argument = ""
        if action == "pause":
            argument = str(body.get("reason", "") or "")[:40]
        elif "queue" in body:
            argument = str(body["queue"])
            if argument not in {q["name"] for q in config()["queues"]}:
                raise ApiError(400, "unknown_queue", f"queue: no queue {argument!r}",
                               field="queue")
        engine.call(lambda: engine.agent_action(ext, AGENT_ACTIONS[action], argument))
        state = engine.call(lambda: engine.acd.agents(engine._clock()).get(ext))
        return {"extension": ext, **(state or {"state": "offline", "queues": []})}

    def post_wrapup(ext: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /agents/<ext>/wrapup {"code": "sale", "note": "..."}``: the agent's
        latest queue call gets that code; its wrap-up time ends now."""
        code, note = body.get("code"), body.get("note", "")
        if not isinstance(code, str) or not code:
            raise ApiError(400, "bad_code", "code: expected a wrap-up code", field="code")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise ApiError(400, "bad_note", f"note: up to {MAX_NOTE} characters",
                           field="note")
        try:
            return engine.call(lambda: engine.give_wrapup(ext, code, note))
        except WrapupError as e:
            raise ApiError(409, "no_wrapup", str(e), field="code") from None

    def post_failover(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /failover {"disaster": true}`` or ``{"override": "night"}`` (null = auto)."""
        if not {"disaster", "override"} & set(body):
            raise ApiError(400, "bad_request", "expected disaster and/or override")
        if "disaster" in body and not isinstance(body["disaster"], bool):
            raise ApiError(400, "bad_disaster", "disaster: expected true or false",
                           field="disaster")
        if "override" in body and body["override"] not in (None, "day", "night"):
            raise ApiError(400, "bad_override", "override: expected day, night or null",
                           field="override")
        return engine.call(lambda: engine.set_failover(body))

    def post_dnd(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dnd/202 {"on": true}``: 202's do-not-disturb on (false: off)."""
        if arg not in {e["number"] for e in config()["extensions"]}:
            raise ApiError(404, "unknown_extension", f"no extension {arg!r}")
        on = body.get("on")
        if not isinstance(on, bool):
            raise ApiError(400, "bad_on", "on: expected true or false", field="on")
        return engine.call(lambda: engine.set_dnd(arg, on))

    def delete_callback(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``DELETE /callbacks/<id>``: cancel a request that is not under way."""
        from appliance.features.callback import CallbackError

        if not arg.isdigit():
            raise ApiError(404, "unknown_callback", f"no callback {arg!r}")
        try:
            return engine.call(lambda: engine.cancel_callback(int(arg)))
        except CallbackError as e:
            raise ApiError(e.status, e.error_id, str(e)) from None

    def delete_call(arg: str, body: dict[str, Any]) -> dict[str, Any]:
        """``DELETE /calls/<id>``: hang up a live call."""
        if not engine.call(lambda: engine.hangup(arg)):
            raise ApiError(404, "unknown_call", f"no live call {arg!r}")
        return {"id": arg, "state": "hanging_up"}

    return {
        ("POST", "calls"): post_call,
        ("DELETE", "calls"): delete_call,
        ("POST", "agents"): post_agent,
        ("GET", "callbacks"): lambda arg, body: {"callbacks": engine.call(engine.list_callbacks)},
        ("GET", "failover"): lambda arg, body: engine.call(engine.failover_status),
        ("POST", "failover"): post_failover,
        ("POST", "dnd"): post_dnd,
        ("DELETE", "callbacks"): delete_callback,
    }
